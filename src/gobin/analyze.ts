/**
 * Binary analysis, the first stage of the pipeline: what one Go executable is (version, arch, build mode,
 * modules) and, on demand, where its functions and returns are and where struct fields sit. Readers are run
 * lazily and cached, so `inspect` and the probe planner pay only for what they ask.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { GotelError } from "../errors.ts";
import { goRelease, readBuildInfo, type BuildInfo, type GoModule } from "./buildinfo.ts";
import { readStructFieldOffsets, type FieldOffset } from "./dwarf.ts";
import { ElfFile, ET_DYN } from "./elf.ts";
import { readFunctions, type FunctionTable, type GoFunction } from "./functions.ts";
import { entryProbeSite, findCallSites, findCapturedArgument, findResultTests, findReturnSites, findSuccessEnd, type ResultRegister, type SuccessEnd, type SuccessShape } from "./return-sites.ts";

/** Go executables bigger than this are refused rather than read into memory. */
const MAX_EXECUTABLE_BYTES = 2 * 1024 ** 3;

export interface ProbeSites {
  function: GoFunction;
  /** file offset of the entry probe and whether the kernel emulates the instruction there */
  entry: { offset: number; emulated: boolean };
  /** file offsets of every return instruction */
  returns: number[];
}

export class GoExecutable {
  readonly buildInfo: BuildInfo;
  private functionTable: FunctionTable | undefined;
  /** DWARF answers by the list of fields asked: the preflight's readiness and the agent's plans ask the same */
  private readonly dwarfAnswers = new Map<string, Map<string, FieldOffset> | undefined>();
  /** entries of the runtime's functions that never return (panics), where control-flow walks stop */
  private noReturn: Set<number> | undefined;

  private constructor(readonly path: string, readonly elf: ElfFile, private readonly file?: FileReader) {
    this.buildInfo = readBuildInfo(elf);
  }

  /**
   * Opens and checks an executable; throws a GotelError with one line for anything that is not a Go program.
   * Its bytes are read as analysis asks for them (headers, symbols, pclntab, DWARF, code around probe sites),
   * not whole: close() when done with it.
   */
  static open(path: string): GoExecutable {
    const file = FileReader.open(path);
    try {
      return new GoExecutable(path, ElfFile.parse(file.bytes, path, file), file);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Lets the file go; nothing more of it can be read (what was read stays). */
  close(): void {
    this.file?.close();
  }

  static fromBytes(bytes: Uint8Array, name: string): GoExecutable {
    return new GoExecutable(name, ElfFile.parse(bytes, name));
  }

  /** "1.23.12" (without the "go" prefix and any suffix); a development toolchain's series, "1.25" */
  get goVersion(): string {
    return goRelease(this.buildInfo.goVersion)?.version ?? this.buildInfo.goVersion;
  }

  /** Built by a development toolchain (Go's own tip), whose structs no release's offsets table describes. */
  get goDevel(): boolean {
    return goRelease(this.buildInfo.goVersion)?.devel ?? false;
  }

  get arch(): "amd64" | "arm64" {
    const a = this.elf.arch;
    if (!a) throw new GotelError(`${this.path}: unsupported architecture (ELF machine ${this.elf.machine}); gotel supports amd64 and arm64`);
    return a;
  }

  /** No .symtab: functions come from .gopclntab. */
  get stripped(): boolean {
    return this.elf.section(".symtab") === undefined;
  }

  /** Looks at the section headers only: decompressing .debug_info is the expensive part of reading DWARF. */
  get hasDwarf(): boolean {
    return this.elf.section(".debug_info") !== undefined || this.elf.section(".zdebug_info") !== undefined;
  }

  get pie(): boolean {
    return this.elf.type === ET_DYN;
  }

  /** Linked with C code: the runtime/cgo package is in the binary. */
  get cgo(): boolean {
    return this.functions().get("_cgo_init") !== undefined || this.functions().withPrefix("runtime/cgo.").length > 0;
  }

  setting(key: string): string | undefined {
    return this.buildInfo.settings.find(([k]) => k === key)?.[1];
  }

  /** The module a package path belongs to ("std" for the standard library), with its version. */
  moduleVersion(modulePath: string): string | undefined {
    if (modulePath === "std") return this.goDevel ? `${this.goVersion}-devel` : this.goVersion;
    const m = this.buildInfo.deps.find((d) => d.path === modulePath) ?? (this.buildInfo.main.path === modulePath ? this.buildInfo.main : undefined);
    return m ? effectiveVersion(m) : undefined;
  }

  functions(): FunctionTable {
    this.functionTable ??= readFunctions(this.elf);
    return this.functionTable;
  }

  /** Entry and return probe sites of a function, or undefined when the binary does not have it. */
  probeSites(name: string): ProbeSites | undefined {
    const fn = this.functions().get(name);
    const entry = this.entrySite(name);
    if (!fn || !entry) return undefined;
    return { function: fn, entry, returns: findReturnSites(this.elf, fn) };
  }

  /** The entry probe site of a function (no return sites: they take decoding the whole function). */
  entrySite(name: string): ProbeSites["entry"] | undefined {
    const fn = this.functions().get(name);
    if (!fn) return undefined;
    const entry = entryProbeSite(this.elf, fn);
    return { offset: entry.offset, emulated: entry.emulated };
  }

  /** File offsets of the direct calls from `caller` to `callee`; undefined when the binary lacks either. */
  callSites(caller: string, callee: string): number[] | undefined {
    const from = this.functions().get(caller);
    const to = this.functions().get(callee);
    if (!from || !to) return undefined;
    return findCallSites(this.elf, from, to.entry);
  }

  /**
   * Where a span ends on `name`'s success path without a RET probe, and the RETs only that path reaches (amd64;
   * return-sites.ts says why), or why not: undefined when the binary lacks the function or the callee.
   */
  successEnd(name: string, shape: SuccessShape): SuccessEnd | { missing: string } | undefined {
    const fn = this.functions().get(name);
    const callee = this.functions().get(shape.callee);
    if (!fn || !callee) return undefined;
    this.noReturn ??= new Set(
      [...this.functions().withPrefix("runtime.panic"), ...["runtime.gopanic", "runtime.throw", "runtime.fatal"].flatMap((n) => this.functions().get(n) ?? [])]
        .map((f) => f.entry),
    );
    return findSuccessEnd(this.elf, fn, shape, callee.entry, this.noReturn);
  }

  /**
   * Where `caller` tests `callee`'s result in `reg` right after each call (an emulated Jcc that sees all of the
   * callee's results; return-sites.ts findResultTests), or why not; undefined when the binary lacks either.
   */
  resultTests(caller: string, callee: string, reg: ResultRegister): number[] | { missing: string } | undefined {
    const from = this.functions().get(caller);
    const to = this.functions().get(callee);
    if (!from || !to) return undefined;
    return findResultTests(this.elf, from, to.entry, callee, reg);
  }

  /** The closure-context offset of the pointer a closure passes an interface through to its first call (return-sites.ts). */
  capturedArgument(closure: string): { offset: number } | { missing: string } | undefined {
    const fn = this.functions().get(closure);
    return fn ? findCapturedArgument(this.elf, fn) : undefined;
  }

  /** Struct field offsets from the binary's own DWARF; undefined when it has none (stripped with -w). */
  dwarfFieldOffsets(fields: readonly string[]): Map<string, FieldOffset> | undefined {
    if (!this.hasDwarf) return undefined;
    const key = fields.join("\n");
    if (!this.dwarfAnswers.has(key)) this.dwarfAnswers.set(key, readStructFieldOffsets(this.elf, fields));
    return this.dwarfAnswers.get(key);
  }
}

/** Whether a file is a Go executable gotel can read (for `--all`); never throws. */
export function isGoExecutable(path: string): boolean {
  try {
    GoExecutable.open(path).close();
    return true;
  } catch {
    return false;
  }
}

/** The version that was built: a replacement's, when the module was replaced by another version. */
export function effectiveVersion(m: GoModule): string {
  return m.replace?.version && m.replace.version !== "" ? m.replace.version : m.version;
}

const CHUNK = 64 * 1024;
/** Closes what a reader forgot to close, when its executable is collected. */
const unclosed = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch { /* already closed */ }
});

/**
 * An executable's bytes, read by 64 KiB chunks as they are first needed into an array of the file's size (its
 * untouched pages cost no memory). The file stays open until close(): /proc/PID/exe keeps naming the file the
 * process runs, and a running executable cannot be written to (ETXTBSY), so later reads see the same file.
 * (Not Bun.mmap: it opens the file for writing, which a running executable refuses.)
 */
class FileReader {
  private readonly loaded: Uint8Array;
  private fd: number | undefined;

  private constructor(private readonly path: string, fd: number, readonly bytes: Uint8Array) {
    this.fd = fd;
    this.loaded = new Uint8Array(Math.ceil(bytes.byteLength / CHUNK));
    unclosed.register(this, fd, this);
  }

  static open(path: string): FileReader {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
      throw new GotelError(`${path}: ${why}`, code === "EACCES" ? "run gotel as a user that can read it" : undefined);
    }
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new GotelError(`${path}: is a directory, not an executable`);
      if (st.size > MAX_EXECUTABLE_BYTES) throw new GotelError(`${path}: ${st.size} bytes is too big for a Go executable`);
      return new FileReader(path, fd, new Uint8Array(st.size));
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  load(from: number, to: number): void {
    for (let c = Math.floor(from / CHUNK); c * CHUNK < to; c++) {
      if (this.loaded[c]) continue;
      if (this.fd === undefined) throw new GotelError(`${this.path}: read after the executable was closed (a gotel bug)`);
      const start = c * CHUNK;
      const end = Math.min(start + CHUNK, this.bytes.byteLength);
      for (let off = start; off < end; ) {
        const n = readSync(this.fd, this.bytes, off, end - off, off);
        if (n === 0) throw new GotelError(`${this.path}: the file ends at ${off} bytes, before its size said (${this.bytes.byteLength}): it changed while gotel read it`);
        off += n;
      }
      this.loaded[c] = 1;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    unclosed.unregister(this);
    closeSync(this.fd);
    this.fd = undefined;
  }
}
