/**
 * One instrumentation's eBPF object, loaded once and shared by every target process (DESIGN.md decision 2):
 * per process it writes the struct offsets into the object's config map (keyed by tgid) and attaches programs
 * at the process's probe sites with a pid filter. Objects share the ring buffer, the counters and the span
 * contexts: the core object (core-object.ts) owns those maps and every instrumentation's object reuses them.
 * Maps named `<object>_*` other than its config and scratch maps are keyed by (tgid, pointer).
 */
import { readEmbeddedObject } from "../ebpf/assets.ts";
import { WRITES_USER_MEMORY } from "../ebpf/kernel-checks.ts";
import { attachUprobes, type AttachMode, type UprobeLinks } from "../ebpf/link.ts";
import { uintBytes } from "../ebpf/map.ts";
import { BtfError } from "../ebpf/btf.ts";
import { BpfObject, type BpfProgram } from "../ebpf/object.ts";
import { processKeys, useCoreMaps } from "../ebpf/shared-maps.ts";
import { StructView } from "../ebpf/struct-view.ts";

const ABSENT = 0xffff_ffff_ffff_ffffn;
/** GOTEL_FLAG_SAMPLED (bpf/include/trace_context.h): W3C trace-flags bit 0 */
const SAMPLED = 0x01;

export interface LoadOptions {
  mode: AttachMode;
  showVerifierLog: boolean;
  /** .rodata settings (sampling, propagation) */
  constants: Record<string, bigint | number>;
  /** the type of this object's events (gotel_event_type_id), unique among the objects loaded */
  eventType: number;
  /** the object whose SHARED_MAPS this one uses (the core's); without one, this object owns its own */
  shareWith?: BpfObject;
  /** load the programs that write into the target (WRITES_USER_MEMORY): the kernel allows it and it is wanted */
  writeUser?: boolean;
  /** an object file to load instead of the embedded one (tests load variants of the product's objects) */
  bytes?: Uint8Array;
}

export class ProbeObject {
  private readonly configLayout: StructView;

  private constructor(
    readonly obj: BpfObject,
    readonly mode: AttachMode,
    readonly name: string,
    readonly eventType: number,
    private readonly configMap: string,
    private readonly perProcess: readonly string[],
    /** a prog array to fill before the first attach (tailSlots) */
    private tails: string | undefined,
  ) {
    this.configLayout = new StructView(obj.btf().structLayout(configMap));
  }

  /** `name` is the object (bpf/<name>.bpf.c); its config map and struct are both named `<name>_config`. */
  static load(name: string, opts: LoadOptions): ProbeObject {
    let perProcess: string[] = [];
    let tails: string | undefined;
    const obj = BpfObject.openAndLoad(opts.bytes ?? readEmbeddedObject(name), { name: `${name}.bpf.o`, showVerifierLog: opts.showVerifierLog }, (o) => {
      // read before the load, which may run in a thread of its own (BpfObject.sideBySide) while this goes on
      const maps = [...o.mapNames()];
      tails = maps.find((m) => m === `${name}_tails`);
      perProcess = maps.filter((m) => m.startsWith(`${name}_`) && m !== `${name}_config` && !m.endsWith("_scratch") && m !== tails);
      for (const p of o.programs.values()) {
        const multi = p.section.startsWith("uprobe.multi");
        p.autoload = multi === (opts.mode === "multi") && (opts.writeUser === true || !WRITES_USER_MEMORY.test(p.name));
      }
      const names = new Set(o.btf().datasecVariables(".rodata").map((v) => v.name));
      const constants = { ...opts.constants, gotel_event_type_id: opts.eventType };
      o.setConstants(Object.fromEntries(Object.entries(constants).filter(([k]) => names.has(k))));
      if (opts.shareWith) useCoreMaps(o, opts.shareWith);
    });
    try {
      // the shared span-context map is purged by the object that owns it
      return new ProbeObject(obj, opts.mode, name, opts.eventType, `${name}_config`, opts.shareWith ? perProcess : [...perProcess, "gotel_spans_by_ctx"], tails);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /** Writes the process's offsets (config struct member -> offset, undefined = absent), then attaches each program. */
  attach(tgid: number, path: string, offsets: Record<string, number | undefined>, programs: Record<string, readonly number[]>): UprobeLinks[] {
    this.fillTails();
    const config = this.obj.map(this.configMap);
    config.update(uintBytes(tgid, 4), this.configBytes(offsets));
    const links: UprobeLinks[] = [];
    try {
      for (const [program, sites] of Object.entries(programs)) {
        links.push(attachUprobes(this.program(program), { path, pid: tgid, offsets: sites.map(BigInt) }, this.mode));
      }
      return links;
    } catch (e) {
      for (const l of links) l.destroy();
      config.delete(uintBytes(tgid, 4));
      throw e;
    }
  }

  /**
   * The sampled calls of a process still in flight, as its map `<name>_inflight` holds them (value struct of the
   * same name, the event at `eventField`): copies of their events, ended at endNs. Call before forget().
   */
  inflightEvents(tgid: number, eventField: string, endNs: bigint): DataView[] {
    return this.inflightCalls(tgid, eventField, endNs).map((c) => c.event);
  }

  /** inflightEvents, each with the whole in-flight value it was cut from (what a call keeps beside its event);
   * `name`: another map of this object's calls in flight, keyed by (tgid, …), whose value struct has its name. */
  inflightCalls(tgid: number, eventField: string, endNs: bigint, name = `${this.name}_inflight`): { event: DataView; value: Uint8Array }[] {
    const layout = new StructView(this.obj.btf().structLayout(name));
    const start = layout.offset(eventField);
    const end = layout.offset(`${eventField}.hdr.end_ns`, 8) - start;
    const flags = layout.offset(`${eventField}.sc.flags`, 1) - start;
    const map = this.obj.map(name);
    const calls: { event: DataView; value: Uint8Array }[] = [];
    for (const key of processKeys(map, tgid)) {
      const value = map.lookup(key);
      if (!value) continue;
      const event = new DataView(value.slice(start).buffer);
      if ((event.getUint8(flags) & SAMPLED) === 0) continue;
      event.setBigUint64(end, endNs, true);
      calls.push({ event, value });
    }
    return calls;
  }

  /** Drops a gone process's config and whatever its calls left in the maps keyed by (tgid, pointer). */
  forget(tgid: number): void {
    this.obj.map(this.configMap).delete(uintBytes(tgid, 4));
    for (const name of this.perProcess) {
      const map = this.obj.map(name);
      for (const k of processKeys(map, tgid)) map.delete(k);
    }
  }

  /**
   * Fills the prog array `<name>_tails`, if the object has one: work many of its programs share, put in a program
   * they tail-call so that the kernel verifies it once. Its slots are the members of `enum <name>_tail` in the
   * object's BTF, each named for its program: `NETHTTP_SERVER_TAIL_END` is the slot of `nethttp_server_end`.
   */
  private fillTails(): void {
    if (!this.tails) return;
    const slots = this.obj.map(this.tails);
    const prefix = `${this.name.toUpperCase()}_TAIL_`;
    for (const [member, slot] of this.obj.btf().enumValues(`${this.name}_tail`)) {
      if (!member.startsWith(prefix)) throw new BtfError(`eBPF object ${this.name}.bpf.o: enum ${this.name}_tail's ${member} does not start with ${prefix}`);
      const program = `${this.name}_${member.slice(prefix.length).toLowerCase()}`;
      slots.update(uintBytes(Number(slot), 4), uintBytes(this.program(program).fd, 4));
    }
    this.tails = undefined;
  }

  /** one of its programs, of the attach mode it was loaded for */
  private program(name: string): BpfProgram {
    return this.obj.program(this.mode === "multi" ? `${name}_multi` : name);
  }

  private configBytes(offsets: Record<string, number | undefined>): Uint8Array {
    const bytes = new Uint8Array(this.configLayout.layout.size);
    const dv = new DataView(bytes.buffer);
    for (const [key, o] of Object.entries(offsets)) {
      dv.setBigUint64(this.configLayout.offset(key, 8), o === undefined ? ABSENT : BigInt(o), true);
    }
    return bytes;
  }

  close(): void {
    this.obj.close();
  }
}
