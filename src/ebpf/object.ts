/**
 * An eBPF object: opened from bytes, configured (constants, autoload, map sizes), loaded into the kernel,
 * then its maps and programs are used until close().
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { statSync } from "node:fs";
import { GotelError } from "../errors.ts";
import { collectIfPiledUp } from "../garbage.ts";
import { enabled, log } from "../log.ts";
import { Btf, BtfError } from "./btf.ts";
import { BpfError, EAGAIN, VerifierError } from "./errors.ts";
import { cstr, libbpf, pointer, strerror } from "./libbpf.ts";
import { captureLibbpfLog, keepLibbpfDebugLines, logLibbpfLine } from "./libbpf-log.ts";
import { kernelAtLeast } from "./kernel-version.ts";
import { BPF_F_NO_PREALLOC, BPF_MAP_TYPE_HASH, BpfMap } from "./map.ts";

/**
 * Hash maps allocate their entries as they are added from Linux 6.1, where they take them from the BPF memory
 * allocator, safe in every program type. Before it the verifier warns (a kernel WARN) for tracing programs that
 * use such maps: they stay preallocated there.
 */
const ON_DEMAND_HASH_MAPS = kernelAtLeast(6, 1);

export interface OpenOptions {
  /** shown in errors and used as the kernel-visible prefix of map names */
  name: string;
  /** print each program's verifier log, also on success (OTEL_GO_AUTO_SHOW_VERIFIER_LOG) */
  showVerifierLog?: boolean;
}

export class BpfProgram {
  constructor(
    /** @internal */ readonly handle: Pointer,
    readonly name: string,
    readonly section: string,
    readonly objectName: string,
    /** waits for its object's load if a thread still runs it (BpfObject.startLoad) */
    private readonly loaded: () => void,
  ) {}

  set autoload(on: boolean) {
    const err = libbpf().sym.bpf_program__set_autoload(this.handle, on);
    if (err < 0) throw new BpfError("bpf_program__set_autoload", err, `program '${this.name}'`, strerror(err));
  }

  get autoload(): boolean {
    return libbpf().sym.bpf_program__autoload(this.handle);
  }

  /** the loaded program's fd (-1 before load) */
  get fd(): number {
    this.loaded();
    return libbpf().sym.bpf_program__fd(this.handle);
  }
}

type ObjectState = "opened" | "loading" | "loaded" | "closed";

/** the loads BpfObject.sideBySide is collecting, while its make() runs */
let startedSideBySide: (PendingLoad<BpfObject> & { object: BpfObject })[] | undefined;

/** A load running in a thread of its own: finish() waits for it, and throws what load() would have thrown. */
export interface PendingLoad<T> {
  finish(): T;
}

export class BpfObject {
  private handle: Pointer | null;
  private state: ObjectState = "opened";
  /** libbpf reads the buffer until load: keep it referenced */
  private bytes: Uint8Array | null;
  private readonly nameBuf: Buffer;
  private btfCache: Btf | undefined;
  /** waits for the thread loading this object (startLoad), once */
  private loadThread: (() => { result: number; lines: { level: number; text: string }[] }) | undefined;
  /** why that load failed */
  private loadError: unknown;
  readonly programs: ReadonlyMap<string, BpfProgram>;
  private readonly maps = new Map<string, BpfMap>();

  private constructor(handle: Pointer, bytes: Uint8Array, nameBuf: Buffer, readonly name: string, private readonly opts: OpenOptions) {
    this.handle = handle;
    this.bytes = bytes;
    this.nameBuf = nameBuf;
    this.programs = this.listPrograms();
  }

  /** Opens an object from the bytes of a .o file (no kernel work yet). */
  static open(bytes: Uint8Array, opts: OpenOptions): BpfObject {
    if (bytes.byteLength < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
      throw new GotelError(`${opts.name} is not an eBPF object (not an ELF file)`, "pass a .o file built by clang -target bpf");
    }
    const { sym } = libbpf();
    const err = new Int32Array(1);
    const nameBuf = cstr(opts.name);
    if (opts.showVerifierLog || enabled("debug")) keepLibbpfDebugLines();
    const copy = new Uint8Array(bytes); // libbpf keeps pointing at it until load
    const { result: handle, lines } = captureLibbpfLog(() =>
      pointer(sym.gotel_open_mem(copy, copy.byteLength, nameBuf, opts.showVerifierLog ? 1 : 0, err)),
    );
    if (!handle) {
      const why = lines.filter((l) => !/^libbpf: loading object/.test(l)).at(-1);
      throw new BpfError("bpf_object__open_mem", err[0] ?? 0, opts.name, why ? `${strerror(err[0] ?? 0)}: ${why.trim()}` : strerror(err[0] ?? 0),
        "the file is not a valid eBPF object for this libbpf");
    }
    return new BpfObject(handle, copy, nameBuf, opts.name, opts);
  }

  /**
   * Opens an object, lets `configure` set it up (autoload, constants, shared maps) and loads it; closed again if
   * anything fails. A load the verifier could not finish for signals is done again from the start.
   */
  static openAndLoad(bytes: Uint8Array, opts: OpenOptions, configure: (obj: BpfObject) => void): BpfObject {
    if (startedSideBySide) {
      const pending = BpfObject.openAndStartLoad(bytes, opts, configure);
      startedSideBySide.push(pending);
      return pending.object;
    }
    return retryInterrupted(() => {
      const obj = BpfObject.openConfigured(bytes, opts, configure);
      return closedOnFailure(obj, () => {
        obj.load();
        return obj;
      });
    });
  }

  private static openConfigured(bytes: Uint8Array, opts: OpenOptions, configure: (obj: BpfObject) => void): BpfObject {
    // libbpf's and the verifier's memory would add to garbage an executable's analysis left (src/garbage.ts)
    collectIfPiledUp(`before loading ${opts.name}`);
    const obj = BpfObject.open(bytes, opts);
    return closedOnFailure(obj, () => {
      if (ON_DEMAND_HASH_MAPS) obj.allocateHashMapsOnDemand();
      configure(obj);
      return obj;
    });
  }

  /**
   * openAndLoad with the load in a thread of its own (the kernel's verifier runs in the thread that asks): objects
   * that do not depend on each other load side by side. On failure finish() closes the object and throws.
   */
  static openAndStartLoad(bytes: Uint8Array, opts: OpenOptions, configure: (obj: BpfObject) => void): PendingLoad<BpfObject> & { object: BpfObject } {
    const obj = BpfObject.openConfigured(bytes, opts, configure);
    const pending = closedOnFailure(obj, () => obj.startLoad());
    return {
      object: obj,
      // not tried again for signals (openAndLoad's retryInterrupted): the loading thread blocks them
      finish: () => closedOnFailure(obj, () => {
        pending.finish();
        return obj;
      }),
    };
  }

  /**
   * Runs make() with every openAndLoad in it loading in a thread of its own: what it makes may keep the objects
   * (their BTF and constants are there), and the first use of one that needs it loaded waits for its thread.
   * finish() waits for them all, and throws the first load's error after closing what make() made (`close`).
   */
  static sideBySide<T>(make: () => T, close: (made: T) => void): PendingLoad<T> & { made: T } {
    const outer = startedSideBySide;
    const loads: (PendingLoad<BpfObject> & { object: BpfObject })[] = [];
    startedSideBySide = loads;
    let made: T;
    try {
      made = make();
    } catch (e) {
      for (const l of loads) l.object.close();
      throw e;
    } finally {
      startedSideBySide = outer;
    }
    return {
      made,
      finish: () => {
        try {
          for (const l of loads) l.finish();
          return made;
        } catch (e) {
          close(made);
          throw e;
        }
      },
    };
  }

  private live(): Pointer {
    if (!this.handle) throw new GotelError(`eBPF object ${this.name} is already closed`);
    this.whenLoaded(); // libbpf's object must not be touched while a thread loads it
    return this.handle;
  }

  /** waits for the thread loading it, if one does */
  private whenLoaded(): void {
    if (this.state === "loading") this.waitForLoad();
  }

  private listPrograms(): Map<string, BpfProgram> {
    const { sym } = libbpf();
    const out = new Map<string, BpfProgram>();
    for (let p = pointer(sym.bpf_object__next_program(this.live(), null)); p; p = pointer(sym.bpf_object__next_program(this.live(), p))) {
      const name = String(sym.bpf_program__name(p));
      out.set(name, new BpfProgram(p, name, String(sym.bpf_program__section_name(p)), this.name, () => this.whenLoaded()));
    }
    return out;
  }

  program(name: string): BpfProgram {
    const p = this.programs.get(name);
    if (!p) throw new GotelError(`eBPF object ${this.name} has no program '${name}'`);
    return p;
  }

  /** The object's BTF as libbpf holds it after open (with .rodata offsets filled in). */
  btf(): Btf {
    if (this.btfCache) return this.btfCache;
    const { sym } = libbpf();
    const btf = pointer(sym.bpf_object__btf(this.live()));
    if (!btf) throw new BtfError(`eBPF object ${this.name} has no BTF`);
    const size = new Uint32Array(1);
    const raw = pointer(sym.btf__raw_data(btf, size));
    if (!raw || !size[0]) throw new BtfError(`eBPF object ${this.name}: cannot read its BTF`);
    this.btfCache = Btf.parse(new Uint8Array(toArrayBuffer(raw, 0, size[0]).slice(0)));
    return this.btfCache;
  }

  /**
   * Sets `volatile const` globals (the `.rodata` section) by name, before load. Values are little-endian
   * integers of the variable's own size, or raw bytes of exactly that size.
   */
  setConstants(values: Record<string, bigint | number | boolean | Uint8Array>): void {
    if (this.state !== "opened") throw new GotelError(`eBPF object ${this.name}: constants can only be set before load`);
    const vars = new Map(this.btf().datasecVariables(".rodata").map((v) => [v.name, v]));
    const rodata = this.mapHandle(".rodata");
    const size = new BigUint64Array(1);
    const base = pointer(libbpf().sym.bpf_map__initial_value(rodata, size));
    if (!base) throw new GotelError(`eBPF object ${this.name}: its .rodata has no initial value`);
    // libbpf's mmap-ed copy of the section: writing here is what skeletons do, and it is applied at load
    const section = new DataView(toArrayBuffer(base, 0, Number(size[0])));
    for (const [name, value] of Object.entries(values)) {
      const v = vars.get(name);
      if (!v) throw new BtfError(`eBPF object ${this.name} has no constant '${name}' in .rodata`);
      writeScalar(section, v.offset, v.size, value, `${this.name}: constant '${name}'`);
    }
  }

  /**
   * Makes this object use another loaded object's maps of the same names instead of creating its own, so that
   * objects share the ring buffer, the drop counters and the span contexts (bpf_map__reuse_fd, before load).
   */
  shareMaps(from: BpfObject, names: readonly string[]): void {
    if (this.state !== "opened") throw new GotelError(`eBPF object ${this.name}: maps can only be shared before load`);
    for (const name of names) {
      const fd = from.map(name).fd;
      const err = libbpf().sym.bpf_map__reuse_fd(this.mapHandle(name), fd);
      if (err < 0) throw new BpfError("bpf_map__reuse_fd", err, `${this.name}: map '${name}' from ${from.name}`, strerror(err));
    }
  }

  /** Objects that include event.h learn gotel's PID namespace, so pids in events are the ones gotel sees in /proc. */
  private setPidNamespace(): void {
    const names = new Set(this.btf().datasecVariables(".rodata").map((v) => v.name));
    if (!names.has("gotel_pidns_ino")) return;
    const ns = statSync("/proc/self/ns/pid", { bigint: true });
    this.setConstants({ gotel_pidns_dev: ns.dev, gotel_pidns_ino: ns.ino });
  }

  private mapHandle(name: string): Pointer {
    // matches internal maps (.rodata, .bss) by their section name, unlike bpf_map__name()
    const m = pointer(libbpf().sym.bpf_object__find_map_by_name(this.live(), cstr(name)));
    if (m) return m;
    throw new GotelError(`eBPF object ${this.name} has no map '${name}'`);
  }

  /** Loads every program whose autoload is on; a verifier rejection becomes a VerifierError with its log. */
  load(): void {
    this.beforeLoad();
    const { result: err, lines } = captureLibbpfLog(() => libbpf().sym.bpf_object__load(this.live()));
    this.afterLoad(err, lines);
  }

  /** load() in a thread of its own (gotel_load_start); nothing may use the object until finish() returned. */
  startLoad(): PendingLoad<void> {
    this.beforeLoad();
    const { sym } = libbpf();
    const err = new Int32Array(1);
    const thread = pointer(sym.gotel_load_start(this.live(), err));
    if (!thread) {
      log.debug("no thread for an eBPF object's load: loaded here", { object: this.name, reason: strerror(err[0] ?? 0) });
      const { result, lines } = captureLibbpfLog(() => sym.bpf_object__load(this.live()));
      return { finish: () => this.afterLoad(result, lines) };
    }
    this.state = "loading";
    this.loadThread = () => {
      this.loadThread = undefined;
      const text = new BigUint64Array(1);
      const size = new BigUint64Array(1);
      const result = sym.gotel_load_join(thread, text, size);
      const lines = keptLines(Number(text[0]), Number(size[0]));
      sym.gotel_load_free(thread);
      this.state = "opened";
      return { result, lines };
    };
    return { finish: () => this.waitForLoad() };
  }

  /** The end of startLoad's load: waited for once (a second wait finds it done, or failed and closed). */
  private waitForLoad(): void {
    if (this.loadError) throw this.loadError;
    if (this.state !== "loading" || !this.loadThread) {
      if (this.state === "loaded") return;
      throw new GotelError(`eBPF object ${this.name} is ${this.state}, not loading`);
    }
    const { result, lines } = this.loadThread();
    for (const l of lines) logLibbpfLine(l.level, l.text);
    try {
      this.afterLoad(result, lines.map((l) => l.text));
    } catch (e) {
      this.loadError = e; // whoever waits next (finish(), after a use that waited) gets the load's own error
      throw e;
    }
  }

  private beforeLoad(): void {
    if (this.state !== "opened") throw new GotelError(`eBPF object ${this.name} is already ${this.state}`);
    this.setPidNamespace();
  }

  private afterLoad(err: number, lines: string[]): void {
    const logs = verifierLogs(lines);
    if (this.opts.showVerifierLog) {
      for (const [prog, text] of logs) process.stderr.write(`--- verifier log: ${this.name}/${prog} ---\n${text}\n`);
    }
    if (err < 0) {
      if (-err === EAGAIN) {
        // the verifier gives up with EAGAIN when a signal is pending; libbpf already tried 5 times
        throw new BpfError("bpf_object__load", err, this.name, "the kernel's verifier was interrupted by signals on every attempt", INTERRUPTED_HINT);
      }
      const failed = failedProgram(lines);
      if (failed !== undefined || logs.size > 0) {
        const prog = failed ?? [...logs.keys()].at(-1) ?? "?";
        throw new VerifierError(this.name, prog, logs.get(prog) ?? "", -err);
      }
      const why = lines.at(-1)?.trim();
      throw new BpfError("bpf_object__load", err, this.name, why ? `${strerror(err)}: ${why}` : strerror(err));
    }
    this.state = "loaded";
    this.bytes = null;
    log.debug("loaded eBPF object", { object: this.name, programs: [...this.programs.values()].filter((p) => p.autoload).length });
  }

  /**
   * Makes every plain hash map allocate its entries as they are added (BPF_F_NO_PREALLOC) instead of all of them
   * when it is made: the in-flight maps are sized for bursts (the net/http server's: 8,192 requests of 1.7 KB,
   * 14 MB) but hold a few entries most of the time, and preallocated entries are kernel memory charged to gotel's
   * memory cgroup, which a container's memory limit counts. An entry the kernel cannot allocate is counted where a
   * full map's is (GOTEL_COUNTER_INFLIGHT_LOST). LRU maps are always preallocated.
   */
  allocateHashMapsOnDemand(): void {
    const { sym } = libbpf();
    for (let m = pointer(sym.bpf_object__next_map(this.live(), null)); m; m = pointer(sym.bpf_object__next_map(this.live(), m))) {
      if (sym.bpf_map__type(m) !== BPF_MAP_TYPE_HASH) continue;
      const err = sym.bpf_map__set_map_flags(m, sym.bpf_map__map_flags(m) | BPF_F_NO_PREALLOC);
      if (err < 0) throw new BpfError("bpf_map__set_map_flags", err, `${this.name}: map '${String(sym.bpf_map__name(m))}'`, strerror(err));
    }
  }

  /** The names of the object's own maps (not .rodata/.bss). */
  *mapNames(): Generator<string> {
    const { sym } = libbpf();
    for (let m = pointer(sym.bpf_object__next_map(this.live(), null)); m; m = pointer(sym.bpf_object__next_map(this.live(), m))) {
      const name = String(sym.bpf_map__name(m));
      if (!name.includes(".")) yield name;
    }
  }

  map(name: string): BpfMap {
    this.whenLoaded(); // a map made in configure is used after the load
    let m = this.maps.get(name);
    if (!m) {
      m = new BpfMap(this.mapHandle(name), name, this.name);
      this.maps.set(name, m);
    }
    return m;
  }

  /** Unloads everything; links attached to the programs must be destroyed first. */
  close(): void {
    if (!this.handle) return;
    // a thread still loading it is waited for: libbpf's object must not go away under it
    this.loadThread?.();
    libbpf().sym.bpf_object__close(this.handle);
    this.handle = null;
    this.state = "closed";
    void this.nameBuf;
  }
}

/** fn's result; when it throws, obj is closed first. */
function closedOnFailure<T>(obj: BpfObject, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    obj.close();
    throw e;
  }
}

function writeScalar(view: DataView, offset: number, size: number, value: bigint | number | boolean | Uint8Array, what: string): void {
  if (value instanceof Uint8Array) {
    if (value.byteLength !== size) throw new GotelError(`${what} is ${size} bytes, got ${value.byteLength}`);
    new Uint8Array(view.buffer, view.byteOffset + offset, size).set(value);
    return;
  }
  const v = typeof value === "boolean" ? (value ? 1n : 0n) : BigInt(value);
  const bits = BigInt(size * 8);
  if (![1, 2, 4, 8].includes(size) || v < -(1n << (bits - 1n)) || v >= 1n << bits) {
    throw new GotelError(`${what} (${size} bytes) cannot hold ${v}`);
  }
  const u = BigInt.asUintN(size * 8, v);
  for (let i = 0; i < size; i++) view.setUint8(offset + i, Number((u >> BigInt(8 * i)) & 0xffn));
}

/** The lines a load in a thread of its own kept (gotel_helpers.c, struct gotel_load): each its level's digit, its text, a NUL. */
function keptLines(at: number, size: number): { level: number; text: string }[] {
  if (!at || !size) return [];
  const text = Buffer.from(toArrayBuffer(at as Pointer, 0, size)).toString("utf8");
  return text.split("\0").filter((l) => l.length > 0).map((l) => ({ level: l.charCodeAt(0) - 48, text: l.slice(1) }));
}

/** Verifier logs printed by libbpf, by program: "prog 'x': -- BEGIN PROG LOAD LOG --" … "-- END PROG LOAD LOG --". */
function verifierLogs(lines: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const text = lines.join("\n");
  const re = /prog '([^']+)': -- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/g;
  for (const m of text.matchAll(re)) out.set(m[1] ?? "?", (m[2] ?? "").trimEnd());
  return out;
}

function failedProgram(lines: string[]): string | undefined {
  for (const l of lines) {
    const m = /prog '([^']+)': (BPF program load failed|failed to load)/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}

const INTERRUPTED_HINT = "run gotel again; something sends it signals while it loads (a profiler's SIGPROF, for one)";

/**
 * Runs open-and-load again (a failed bpf_object__load cannot be retried on the same object) while the verifier
 * was interrupted by signals, up to `attempts` times in all (BpfObject.openAndLoad).
 */
export function retryInterrupted<T>(openAndLoad: () => T, attempts = 3): T {
  for (let i = 1; ; i++) {
    try {
      return openAndLoad();
    } catch (e) {
      if (i >= attempts || !(e instanceof BpfError) || e.errno !== EAGAIN) throw e;
      log.debug("eBPF object load interrupted by signals; again", { attempt: i });
    }
  }
}
