/**
 * The functions of a Go executable by name: from `.symtab` when the binary has one (exact names and sizes), else
 * from `.gopclntab`, which even a stripped Go binary keeps. Either way every function carries the file offset a
 * uprobe needs.
 */
import { noFTL } from "bun:jsc";
import { type ElfFile, PF_X, PT_LOAD, type Segment, type SymbolRecord, STT_FUNC } from "./elf.ts";
import { type GoFunction, PclntabError, readPclntab } from "./pclntab.ts";

export type { GoFunction } from "./pclntab.ts";

export interface FunctionTable {
  source: "symtab" | "pclntab";
  /** The function of that name (the lowest-addressed one if several share it, as closures of generics can). */
  get(name: string): GoFunction | undefined;
  /** the functions whose names start with `prefix`, by entry */
  withPrefix(prefix: string): GoFunction[];
  /** every function, sorted by entry */
  all(): GoFunction[];
}

export function readFunctions(elf: ElfFile): FunctionTable {
  return SymtabFunctions.read(elf) ?? table("pclntab", readPclntab(elf));
}

/**
 * Go's functions in `.symtab`: FUNC symbols inside Go's text (runtime.text..runtime.etext), which leaves out the C
 * code of externally linked binaries, zero-size symbols (boundary markers, labels in C assembly), and the
 * `pkg(.text)` section symbols of internally linked C objects. Kept as columns with a hash index over the names'
 * bytes in `.strtab`: a 57 MB service has 60,000 functions, and a plan asks for a few dozen, so no string and no
 * object is made for the others (that took ~35 MB of heap while it was built).
 */
class SymtabFunctions implements FunctionTable {
  readonly source = "symtab";
  private readonly made = new Map<number, GoFunction>();
  private everything: GoFunction[] | undefined;

  private constructor(
    private readonly bytes: Uint8Array,
    /** by entry: entry, end, file offset, where the name starts in the file, its length */
    private readonly entry: Float64Array,
    private readonly end: Float64Array,
    private readonly fileOffset: Float64Array,
    private readonly nameAt: Float64Array,
    private readonly nameLen: Uint32Array,
    /** open addressing over name hashes: function index + 1, 0 = empty */
    private readonly index: Uint32Array,
  ) {}

  /** Undefined when there is no `.symtab` (or no Go text markers in it). */
  static read(elf: ElfFile): SymtabFunctions | undefined {
    let text: number | undefined;
    let etext: number | undefined;
    const b = elf.bytes;
    const rows: number[] = []; // entry, size, name offset, name length: four numbers per sized FUNC symbol
    // one pass: Go's text markers are FUNC symbols of size 0, so only those have their names compared
    const visit = (r: SymbolRecord): void => {
      if (r.type !== STT_FUNC) return;
      if (r.size === 0) {
        if (text === undefined && r.nameIs("runtime.text")) text = r.value;
        else if (etext === undefined && r.nameIs("runtime.etext")) etext = r.value;
        return;
      }
      const at = r.nameOffset();
      const nul = b.indexOf(0, at);
      rows.push(r.value, r.size, at, (nul < 0 ? b.byteLength : nul) - at);
    };
    noFTL(visit); // once per executable: see searchUnit in dwarf.ts (its FTL compile took ~15 ms of each start)
    if (!elf.walkSymbols(".symtab", visit) || text === undefined || etext === undefined || etext < text) return undefined;
    const [lo, hi] = [text, etext];
    // Go's text lies in one executable segment: then no function needs a look-up of its own (60,000 in a big binary)
    const textSegment = elf.segments.find((p) => isExecutable(p) && lo >= p.vaddr && hi <= p.vaddr + p.filesz);
    const kept: number[] = []; // indexes of Go's functions in rows
    let sorted = true;
    for (let k = 0; k < rows.length / 4; k++) {
      const [value, at, len] = [rows[k * 4]!, rows[k * 4 + 2]!, rows[k * 4 + 3]!];
      if (value < lo || value >= hi) continue;
      if (b[at + len - 1] === 0x29 /* ')' */ && SECTION_SYMBOL.test(UTF8.decode(b.subarray(at, at + len)))) continue;
      if (!textSegment && (elf.fileOffset(value) === undefined || !executable(elf, value))) {
        throw new PclntabError(elf.name, `.symtab: function ${UTF8.decode(b.subarray(at, at + len))} at 0x${value.toString(16)} is outside every executable loaded segment (PT_LOAD program header)`);
      }
      if (kept.length > 0 && value < rows[kept[kept.length - 1]! * 4]!) sorted = false;
      kept.push(k);
    }
    // Go's linker writes its functions by address: the sort is for other producers
    const order = sorted ? kept : kept.sort((x, y) => rows[x * 4]! - rows[y * 4]!);
    const n = order.length;
    const [entry, end, fileOffset, nameAt] = [new Float64Array(n), new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    const nameLen = new Uint32Array(n);
    for (const [i, k] of order.entries()) {
      entry[i] = rows[k * 4]!;
      end[i] = rows[k * 4]! + rows[k * 4 + 1]!;
      fileOffset[i] = textSegment ? entry[i]! - textSegment.vaddr + textSegment.offset : elf.fileOffset(entry[i]!)!;
      nameAt[i] = rows[k * 4 + 2]!;
      nameLen[i] = rows[k * 4 + 3]!;
    }
    const t = new SymtabFunctions(b, entry, end, fileOffset, nameAt, nameLen, new Uint32Array(slots(n)));
    for (let i = 0; i < n; i++) t.insert(i); // by entry: a name's first function is its lowest-addressed
    return t;
  }

  get(name: string): GoFunction | undefined {
    const key = ENCODER.encode(name);
    const mask = this.index.length - 1;
    for (let s = hashBytes(key, 0, key.length) & mask; this.index[s] !== 0; s = (s + 1) & mask) {
      const i = this.index[s]! - 1;
      if (this.nameLen[i] === key.length && this.sameBytes(this.nameAt[i]!, key)) return this.fn(i);
    }
    return undefined;
  }

  withPrefix(prefix: string): GoFunction[] {
    const key = ENCODER.encode(prefix);
    const out: GoFunction[] = [];
    for (let i = 0; i < this.entry.length; i++) if (this.nameLen[i]! >= key.length && this.sameBytes(this.nameAt[i]!, key)) out.push(this.fn(i));
    return out;
  }

  all(): GoFunction[] {
    this.everything ??= Array.from(this.entry, (_, i) => this.fn(i));
    return this.everything;
  }

  private insert(i: number): void {
    const mask = this.index.length - 1;
    const at = this.nameAt[i]!;
    const len = this.nameLen[i]!;
    let s = hashBytes(this.bytes, at, at + len) & mask;
    for (; this.index[s] !== 0; s = (s + 1) & mask) {
      const j = this.index[s]! - 1;
      if (this.nameLen[j] === len && this.sameAt(this.nameAt[j]!, at, len)) return;
    }
    this.index[s] = i + 1;
  }

  private sameAt(a: number, b: number, len: number): boolean {
    for (let k = 0; k < len; k++) if (this.bytes[a + k] !== this.bytes[b + k]) return false;
    return true;
  }

  /** the name at `at` starts with (or, compared up to its length, is) these bytes */
  private sameBytes(at: number, key: Uint8Array): boolean {
    for (let k = 0; k < key.length; k++) if (this.bytes[at + k] !== key[k]) return false;
    return true;
  }

  private fn(i: number): GoFunction {
    let f = this.made.get(i);
    if (!f) {
      const at = this.nameAt[i]!;
      f = { name: UTF8.decode(this.bytes.subarray(at, at + this.nameLen[i]!)), entry: this.entry[i]!, end: this.end[i]!, fileOffset: this.fileOffset[i]! };
      this.made.set(i, f);
    }
    return f;
  }
}

const UTF8 = new TextDecoder();
const ENCODER = new TextEncoder();

/** a power of two at least twice n */
function slots(n: number): number {
  let s = 16;
  while (s < 2 * n) s *= 2;
  return s;
}

/** FNV-1a over bytes[from, to) */
function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** `runtime/cgo(.text.unlikely)`: the linker's symbol for a section of an internally linked C object */
const SECTION_SYMBOL = /\(\.text[^)]*\)$/;

function isExecutable(p: Segment): boolean {
  return p.type === PT_LOAD && (p.flags & PF_X) !== 0;
}

function executable(elf: ElfFile, vaddr: number): boolean {
  return elf.segments.some((p) => isExecutable(p) && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
}

function table(source: FunctionTable["source"], fns: GoFunction[]): FunctionTable {
  const byName = new Map<string, GoFunction>();
  for (const f of fns) if (!byName.has(f.name)) byName.set(f.name, f);
  return {
    source,
    withPrefix: (prefix) => fns.filter((f) => f.name.startsWith(prefix)),
    get(name) {
      const f = byName.get(name);
      if (f || source === "symtab" || !name.endsWith(".abi0")) return f;
      // the pclntab cannot tell a lone ABI0 function's `.abi0` symbol name (see pclntab.ts symtabNames)
      return byName.get(name.slice(0, -".abi0".length));
    },
    all: () => fns,
  };
}
