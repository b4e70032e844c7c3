/**
 * The bytes of a DWARF section (`.debug_<name>`), decompressed if the linker compressed it: SHF_COMPRESSED
 * sections (ELF compression header; Go ≥ 1.18 and binutils' default), old-style `.zdebug_<name>` sections
 * (Go ≤ 1.17, `objcopy --compress-debug-sections=zlib-gnu`) and plain ones.
 * The sizes a file declares are checked before inflating, and inflating stops at the declared size, so a
 * corrupt or hostile file can neither crash gotel nor make it allocate gigabytes.
 */
import * as zlib from "node:zlib";
import { ElfError, type ElfFile, type Section, sectionLabel } from "./elf.ts";

/** A debug section that cannot be decompressed: corrupt header or stream, unknown or unsafe compression. */
export class DebugSectionError extends ElfError {
  readonly section: string;
  constructor(file: string, s: Section, problem: string, hint?: string) {
    super(file, `${sectionLabel(s)}: ${problem}`, hint);
    this.section = s.name;
    this.name = "DebugSectionError";
  }
}

const SHF_COMPRESSED = 0x800n;
const ELFCOMPRESS_ZLIB = 1;
const ELFCOMPRESS_ZSTD = 2;
/** sizeof(Elf64_Chdr): ch_type u32, ch_reserved u32, ch_size u64, ch_addralign u64 */
const CHDR_SIZE = 24;
/** "ZLIB" + 8-byte big-endian uncompressed size */
const ZDEBUG_HEADER_SIZE = 12;
/** DWARF compresses 3–10×; a declared size far beyond that is a corrupt header or a decompression bomb. */
const MAX_RATIO = 64;
const MAX_SIZE = 1 << 30;

/** Whether the file has `.debug_<name>` or `.zdebug_<name>`, without decompressing it. */
export function hasDebugSection(elf: ElfFile, name: string): boolean {
  return elf.section(`.debug_${name}`) !== undefined || elf.section(`.zdebug_${name}`) !== undefined;
}

/** Decompressed sections by file: several readers (and a hasDwarf check) must not each pay the inflate. */
const cache = new WeakMap<ElfFile, Map<string, Uint8Array | undefined>>();

/**
 * The contents of `.debug_<name>` (e.g. "info", "abbrev"), or undefined when the file has no such section.
 * Decompressed once per ElfFile and kept as long as it is.
 */
export function debugSection(elf: ElfFile, name: string): Uint8Array | undefined {
  let sections = cache.get(elf);
  if (!sections) cache.set(elf, (sections = new Map()));
  if (sections.has(name)) return sections.get(name);
  const data = readDebugSection(elf, name);
  sections.set(name, data);
  return data;
}

function readDebugSection(elf: ElfFile, name: string): Uint8Array | undefined {
  const plain = elf.section(`.debug_${name}`);
  if (plain) {
    const data = elf.sectionData(plain);
    return (plain.flags & SHF_COMPRESSED) !== 0n ? decompressChdr(elf, plain, data) : data;
  }
  const old = elf.section(`.zdebug_${name}`);
  if (old) return decompressZdebug(elf, old, elf.sectionData(old));
  return undefined;
}

function decompressChdr(elf: ElfFile, s: Section, data: Uint8Array): Uint8Array {
  if (data.byteLength < CHDR_SIZE) throw new DebugSectionError(elf.name, s, "compression header is truncated");
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = dv.getUint32(0, true);
  const size = safeSize(elf, s, dv.getBigUint64(8, true), data.byteLength - CHDR_SIZE);
  const stream = data.subarray(CHDR_SIZE);
  if (type === ELFCOMPRESS_ZLIB) return inflate(elf, s, stream, size, "zlib");
  if (type === ELFCOMPRESS_ZSTD) return inflate(elf, s, stream, size, "zstd");
  throw new DebugSectionError(elf.name, s, `unknown compression type ${type}`, "expected zlib (1) or zstd (2)");
}

function decompressZdebug(elf: ElfFile, s: Section, data: Uint8Array): Uint8Array {
  const magic = data.byteLength >= ZDEBUG_HEADER_SIZE && data[0] === 0x5a && data[1] === 0x4c && data[2] === 0x49 && data[3] === 0x42;
  if (!magic) throw new DebugSectionError(elf.name, s, 'missing "ZLIB" header (truncated or corrupt)');
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const size = safeSize(elf, s, dv.getBigUint64(4, false), data.byteLength - ZDEBUG_HEADER_SIZE);
  return inflate(elf, s, data.subarray(ZDEBUG_HEADER_SIZE), size, "zlib");
}

function safeSize(elf: ElfFile, s: Section, declared: bigint, compressed: number): number {
  const limit = Math.min(MAX_SIZE, Math.max(compressed, 1) * MAX_RATIO);
  if (declared > BigInt(limit)) {
    throw new DebugSectionError(
      elf.name, s,
      `declared uncompressed size ${declared} is implausible for ${compressed} compressed bytes (limit ${limit})`,
      "the file is corrupt",
    );
  }
  return Number(declared);
}

function inflate(elf: ElfFile, s: Section, stream: Uint8Array, size: number, kind: "zlib" | "zstd"): Uint8Array {
  // older runtimes lack zstd (Bun has it since 1.2.x)
  if (kind === "zstd" && typeof zlib.zstdDecompressSync !== "function") {
    throw new DebugSectionError(elf.name, s, "is zstd-compressed and this runtime cannot decompress zstd", "rebuild with -ldflags=-compressdwarf=false, or use objcopy --decompress-debug-sections");
  }
  let out: Uint8Array;
  try {
    // maxOutputLength makes the inflater stop (with an error) instead of producing more than was declared
    const opts = { maxOutputLength: Math.max(size, 1) };
    out = kind === "zlib" ? zlib.inflateSync(stream, opts) : zlib.zstdDecompressSync(stream, opts);
  } catch (e) {
    const why = String((e as Error)?.message ?? e).replace(/\s+/g, " ");
    // the inflater stopped at maxOutputLength (Bun: "Cannot create a Buffer larger than N bytes")
    if ((e as { code?: string })?.code === "ERR_BUFFER_TOO_LARGE" || /larger than|maxOutputLength/i.test(why)) {
      throw new DebugSectionError(elf.name, s, `its ${kind} data is larger than declared: it inflates past the ${size} bytes its compression header gives`, "the file is corrupt");
    }
    throw new DebugSectionError(elf.name, s, `its ${kind} data is corrupt (${why})`, "the file is corrupt");
  }
  if (out.byteLength !== size) {
    throw new DebugSectionError(elf.name, s, `inflated to ${out.byteLength} bytes but the header declares ${size}`, "the file is corrupt");
  }
  return out;
}
