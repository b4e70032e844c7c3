/**
 * A bounds-checked reader for 64-bit little-endian ELF files (amd64 and arm64 executables and shared objects):
 * sections, program headers, symbols and the virtual-address -> file-offset mapping uprobes need.
 * Every read is checked against the file size, so a truncated or corrupt file is an ElfError, never a crash.
 */
import { GotelError } from "../errors.ts";

export class ElfError extends GotelError {
  constructor(readonly file: string, problem: string, hint?: string) {
    super(`${file}: ${problem}`, hint);
    this.name = "ElfError";
  }
}

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const PT_LOAD = 1;
export const PF_X = 1;
export const SHT_SYMTAB = 2;
export const SHT_DYNSYM = 11;
export const SHT_NOBITS = 8;
export const STT_FUNC = 2;

export interface Section {
  /** its place in the section header table: "section header 12 (.gopclntab)" in messages */
  index: number;
  name: string;
  type: number;
  flags: bigint;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface Segment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  /** STT_* */
  type: number;
  isFunction: boolean;
  sectionIndex: number;
}

/** Fills the file's bytes [from, to) into the array the ElfFile reads. */
export interface Loader {
  load(from: number, to: number): void;
}

/** One symbol while walking a table (ElfFile.walkSymbols): valid only during the visit. */
export interface SymbolRecord {
  value: number;
  size: number;
  /** STT_* */
  type: number;
  sectionIndex: number;
  name(): string;
  /** the name equals this ASCII string, compared in the file without decoding it */
  nameIs(name: string): boolean;
  /** where the name's bytes start in the file (NUL-terminated, in its string table, which is read) */
  nameOffset(): number;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** one decoder for every name: a decoder per string costs native memory the GC frees late (~0.7 KB each) */
const UTF8 = new TextDecoder();
/** the high half of Number.MAX_SAFE_INTEGER: a 64-bit value whose high half is at most this is safe */
const SAFE_HIGH = 0x1f_ffff;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;

/** "section header 12 (.gopclntab)": how messages name a section, so that a user can find it with readelf -S. */
export function sectionLabel(s: Pick<Section, "index" | "name">): string {
  return `section header ${s.index}${s.name ? ` (${s.name})` : ""}`;
}

export class ElfFile {
  readonly machine: number;
  readonly type: number;
  readonly entry: number;
  readonly sections: readonly Section[];
  readonly segments: readonly Segment[];
  private readonly dv: DataView;
  /** the same bytes, for decoding names straight from the file */
  private readonly buffer: Buffer;

  private constructor(readonly bytes: Uint8Array, readonly name: string, private readonly loader?: Loader) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.ensure(0, Math.min(64, bytes.byteLength));
    if (bytes.byteLength < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
      throw new ElfError(name, "not an ELF file", "pass an executable built for Linux");
    }
    if (bytes.byteLength < 64) throw new ElfError(name, `ELF header is truncated (the file has ${bytes.byteLength} bytes, the header 64)`);
    if (bytes[4] !== 2) throw new ElfError(name, "not a 64-bit ELF file; gotel supports amd64 and arm64");
    if (bytes[5] !== 1) throw new ElfError(name, "not a little-endian ELF file; gotel supports amd64 and arm64");
    this.type = this.dv.getUint16(16, true);
    this.machine = this.dv.getUint16(18, true);
    this.entry = Number(this.dv.getBigUint64(24, true)); // informational: nothing gotel reads depends on it
    this.segments = this.readSegments();
    this.sections = this.readSections();
  }

  /**
   * `loader`, when given, fills `bytes` (zeroes until then, which cost no memory) by ranges as they are first
   * read: a file is then only read where analysis looks (headers, symbols, pclntab, DWARF, code at probe sites).
   */
  static parse(bytes: Uint8Array, name: string, loader?: Loader): ElfFile {
    try {
      return new ElfFile(bytes, name, loader);
    } catch (e) {
      if (e instanceof ElfError) throw e;
      throw new ElfError(name, `corrupt ELF file (${(e as Error).message})`);
    }
  }

  get arch(): "amd64" | "arm64" | undefined {
    return this.machine === EM_X86_64 ? "amd64" : this.machine === EM_AARCH64 ? "arm64" : undefined;
  }

  private within(off: number, len: number): boolean {
    return Number.isSafeInteger(off) && Number.isSafeInteger(len) && off >= 0 && len >= 0 && off + len <= this.bytes.byteLength;
  }

  /** Makes bytes[off, off+len) hold the file's bytes (clamped to the file). */
  ensure(off: number, len: number): void {
    const end = Math.min(off + len, this.bytes.byteLength);
    if (this.loader && off < end) this.loader.load(Math.max(0, off), end);
  }

  /** The file's bytes [off, off+len), clamped to the file's end. */
  range(off: number, len: number): Uint8Array {
    this.ensure(off, len);
    return this.bytes.subarray(off, Math.min(off + len, this.bytes.byteLength));
  }

  /** A 64-bit field read as a number; `what` names it for the message when it cannot be an offset, size or address. */
  private u64(off: number, what: string): number {
    return this.safe(this.dv.getBigUint64(off, true), what);
  }

  private safe(v: bigint, what: string): number {
    if (v > MAX_SAFE) throw new ElfError(this.name, `${what} is 0x${v.toString(16)}, beyond any file or address space (corrupt)`);
    return Number(v);
  }

  private pastEnd(what: string, off: number, len: number): ElfError {
    return new ElfError(this.name, `${what} points past the end of the file (offset 0x${off.toString(16)}, ${len} bytes; the file has ${this.bytes.byteLength}: truncated?)`);
  }

  private readSegments(): Segment[] {
    const phoff = this.u64(32, "ELF header: the program header table offset (e_phoff)");
    const phentsize = this.dv.getUint16(54, true);
    this.ensure(phoff, this.dv.getUint16(56, true) * phentsize);
    const phnum = this.dv.getUint16(56, true);
    if (phnum === 0) return [];
    if (phentsize < PHDR_SIZE) throw new ElfError(this.name, `ELF header: program header size (e_phentsize) is ${phentsize}, less than ${PHDR_SIZE}`);
    if (!this.within(phoff, phnum * phentsize)) throw new ElfError(this.name, "program header table lies outside the file (truncated or corrupt)");
    const out: Segment[] = [];
    for (let i = 0; i < phnum; i++) {
      const p = phoff + i * phentsize;
      const what = (field: string) => `program header ${i}: ${field}`;
      const seg: Segment = {
        type: this.dv.getUint32(p, true), flags: this.dv.getUint32(p + 4, true), offset: this.u64(p + 8, what("p_offset")),
        vaddr: this.u64(p + 16, what("p_vaddr")), filesz: this.u64(p + 32, what("p_filesz")), memsz: this.u64(p + 40, what("p_memsz")),
      };
      // a loaded segment's bytes are what virtual addresses map to: they must all be in the file
      if (seg.type === PT_LOAD && !this.within(seg.offset, seg.filesz)) throw this.pastEnd(`program header ${i} (PT_LOAD)`, seg.offset, seg.filesz);
      if (seg.type === PT_LOAD && !Number.isSafeInteger(seg.vaddr + Math.max(seg.filesz, seg.memsz))) {
        throw new ElfError(this.name, `program header ${i} (PT_LOAD): its address range 0x${seg.vaddr.toString(16)} + 0x${seg.memsz.toString(16)} wraps around (corrupt)`);
      }
      out.push(seg);
    }
    return out;
  }

  private readSections(): Section[] {
    const shoff = this.u64(40, "ELF header: the section header table offset (e_shoff)");
    const shentsize = this.dv.getUint16(58, true);
    const shnum = this.dv.getUint16(60, true);
    const shstrndx = this.dv.getUint16(62, true);
    if (shnum === 0 || shoff === 0) return [];
    if (shentsize < SHDR_SIZE) throw new ElfError(this.name, `ELF header: section header size (e_shentsize) is ${shentsize}, less than ${SHDR_SIZE}`);
    if (!this.within(shoff, shnum * shentsize)) throw new ElfError(this.name, "section header table lies outside the file (truncated or corrupt)");
    this.ensure(shoff, shnum * shentsize);
    const at = (i: number) => shoff + i * shentsize;
    const strtab = shstrndx < shnum ? this.rawSection(at(shstrndx), shstrndx, "") : undefined;
    if (!strtab) throw new ElfError(this.name, `ELF header: the section name table index (e_shstrndx) is ${shstrndx}, but there are ${shnum} sections`);
    if (strtab.type !== SHT_NOBITS && !this.within(strtab.offset, strtab.size)) {
      throw this.pastEnd(`${sectionLabel(strtab)}, the section name table,`, strtab.offset, strtab.size);
    }
    if (strtab.type !== SHT_NOBITS) this.ensure(strtab.offset, strtab.size);
    const out: Section[] = [];
    for (let i = 0; i < shnum; i++) {
      const nameOff = this.dv.getUint32(at(i), true);
      const name = this.cstring(strtab, nameOff, () => `section header ${i}: its name offset ${nameOff} is past the end of the section name table (${strtab.size} bytes)`);
      out.push(this.rawSection(at(i), i, name));
    }
    return out;
  }

  private rawSection(s: number, index: number, name: string): Section {
    const what = (field: string) => `${sectionLabel({ index, name })}: ${field}`;
    return {
      index, name, type: this.dv.getUint32(s + 4, true), flags: this.dv.getBigUint64(s + 8, true), addr: this.u64(s + 16, what("sh_addr")),
      offset: this.u64(s + 24, what("sh_offset")), size: this.u64(s + 32, what("sh_size")), link: this.dv.getUint32(s + 40, true),
      entsize: Number(this.dv.getBigUint64(s + 56, true)), // informational: readers use their own record sizes
    };
  }

  private cstring(table: Section, off: number, tooFar: () => string): string {
    if (off >= table.size) throw new ElfError(this.name, tooFar());
    const start = table.offset + off;
    if (!this.within(start, 1)) throw this.pastEnd(sectionLabel(table), table.offset, table.size);
    const limit = Math.min(table.offset + table.size, this.bytes.byteLength);
    const b = this.bytes;
    let end = start;
    let ascii = true;
    for (; end < limit && b[end] !== 0; end++) if (b[end]! >= 0x80) ascii = false;
    // Go's names are ASCII but for rare Unicode identifiers: one-byte strings, with no copy of the bytes first
    return ascii ? this.buffer.toString("latin1", start, end) : UTF8.decode(b.subarray(start, end));
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** The bytes of a section as stored in the file. */
  sectionData(s: Section): Uint8Array {
    if (s.type === SHT_NOBITS) return new Uint8Array(0);
    if (!this.within(s.offset, s.size)) throw this.pastEnd(sectionLabel(s), s.offset, s.size);
    return this.range(s.offset, s.size);
  }

  /** Symbols of `.symtab` (or `.dynsym`), empty when the file has none. */
  symbols(table: ".symtab" | ".dynsym" = ".symtab"): ElfSymbol[] {
    const out: ElfSymbol[] = [];
    this.walkSymbols(table, (r) => {
      out.push({ name: r.name(), value: r.value, size: r.size, type: r.type, isFunction: r.type === STT_FUNC, sectionIndex: r.sectionIndex });
    });
    return out;
  }

  /**
   * Each symbol of `.symtab` (or `.dynsym`) through one reused record whose name is decoded only when asked:
   * readers that keep a few of 70,000 symbols make no object and no string for the others. Returns whether the
   * table exists.
   */
  walkSymbols(table: ".symtab" | ".dynsym", visit: (r: SymbolRecord) => void): boolean {
    const s = this.section(table);
    if (!s || (s.type !== SHT_SYMTAB && s.type !== SHT_DYNSYM)) return false;
    const strtab = this.sections[s.link];
    if (!strtab) throw new ElfError(this.name, `${sectionLabel(s)}: its string table (sh_link) is section ${s.link}, but there are ${this.sections.length} sections`);
    const data = this.sectionData(s);
    if (strtab.type !== SHT_NOBITS && !this.within(strtab.offset, strtab.size)) throw this.pastEnd(`${sectionLabel(strtab)}, the string table of ${table},`, strtab.offset, strtab.size);
    if (strtab.type !== SHT_NOBITS) this.ensure(strtab.offset, strtab.size);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let p = 0;
    const tooFar = (nameOff: number) => `symbol ${p / 24} of ${table}: its name offset ${nameOff} is past the end of ${strtab.name || "its string table"} (${strtab.size} bytes)`;
    const r: SymbolRecord = {
      value: 0, size: 0, type: 0, sectionIndex: 0,
      name: () => {
        const nameOff = dv.getUint32(p, true);
        return this.cstring(strtab, nameOff, () => tooFar(nameOff));
      },
      nameIs: (name) => {
        const nameOff = dv.getUint32(p, true);
        if (nameOff >= strtab.size) throw new ElfError(this.name, tooFar(nameOff));
        const at = strtab.offset + nameOff;
        if (at + name.length >= this.bytes.byteLength || this.bytes[at + name.length] !== 0) return false;
        for (let i = 0; i < name.length; i++) if (this.bytes[at + i] !== name.charCodeAt(i)) return false;
        return true;
      },
      nameOffset: () => {
        const nameOff = dv.getUint32(p, true);
        if (nameOff >= strtab.size) throw new ElfError(this.name, tooFar(nameOff));
        return strtab.offset + nameOff;
      },
    };
    for (p = 24; p + 24 <= data.byteLength; p += 24) {
      // every name checked, also of the symbols no reader looks at: a corrupt table is an error, not half-read
      const nameOff = dv.getUint32(p, true);
      if (nameOff >= strtab.size) throw new ElfError(this.name, tooFar(nameOff));
      // 64-bit fields as two halves: no BigInt per symbol
      const [valueHi, sizeHi] = [dv.getUint32(p + 12, true), dv.getUint32(p + 20, true)];
      if (valueHi > SAFE_HIGH || sizeHi > SAFE_HIGH) continue;
      r.value = valueHi * 2 ** 32 + dv.getUint32(p + 8, true);
      r.size = sizeHi * 2 ** 32 + dv.getUint32(p + 16, true);
      r.type = dv.getUint8(p + 4) & 0xf;
      r.sectionIndex = dv.getUint16(p + 6, true);
      visit(r);
    }
    return true;
  }

  /** n bytes of the file at a virtual address, or undefined when a loaded segment does not hold them all. */
  bytesAt(vaddr: number, n: number): Uint8Array | undefined {
    const off = this.fileOffset(vaddr);
    if (off === undefined || this.fileOffset(vaddr + n - 1) !== off + n - 1 || off + n > this.bytes.byteLength) return undefined;
    return this.range(off, n);
  }

  /** The file offset of a virtual address in a loaded segment, or undefined if no segment maps it. */
  fileOffset(vaddr: number): number | undefined {
    for (const p of this.segments) {
      if (p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz) return vaddr - p.vaddr + p.offset;
    }
    return undefined;
  }
}
