/** The loaded OpenTelemetry API object (otel_api.bpf.c beside it) as a SpanProbe. */
import type { UprobeLinks } from "../../ebpf/link.ts";
import { uintBytes } from "../../ebpf/map.ts";
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import { GotelError } from "../../errors.ts";
import { processLoadBias } from "../../gobin/runtime-types.ts";
import { log } from "../../log.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { decodeUtf8, spanContextDecoder } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { SpanRecord } from "../../traces/span.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { LEGACY_STARTED, type LegacyPlan } from "./legacy-plan.ts";
import { LEGACY_CALL, LegacySpans, legacyProcess } from "./legacy-spans.ts";
import { PROGRAMS, plan } from "./plan.ts";
import { parseSpanJson } from "./spans.ts";
import { ProcessSwitches } from "./switches.ts";

export interface ApiLoadOptions extends LoadOptions {
  /** false (GOTEL_OTEL_API=false): the API is left alone, no switch set, no span recorded */
  enabled: boolean;
  /** write gotel's IDs into the application's spans (the kernel allows bpf_probe_write_user) */
  writeIds: boolean;
  /** a target's memory: the legacy global tracer's names, its errors' types */
  memory: (tgid: number) => TargetMemory | undefined;
}

/** enum otel_api_event_kind */
const KIND = { span: 1, flag: 2 } as const;

export class OtelApiProbe extends ObjectSpanProbe {
  readonly name = "OpenTelemetry API";
  private readonly context: ReturnType<typeof spanContextDecoder>;
  private readonly field: { kind: number; jsonLen: number; json: number; flag: number };
  /** struct gotel_api_process (trace_context.h), the value of gotel_api_tgids */
  private readonly processLayout: StructView;
  /** per process, the bools gotel set, to reset when it lets the process go */
  private readonly switches = new Map<number, ProcessSwitches>();
  /** spans of the global tracer of otel before v1.33.0, from their calls */
  private readonly legacy: LegacySpans;

  private constructor(object: ProbeObject, private readonly opts: ApiLoadOptions) {
    super(object);
    const s = new StructView(object.obj.btf().structLayout("otel_api_event"));
    this.context = spanContextDecoder(s);
    this.field = { kind: s.offset("kind", 4), jsonLen: s.offset("json_len", 4), json: s.offset("json"), flag: s.offset("flag", 8) };
    this.processLayout = new StructView(object.obj.btf().structLayout("gotel_api_process"));
    this.legacy = new LegacySpans(object.obj, opts.memory);
  }

  private apiProcess(types: number, etypes: number): Uint8Array {
    const b = new Uint8Array(this.processLayout.layout.size);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(this.processLayout.offset("types", 8), BigInt(types), true);
    dv.setBigUint64(this.processLayout.offset("etypes", 8), BigInt(etypes), true);
    return b;
  }

  static load(opts: ApiLoadOptions): OtelApiProbe {
    return new OtelApiProbe(ProbeObject.load("otel_api", { ...opts, writeUser: opts.writeIds }), opts);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const p = plan(exe);
    if ("skipped" in p) return p;
    if (!this.opts.enabled) return { skipped: "off (GOTEL_OTEL_API=false): the application's OpenTelemetry API spans are not recorded" };
    const reported = p.switches.filter((s) => s.variable === undefined).map((s) => s.name);
    const writes = this.opts.writeIds ? p.writing : undefined;
    const programs = { ...p.programs };
    const writing = (plain: string, variant: string): void => {
      if (!programs[plain]) return;
      programs[variant] = programs[plain];
      delete programs[plain];
    };
    if (writes) writing(PROGRAMS.start, PROGRAMS.startWriting);
    // the legacy path's writes need no offsets: its layouts are the same in every release it covers
    if (this.opts.writeIds) writing(LEGACY_STARTED.plain, LEGACY_STARTED.writing);
    const notes = [
      ...(reported.length ? [`no symbol table: ${reported.join(" and ")} switched on when its first span starts (that span is not recorded)`] : []),
      ...(this.opts.writeIds && p.sdks.length && !writes ? ["the application's spans keep a zero span context: trace.SpanContext's offsets were not found"] : []),
    ];
    return {
      ...(writes ? { offsetsSource: writes.source } : {}),
      sites: siteCount(programs),
      ...(notes.length ? { note: notes.join("; ") } : {}),
      attach: (tgid, path) => {
        const switches = this.switchesOf(tgid);
        const bias = processLoadBias(tgid, p.lowestLoad);
        if (bias === undefined) throw new GotelError(`pid ${tgid}: its executable's mapping was not found in /proc/${tgid}/maps`);
        // calls find API spans through their contexts' values from the first span on
        const tgids = this.object.obj.map("gotel_api_tgids");
        tgids.update(uintBytes(tgid, 4), this.apiProcess(p.types.start + bias, p.types.end + bias));
        if (p.legacy) {
          this.object.obj.map("otel_api_legacy_config").update(uintBytes(tgid, 4), this.legacyConfig(p.legacy, bias));
          this.legacy.attach(tgid, legacyProcess(p.legacy, bias));
        }
        let links: UprobeLinks[];
        try {
          links = this.object.attach(tgid, path, writes?.offsets ?? {}, programs);
        } catch (e) {
          tgids.delete(uintBytes(tgid, 4));
          if (p.legacy) {
            this.object.obj.map("otel_api_legacy_config").delete(uintBytes(tgid, 4));
            this.legacy.forget(tgid);
          }
          throw e;
        }
        for (const s of p.switches) {
          if (s.variable === undefined) continue;
          const bool = switches.boolBehind(s.variable + bias);
          if (bool === undefined || !switches.set(bool, true)) log.warn("could not switch on the OpenTelemetry API's spans", { pid: tgid, for: s.name });
        }
        return links;
      },
    };
  }

  /** struct otel_api_legacy_config: the code addresses the kernel tells the span and the options by */
  private legacyConfig(l: LegacyPlan, bias: number): Uint8Array {
    const v = new StructView(this.object.obj.btf().structLayout("otel_api_legacy_config"));
    const b = new Uint8Array(v.layout.size);
    const dv = new DataView(b.buffer);
    /** how many addresses an array member of the struct holds */
    const room = (field: string): number => v.layout.fields.get(field)!.size / 8;
    const put = (field: string, i: number, address: number | undefined): void => {
      if (address !== undefined) dv.setBigUint64(v.offset(field) + i * 8, BigInt(address + bias), true);
    };
    put("span_method", 0, l.spanMethod);
    dv.setBigUint64(v.offset("span_context", 8), BigInt(l.embedded), true);
    l.attributesStart.slice(0, room("attributes_start")).forEach((a, i) => put("attributes_start", i, a));
    l.attributesEvent.slice(0, room("attributes_event")).forEach((a, i) => put("attributes_event", i, a));
    const kinds = this.object.obj.btf().enumValues("otel_api_legacy_closure");
    const forKernel = l.closures.flatMap((c) => {
      const kind = c.kind === "links" ? kinds.get("LEGACY_CLOSURE_LINKS") : c.kind === "newRoot" ? kinds.get("LEGACY_CLOSURE_NEW_ROOT") : undefined;
      return kind === undefined ? [] : [{ entry: c.entry, kind }];
    });
    // one closure per place the compiler inlined WithLinks or WithNewRoot into: a program with more than the
    // kernel is told of has those options ignored at the others
    if (forKernel.length > room("closure_fn")) log.warn("the OpenTelemetry API's options: WithLinks/WithNewRoot are read at only some of the places the program uses them", { places: forKernel.length, read: room("closure_fn") });
    forKernel.slice(0, room("closure_fn")).forEach((c, i) => {
      put("closure_fn", i, c.entry);
      dv.setUint32(v.offset("closure_kind") + i * 4, Number(c.kind), true);
    });
    return b;
  }

  private switchesOf(tgid: number): ProcessSwitches {
    let s = this.switches.get(tgid);
    if (!s) this.switches.set(tgid, (s = new ProcessSwitches(tgid)));
    return s;
  }

  /** auto/sdk's spans carry the application's own wall-clock times; the legacy path's calls the kernel's, or
   * WithTimestamp's. */
  record(v: DataView, tgid: number, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord | undefined {
    const f = this.field;
    if (v.getUint32(f.kind, true) >= LEGACY_CALL.start) return this.legacy.record(v, tgid, toUnixNs);
    if (v.getUint32(f.kind, true) === KIND.flag) {
      const bool = Number(v.getBigUint64(f.flag, true));
      const switches = this.switchesOf(tgid);
      if (!switches.has(bool) && !switches.set(bool, true)) log.warn("could not switch on the OpenTelemetry API's spans", { pid: tgid });
      return undefined;
    }
    const json = decodeUtf8(v, f.json, Math.min(v.getUint32(f.jsonLen, true), v.byteLength - f.json));
    return parseSpanJson(json, this.context(v));
  }

  /** a span the application never ended is not exported by its SDK either */
  override unfinished(): SpanRecord[] {
    return [];
  }

  override forget(tgid: number): void {
    this.switches.get(tgid)?.reset();
    this.switches.delete(tgid);
    this.legacy.forget(tgid);
    this.object.obj.map("gotel_api_tgids").delete(uintBytes(tgid, 4));
    super.forget(tgid);
  }
}
