/** The loaded OpenTelemetry API object (otel_api.bpf.c beside it) as a SpanProbe. */
import { uintBytes } from "../../ebpf/map.ts";
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import { log } from "../../log.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { decodeUtf8, spanContextDecoder } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { PROGRAMS, plan } from "./plan.ts";
import { parseSpanJson } from "./spans.ts";
import { boolBehind, setBool } from "./switches.ts";

export interface ApiLoadOptions extends LoadOptions {
  /** false (GOTEL_OTEL_API=false): the API is left alone, no switch set, no span recorded */
  enabled: boolean;
  /** write gotel's IDs into the application's spans (the kernel allows bpf_probe_write_user) */
  writeIds: boolean;
}

/** enum otel_api_event_kind */
const KIND = { span: 1, flag: 2 } as const;

export class OtelApiProbe extends ObjectSpanProbe {
  readonly name = "OpenTelemetry API";
  private readonly context: ReturnType<typeof spanContextDecoder>;
  private readonly field: { kind: number; jsonLen: number; json: number; flag: number };
  /** per process, the bools gotel set, to reset when it lets the process go */
  private readonly switched = new Map<number, Set<number>>();

  private constructor(object: ProbeObject, private readonly opts: ApiLoadOptions) {
    super(object);
    const s = new StructView(object.obj.btf().structLayout("otel_api_event"));
    this.context = spanContextDecoder(s);
    this.field = { kind: s.offset("kind", 4), jsonLen: s.offset("json_len", 4), json: s.offset("json"), flag: s.offset("flag", 8) };
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
    const { [PROGRAMS.start]: starts, ...others } = p.programs;
    const programs = { ...others, [writes ? PROGRAMS.startWriting : PROGRAMS.start]: starts! };
    const notes = [
      ...(reported.length ? [`no symbol table: ${reported.join(" and ")} switched on when its first span starts (that span is not recorded)`] : []),
      ...(this.opts.writeIds && !writes ? ["the application's spans keep a zero span context: trace.SpanContext's offsets were not found"] : []),
    ];
    return {
      ...(writes ? { offsetsSource: writes.source } : {}),
      sites: siteCount(programs),
      ...(notes.length ? { note: notes.join("; ") } : {}),
      attach: (tgid, path) => {
        const links = this.object.attach(tgid, path, writes?.offsets ?? {}, programs);
        // children find API spans through their contexts' values from here on
        this.object.obj.map("gotel_api_tgids").update(uintBytes(tgid, 4), new Uint8Array([1]));
        for (const s of p.switches) {
          if (s.variable === undefined) continue;
          const bool = boolBehind(tgid, s.variable, p.lowestLoad);
          if (bool === undefined || !this.switchOn(tgid, bool)) log.warn("could not switch on the OpenTelemetry API's spans", { pid: tgid, for: s.name });
        }
        return links;
      },
    };
  }

  private switchOn(tgid: number, bool: number): boolean {
    if (!setBool(tgid, bool, true)) return false;
    let set = this.switched.get(tgid);
    if (!set) this.switched.set(tgid, (set = new Set()));
    set.add(bool);
    return true;
  }

  record(v: DataView, tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord | undefined {
    const f = this.field;
    if (v.getUint32(f.kind, true) === KIND.flag) {
      const bool = Number(v.getBigUint64(f.flag, true));
      if (!this.switched.get(tgid)?.has(bool) && !this.switchOn(tgid, bool)) log.warn("could not switch on the OpenTelemetry API's spans", { pid: tgid });
      return undefined;
    }
    const json = decodeUtf8(v, f.json, Math.min(v.getUint32(f.jsonLen, true), v.byteLength - f.json));
    void toUnixNs; // the application's own wall-clock times are the span's
    return parseSpanJson(json, this.context(v));
  }

  /** a span the application never ended is not exported by its SDK either */
  override unfinished(): SpanRecord[] {
    return [];
  }

  override forget(tgid: number): void {
    for (const bool of this.switched.get(tgid) ?? []) setBool(tgid, bool, false);
    this.switched.delete(tgid);
    this.object.obj.map("gotel_api_tgids").delete(uintBytes(tgid, 4));
    super.forget(tgid);
  }
}
