/**
 * The self-test probe (bpf/selftest.bpf.c) and doctor's live round trip: attach a uprobe to
 * gotel_uprobe_trigger() in our own libbpf .so, call it, and read the event back through the ring buffer.
 */
import { GotelError } from "../errors.ts";
import { ElfFile } from "../gobin/elf.ts";
import { readFileSync } from "node:fs";
import { readEmbeddedObject } from "./assets.ts";
import { monotonicNs } from "./libc.ts";
import { libbpf } from "./libbpf.ts";
import { attachUprobes, type AttachMode, type UprobeLinks, type UprobeSites } from "./link.ts";
import { uintBytes } from "./map.ts";
import { BpfObject } from "./object.ts";
import { RingBufferReader } from "./ring-buffer.ts";
import { StructView } from "./struct-view.ts";

export interface SelftestEvent {
  type: number;
  tgid: number;
  tid: number;
  goroutine: bigint;
  startNs: bigint;
  goArg1: bigint;
  goArg2: bigint;
  cArg1: bigint;
  magic: bigint;
  processTag: bigint;
}

const PROGRAMS: Record<AttachMode, string> = { classic: "selftest_uprobe", multi: "selftest_uprobe_multi" };

/** The selftest object, loaded for one attach mode, with a reader collecting its events. */
export class SelftestProbe {
  readonly events: SelftestEvent[] = [];
  private readonly reader: RingBufferReader;
  private readonly links: UprobeLinks[] = [];

  private constructor(readonly obj: BpfObject, readonly mode: AttachMode) {
    const s = new StructView(obj.btf().structLayout("selftest_event"));
    const f = {
      type: s.u32("hdr.type"), tgid: s.u32("hdr.tgid"), tid: s.u32("hdr.tid"), goroutine: s.u64("hdr.goroutine"),
      startNs: s.u64("hdr.start_ns"), goArg1: s.u64("go_arg1"), goArg2: s.u64("go_arg2"), cArg1: s.u64("c_arg1"),
      magic: s.u64("magic"), processTag: s.u64("process_tag"),
    };
    this.reader = new RingBufferReader(obj.map("events"), (v) => {
      this.events.push({
        type: f.type(v), tgid: f.tgid(v), tid: f.tid(v), goroutine: f.goroutine(v), startNs: f.startNs(v),
        goArg1: f.goArg1(v), goArg2: f.goArg2(v), cArg1: f.cArg1(v), magic: f.magic(v), processTag: f.processTag(v),
      });
    });
  }

  static load(mode: AttachMode, opts: { magic: bigint; showVerifierLog?: boolean }): SelftestProbe {
    const obj = BpfObject.openAndLoad(readEmbeddedObject("selftest"), { name: "selftest.bpf.o", showVerifierLog: opts.showVerifierLog }, (o) => {
      for (const [m, prog] of Object.entries(PROGRAMS)) o.program(prog).autoload = m === mode;
      o.setConstants({ selftest_magic: opts.magic });
    });
    try {
      return new SelftestProbe(obj, mode);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /** The enum value the kernel side uses for selftest events, read from BTF. */
  get eventType(): number {
    return Number(this.obj.btf().enumValues("gotel_event_type").get("GOTEL_EVENT_SELFTEST"));
  }

  setProcessTag(tgid: number, tag: bigint): void {
    this.obj.map("selftest_processes").update(uintBytes(tgid, 4), uintBytes(tag, 8));
  }

  attach(sites: UprobeSites): UprobeLinks {
    const links = attachUprobes(this.obj.program(PROGRAMS[this.mode]), sites, this.mode);
    this.links.push(links);
    return links;
  }

  /** Reads events into `events` from a timer from now on. */
  startReading(): void {
    this.reader.start();
  }

  /** Reads pending events into `events`; returns how many arrived. */
  drain(): number {
    return this.reader.drain();
  }

  /** Events lost in the kernel because the ring buffer was full. */
  kernelDrops(): bigint {
    return this.obj.map("drops").sumPerCpuU64(uintBytes(0, 4));
  }

  close(): void {
    for (const l of this.links) l.destroy();
    this.reader.close();
    this.obj.close();
  }
}

/** File offset of an exported function of our libbpf .so (for probing our own process). */
export function libbpfFunctionOffset(name: string): bigint {
  const { path } = libbpf();
  const elf = ElfFile.parse(new Uint8Array(readFileSync(path)), "libbpf.so");
  const sym = elf.symbols(".dynsym").find((s) => s.name === name && s.isFunction);
  const off = sym ? elf.fileOffset(sym.value) : undefined;
  if (off === undefined) throw new GotelError(`the embedded libbpf has no function ${name}`, "rebuild gotel (npm run build)");
  return BigInt(off);
}

export interface RoundTrip {
  mode: AttachMode;
  /** microseconds from the call to the event being read */
  latencyUs: number;
}

/** Attach, trigger, read back; throws a GotelError naming the step that did not work. */
export function liveRoundTrip(mode: AttachMode, showVerifierLog = false): RoundTrip {
  const magic = BigInt(Date.now()) * 1000n + 7n;
  const probe = SelftestProbe.load(mode, { magic, showVerifierLog });
  try {
    const tag = 0x601e1n;
    probe.setProcessTag(process.pid, tag);
    probe.attach({ path: libbpf().path, offsets: [libbpfFunctionOffset("gotel_uprobe_trigger")], pid: process.pid });
    const x = BigInt(process.pid) * 1000n + 42n;
    const t0 = performance.now();
    const before = monotonicNs();
    if (libbpf().sym.gotel_uprobe_trigger(x) !== x + 1n) throw new GotelError("gotel_uprobe_trigger returned a wrong value");
    const after = monotonicNs();
    probe.drain();
    const latencyUs = (performance.now() - t0) * 1000;
    const e = probe.events.find((ev) => ev.cArg1 === x);
    if (!e) throw new GotelError(`the ${mode} uprobe attached but no event came back through the ring buffer`);
    // span timestamps rely on bpf_ktime_get_ns() being CLOCK_MONOTONIC
    if (e.startNs < before || e.startNs > after) {
      throw new GotelError(`the event's kernel time ${e.startNs} is outside CLOCK_MONOTONIC's [${before}, ${after}] around the call`);
    }
    if (e.magic !== magic) throw new GotelError(`the event carries constant ${e.magic}, not the ${magic} set before load`);
    if (e.processTag !== tag) {
      throw new GotelError(`the per-process map lookup by tgid ${e.tgid} failed (gotel's pid is ${process.pid})`,
        "the kernel did not report gotel's pid as gotel sees it; please report this with `gotel doctor` output");
    }
    return { mode, latencyUs };
  } finally {
    probe.close();
  }
}
