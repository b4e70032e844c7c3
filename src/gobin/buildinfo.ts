/**
 * The build information every Go executable built with modules carries (what `go version -m` prints): the Go
 * version, the main module, every dependency with its replacement, and the build settings. It lives in a 32-byte
 * blob that starts with "\xff Go buildinf:", in `.go.buildinfo` (or, without section headers, 16-byte aligned
 * near the start of the data segment). Two encodings (debug/buildinfo): before Go 1.18 the blob holds pointers to
 * two Go string headers (pointer size and endianness in the blob); since 1.18 (flag bit 2) the two strings follow
 * inline, each prefixed by its length as a uvarint.
 */
import { ElfError, type ElfFile, PT_LOAD, SHT_NOBITS } from "./elf.ts";

export interface GoModule {
  path: string;
  /** "v1.2.3", a pseudo-version, "(devel)", or with "+dirty": verbatim */
  version: string;
  /** "h1:…"; absent when the build had none (the main module, directory replacements) */
  sum?: string;
  replace?: GoModule;
}

export interface BuildInfo {
  /** "go1.23.12", "devel go1.24-abcdef …", with "+dirty" or " X:…" experiment suffixes kept verbatim */
  goVersion: string;
  /** the main package's import path */
  path: string;
  main: GoModule;
  deps: GoModule[];
  /** key/value pairs in the order the go command wrote them (-buildmode, -compiler, -ldflags, CGO_ENABLED, …, vcs.*) */
  settings: [string, string][];
}

/** The release a Go version string names: "go1.23.12 X:nocoverageredesign" -> 1.23.12; a development
 * toolchain's "devel go1.24-8a0e2f6f4d Mon …" (Go <= 1.23) or "go1.25-devel_abc123 Thu …" (Go >= 1.24) ->
 * 1.24 / 1.25, with `devel` set: its structs may differ from every release of that series. */
export function goRelease(goVersion: string): { version: string; devel: boolean } | undefined {
  const m = /^(devel )?go(\d+\.\d+(?:\.\d+)?)(-devel)?/.exec(goVersion);
  return m ? { version: m[2]!, devel: m[1] !== undefined || m[3] !== undefined } : undefined;
}

export class BuildInfoError extends ElfError {
  constructor(file: string, problem: string, hint?: string) {
    super(file, problem, hint);
    this.name = "BuildInfoError";
  }
}

const MAGIC = new Uint8Array([0xff, ...new TextEncoder().encode(" Go buildinf:")]);
const HEADER_SIZE = 32;
const ALIGN = 16;
const FLAG_BIG_ENDIAN = 0x1;
const FLAG_INLINE = 0x2;
/** modinfo is wrapped in these 16-byte sentinels (cmd/go/internal/modload infoStart/infoEnd); only their length matters */
const SENTINEL = 16;

export function readBuildInfo(elf: ElfFile): BuildInfo {
  const notGo = (why: string): BuildInfoError =>
    new BuildInfoError(elf.name, `not a Go executable (no Go build info${why ? `: ${why}` : ""})`, "gotel instruments programs built by the Go toolchain");
  const blob = findBlob(elf);
  if (!blob) throw notGo("");
  const { data } = blob;
  const flags = data[15]!;
  let version: string;
  let modinfo: string;
  if (flags & FLAG_INLINE) {
    const v = inlineString(data, HEADER_SIZE);
    const m = v && inlineString(data, v.next);
    if (!v || !m) throw notGo("truncated build info strings");
    version = v.text;
    modinfo = m.text;
  } else {
    const ptrSize = data[14]!;
    if (ptrSize !== 4 && ptrSize !== 8) throw notGo(`pointer size ${ptrSize}`);
    const mem = new Pointers(elf, ptrSize, (flags & FLAG_BIG_ENDIAN) !== 0);
    const at = (off: number): number | undefined => mem.read(data, off);
    version = mem.goString(at(16)) ?? "";
    modinfo = mem.goString(at(16 + ptrSize)) ?? "";
  }
  if (version === "") throw notGo("empty Go version");
  // strip the sentinels; without them (built outside module mode) there is no module information
  const framed = modinfo.length >= 2 * SENTINEL + 1 && modinfo[modinfo.length - SENTINEL - 1] === "\n";
  return parseModinfo(elf.name, version, framed ? modinfo.slice(SENTINEL, -SENTINEL) : "");
}

/** The aligned blob and the bytes after it (to the end of its section or segment). */
function findBlob(elf: ElfFile): { data: Uint8Array; addr: number } | undefined {
  const s = elf.section(".go.buildinfo");
  if (s && s.type !== SHT_NOBITS) return searchMagic(elf.sectionData(s), s.addr);
  // no section headers: the linker puts it at the start of the (writable) data segment
  for (const p of elf.segments) {
    if (p.type !== PT_LOAD || (p.flags & 2) === 0) continue;
    const end = Math.min(p.offset + p.filesz, elf.bytes.byteLength);
    if (p.offset >= end) continue;
    const found = searchMagic(elf.range(p.offset, end - p.offset), p.vaddr);
    if (found) return found;
  }
  return undefined;
}

function searchMagic(bytes: Uint8Array, addr: number): { data: Uint8Array; addr: number } | undefined {
  for (let i = (ALIGN - (addr % ALIGN)) % ALIGN; i + HEADER_SIZE <= bytes.byteLength; i += ALIGN) {
    let hit = true;
    for (let k = 0; k < MAGIC.length && hit; k++) hit = bytes[i + k] === MAGIC[k];
    if (hit) return { data: bytes.subarray(i), addr: addr + i };
  }
  return undefined;
}

function inlineString(data: Uint8Array, at: number): { text: string; next: number } | undefined {
  let len = 0;
  let p = at;
  for (let shift = 0; ; shift += 7) {
    const c = data[p++];
    if (c === undefined || shift > 49) return undefined;
    len += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) break;
  }
  // the length is trusted only as far as the bytes present: no allocation beyond the file
  if (p + len > data.byteLength) return undefined;
  return { text: decoder.decode(data.subarray(p, p + len)), next: p + len };
}
const decoder = new TextDecoder();

/** Pre-1.18 blobs: pointers (of the blob's size and byte order) to Go string headers {data, len}. */
class Pointers {
  constructor(private readonly elf: ElfFile, private readonly size: 4 | 8, private readonly bigEndian: boolean) {}

  read(bytes: Uint8Array, off: number): number | undefined {
    if (off < 0 || off + this.size > bytes.byteLength) return undefined;
    const dv = new DataView(bytes.buffer, bytes.byteOffset + off, this.size);
    if (this.size === 4) return dv.getUint32(0, !this.bigEndian);
    const v = dv.getBigUint64(0, !this.bigEndian);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
  }

  private bytesAt(vaddr: number | undefined, len: number): Uint8Array | undefined {
    if (vaddr === undefined) return undefined;
    for (const p of this.elf.segments) {
      if (p.type !== PT_LOAD || vaddr < p.vaddr || vaddr + len > p.vaddr + p.filesz) continue;
      const off = p.offset + (vaddr - p.vaddr);
      return off + len <= this.elf.bytes.byteLength ? this.elf.range(off, len) : undefined;
    }
    return undefined;
  }

  goString(headerAddr: number | undefined): string | undefined {
    const header = this.bytesAt(headerAddr, 2 * this.size);
    if (!header) return undefined;
    const len = this.read(header, this.size);
    const data = len === undefined ? undefined : this.bytesAt(this.read(header, 0), len);
    return data && decoder.decode(data);
  }
}

/** The reverse of debug.BuildInfo.String (runtime/debug ParseBuildInfo), keeping its errors as typed ones. */
export function parseModinfo(file: string, goVersion: string, modinfo: string): BuildInfo {
  const info: BuildInfo = { goVersion, path: "", main: { path: "", version: "" }, deps: [], settings: [] };
  let last: GoModule | undefined;
  const lines = modinfo.split("\n");
  lines.pop(); // text after the final newline is ignored, as Go does
  lines.forEach((line, i) => {
    const bad = (why: string): BuildInfoError => new BuildInfoError(file, `corrupt Go build info: line ${i + 1}: ${why}`);
    const [word, ...cols] = line.split("\t");
    switch (word) {
      case "path":
        info.path = line.slice("path\t".length);
        break;
      case "mod":
      case "dep": {
        if (cols.length !== 2 && cols.length !== 3) throw bad(`expected 2 or 3 columns; got ${cols.length}`);
        const m: GoModule = { path: cols[0]!, version: cols[1]! };
        if (cols[2]) m.sum = cols[2];
        if (word === "mod") info.main = m;
        else info.deps.push(m);
        last = m;
        break;
      }
      case "=>": {
        if (cols.length !== 3) throw bad(`expected 3 columns for replacement; got ${cols.length}`);
        if (!last) throw bad("replacement with no module on previous line");
        last.replace = { path: cols[0]!, version: cols[1]! };
        if (cols[2]) last.replace.sum = cols[2];
        last = undefined;
        break;
      }
      case "build":
        info.settings.push(parseSetting(line.slice("build\t".length), bad));
        break;
      default: // unknown lines are skipped, as Go does
    }
  });
  return info;
}

function parseSetting(kv: string, bad: (why: string) => Error): [string, string] {
  if (kv === "") throw bad("build line missing '='");
  let key: string;
  let raw: string;
  if (kv[0] === '"' || kv[0] === "`") {
    const q = quotedPrefix(kv);
    if (q === undefined) throw bad("invalid quoted key in build line");
    if (kv[q.length] !== "=") throw bad("build line missing '=' after quoted key");
    key = q.value;
    raw = kv.slice(q.length + 1);
  } else {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw bad(eq === 0 ? "build line with missing key" : "build line missing '=' after key");
    key = kv.slice(0, eq);
    raw = kv.slice(eq + 1);
  }
  if (raw[0] === '"' || raw[0] === "`") {
    const q = quotedPrefix(raw);
    if (q === undefined || q.length !== raw.length) throw bad("invalid quoted value in build line");
    return [key, q.value];
  }
  return [key, raw];
}

/** A Go-quoted string at the start of s (strconv.QuotedPrefix + Unquote): its length in s and its value. */
function quotedPrefix(s: string): { length: number; value: string } | undefined {
  if (s[0] === "`") {
    const end = s.indexOf("`", 1);
    return end < 0 ? undefined : { length: end + 1, value: s.slice(1, end) };
  }
  let i = 1;
  while (i < s.length && s[i] !== '"') i += s[i] === "\\" ? 2 : 1;
  if (i >= s.length) return undefined;
  const body = s.slice(1, i);
  const bytes: number[] = [];
  const utf8 = new TextEncoder();
  for (let k = 0; k < body.length; ) {
    const c = body[k]!;
    if (c !== "\\") {
      const cp = body.codePointAt(k)!;
      bytes.push(...utf8.encode(String.fromCodePoint(cp)));
      k += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = body[k + 1];
    const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92, '"': 34, "'": 39 };
    if (e !== undefined && e in simple) {
      bytes.push(simple[e]!);
      k += 2;
    } else if (e === "x" || e === "u" || e === "U") {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = body.slice(k + 2, k + 2 + n);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) return undefined;
      const v = parseInt(hex, 16);
      if (e === "x") bytes.push(v);
      else if (v > 0x10ffff) return undefined;
      else bytes.push(...utf8.encode(String.fromCodePoint(v)));
      k += 2 + n;
    } else if (e !== undefined && e >= "0" && e <= "7") {
      const oct = body.slice(k + 1, k + 4);
      if (!/^[0-7]{3}$/.test(oct)) return undefined;
      bytes.push(parseInt(oct, 8) & 0xff);
      k += 4;
    } else {
      return undefined;
    }
  }
  return { length: i + 1, value: decoder.decode(new Uint8Array(bytes)) };
}
