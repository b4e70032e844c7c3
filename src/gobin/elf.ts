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
const STT_FUNC = 2;

export interface Section {
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

export class ElfFile {
  readonly machine: number;
  readonly type: number;
  readonly entry: number;
  readonly sections: readonly Section[];
  readonly segments: readonly Segment[];
  private readonly dv: DataView;

  private constructor(readonly bytes: Uint8Array, readonly name: string) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
      throw new ElfError(name, "not an ELF file", "pass an executable built for Linux");
    }
    if (bytes.byteLength < 64) throw new ElfError(name, "truncated ELF header");
    if (bytes[4] !== 2) throw new ElfError(name, "not a 64-bit ELF file; gotel supports amd64 and arm64");
    if (bytes[5] !== 1) throw new ElfError(name, "not a little-endian ELF file; gotel supports amd64 and arm64");
    this.type = this.u16(16);
    this.machine = this.u16(18);
    this.entry = this.u64(24);
    this.segments = this.readSegments();
    this.sections = this.readSections();
  }

  static parse(bytes: Uint8Array, name: string): ElfFile {
    try {
      return new ElfFile(bytes, name);
    } catch (e) {
      if (e instanceof ElfError) throw e;
      throw new ElfError(name, `corrupt ELF file (${(e as Error).message})`);
    }
  }

  get arch(): "amd64" | "arm64" | undefined {
    return this.machine === EM_X86_64 ? "amd64" : this.machine === EM_AARCH64 ? "arm64" : undefined;
  }

  private check(off: number, len: number, what: string): void {
    if (!Number.isSafeInteger(off) || off < 0 || len < 0 || off + len > this.bytes.byteLength) {
      throw new ElfError(this.name, `${what} lies outside the file (truncated or corrupt)`);
    }
  }
  private u16(off: number): number {
    this.check(off, 2, "header field");
    return this.dv.getUint16(off, true);
  }
  private u32(off: number): number {
    this.check(off, 4, "header field");
    return this.dv.getUint32(off, true);
  }
  private u64(off: number): number {
    this.check(off, 8, "header field");
    const v = this.dv.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(this.name, `value 0x${v.toString(16)} is out of range`);
    return Number(v);
  }

  private readSegments(): Segment[] {
    const phoff = this.u64(32);
    const phentsize = this.u16(54);
    const phnum = this.u16(56);
    if (phnum === 0) return [];
    if (phentsize < 56) throw new ElfError(this.name, "corrupt program header size");
    this.check(phoff, phnum * phentsize, "program header table");
    const out: Segment[] = [];
    for (let i = 0; i < phnum; i++) {
      const p = phoff + i * phentsize;
      out.push({
        type: this.u32(p), flags: this.u32(p + 4), offset: this.u64(p + 8), vaddr: this.u64(p + 16),
        filesz: this.u64(p + 32), memsz: this.u64(p + 40),
      });
    }
    return out;
  }

  private readSections(): Section[] {
    const shoff = this.u64(40);
    const shentsize = this.u16(58);
    const shnum = this.u16(60);
    const shstrndx = this.u16(62);
    if (shnum === 0 || shoff === 0) return [];
    if (shentsize < 64) throw new ElfError(this.name, "corrupt section header size");
    this.check(shoff, shnum * shentsize, "section header table");
    const raw: Section[] = [];
    for (let i = 0; i < shnum; i++) {
      const s = shoff + i * shentsize;
      raw.push({
        name: String(this.u32(s)), type: this.u32(s + 4), flags: this.dv.getBigUint64(s + 8, true), addr: this.u64(s + 16),
        offset: this.u64(s + 24), size: this.u64(s + 32), link: this.u32(s + 40), entsize: this.u64(s + 56),
      });
    }
    const strtab = raw[shstrndx];
    if (!strtab) throw new ElfError(this.name, "corrupt section name table index");
    for (const s of raw) s.name = this.cstring(strtab, Number(s.name));
    return raw;
  }

  private cstring(table: Section, off: number): string {
    if (off >= table.size) throw new ElfError(this.name, "string table offset out of range");
    const start = table.offset + off;
    this.check(start, 1, "string table");
    const limit = Math.min(table.offset + table.size, this.bytes.byteLength);
    let end = start;
    while (end < limit && this.bytes[end] !== 0) end++;
    return new TextDecoder().decode(this.bytes.subarray(start, end));
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** The bytes of a section as stored in the file. */
  sectionData(s: Section): Uint8Array {
    if (s.type === SHT_NOBITS) return new Uint8Array(0);
    this.check(s.offset, s.size, `section ${s.name}`);
    return this.bytes.subarray(s.offset, s.offset + s.size);
  }

  /** Symbols of `.symtab` (or `.dynsym`), empty when the file has none. */
  symbols(table: ".symtab" | ".dynsym" = ".symtab"): ElfSymbol[] {
    const s = this.section(table);
    if (!s || (s.type !== SHT_SYMTAB && s.type !== SHT_DYNSYM)) return [];
    const strtab = this.sections[s.link];
    if (!strtab) throw new ElfError(this.name, `${table} links to a missing string table`);
    const data = this.sectionData(s);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const out: ElfSymbol[] = [];
    for (let p = 24; p + 24 <= data.byteLength; p += 24) {
      const info = dv.getUint8(p + 4);
      const value = dv.getBigUint64(p + 8, true);
      const size = dv.getBigUint64(p + 16, true);
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || size > BigInt(Number.MAX_SAFE_INTEGER)) continue;
      out.push({
        name: this.cstring(strtab, dv.getUint32(p, true)),
        value: Number(value), size: Number(size), type: info & 0xf, isFunction: (info & 0xf) === STT_FUNC,
        sectionIndex: dv.getUint16(p + 6, true),
      });
    }
    return out;
  }

  /** n bytes of the file at a virtual address, or undefined when a loaded segment does not hold them all. */
  bytesAt(vaddr: number, n: number): Uint8Array | undefined {
    const off = this.fileOffset(vaddr);
    if (off === undefined || this.fileOffset(vaddr + n - 1) !== off + n - 1 || off + n > this.bytes.byteLength) return undefined;
    return this.bytes.subarray(off, off + n);
  }

  /** The file offset of a virtual address in a loaded segment, or undefined if no segment maps it. */
  fileOffset(vaddr: number): number | undefined {
    for (const p of this.segments) {
      if (p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz) return vaddr - p.vaddr + p.offset;
    }
    return undefined;
  }
}
