/**
 * Struct field offsets from DWARF, checked against binutils' readelf (an independent DWARF 4/5 reader that
 * also decompresses sections) on the fixture matrix; every way a section can be stored (SHF_COMPRESSED zlib
 * and zstd, old-style .zdebug, plain) gives the same answer; corrupt input gives a typed error, never a crash.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { GotelError } from "../../src/errors.ts";
import { DebugSectionError, debugSection } from "../../src/gobin/debug-sections.ts";
import { DwarfError, FieldNameError, readStructFieldOffsets, splitFieldName, type FieldOffset } from "../../src/gobin/dwarf.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { ROOT, buildGoFixture, variantName } from "../support/go.ts";
import { NEWEST_GO, sampleVariants } from "../support/matrix.ts";

const MISSING_FIELD = "net/http.Request.noSuchField";
const MISSING_STRUCT = "gotel.test/nope.Missing.field";

const FIELDS = [
  "runtime.g.goid",
  "runtime.g.m",
  "runtime.g._panic",
  "runtime.m.procid",
  "net/http.Request.Method",
  "net/http.Request.URL",
  "net/http.Request.Header",
  "net/http.Request.Host",
  "net/http.Request.ctx",
  "net/http.Request.Proto",
  "net/http.Request.RemoteAddr",
  "net/url.URL.Path",
  "net/url.URL.Scheme",
  "net/url.URL.RawQuery",
  "net/http.response.status",
  "net/http.Server.Handler",
  "net/http.conn.remoteAddr",
  "net.TCPConn.conn", // an embedded field is named by its type
  "main.user.Email",
  "main.user.Tags",
  "github.com/go-chi/chi/v5.Context.URLParams",
  "golang.org/x/net/http2.Framer.w",
  "golang.org/x/net/http2.Framer.ReadMetaHeaders",
  MISSING_FIELD,
  MISSING_STRUCT,
];
/** Present in every fixture, so the comparison with readelf is never between two "missing"s. */
const ALWAYS_PRESENT = FIELDS.filter((f) => f !== MISSING_FIELD && f !== MISSING_STRUCT && f !== "net/http.response.status");

function load(path: string): ElfFile {
  return ElfFile.parse(new Uint8Array(readFileSync(path)), path);
}

/**
 * The same question answered from `readelf --debug-dump=info`: the first (non-declaration) structure_type with
 * the name, and its member children's DW_AT_data_member_location.
 */
function readelfOffsets(path: string, fields: readonly string[]): Map<string, FieldOffset> {
  const r = Bun.spawnSync(["readelf", "--debug-dump=info", path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`readelf failed on ${path}: ${r.stderr.toString()}`);
  const wanted = new Set(fields.map((f) => f.slice(0, f.lastIndexOf("."))));
  const structs = new Map<string, Map<string, number>>();
  const text = r.stdout.toString();
  let die: { depth: number; tag: string; attrs: Map<string, string> } | undefined;
  let collecting: { depth: number; members: Map<string, number> } | undefined;
  const finish = (): void => {
    if (!die) return;
    if (collecting && die.depth <= collecting.depth) collecting = undefined;
    const name = die.attrs.get("DW_AT_name")?.replace(/^\((?:indirect|indexed)[^)]*\): /, "");
    if (die.tag === "DW_TAG_structure_type" && name && wanted.has(name) && !structs.has(name) && !die.attrs.has("DW_AT_declaration")) {
      collecting = { depth: die.depth, members: new Map() };
      structs.set(name, collecting.members);
    } else if (collecting && die.tag === "DW_TAG_member" && die.depth === collecting.depth + 1 && name !== undefined) {
      const loc = die.attrs.get("DW_AT_data_member_location") ?? "";
      const m = /^(\d+)\s*$/.exec(loc) ?? /DW_OP_plus_uconst: (\d+)/.exec(loc);
      if (!m) throw new Error(`readelf: unexpected member location "${loc}" for ${name}`);
      if (!collecting.members.has(name)) collecting.members.set(name, Number(m[1]));
    }
  };
  for (const line of text.split("\n")) {
    const header = /^\s*<(\d+)><[0-9a-f]+>: Abbrev Number: \d+(?: \((\w+)\))?/.exec(line);
    if (header) {
      finish();
      die = { depth: Number(header[1]), tag: header[2] ?? "null", attrs: new Map() };
      continue;
    }
    if (!die || (die.tag !== "DW_TAG_structure_type" && die.tag !== "DW_TAG_member")) continue;
    const attr = /^\s*<[0-9a-f]+>\s+(DW_AT_\w+)\s*: ?(.*)$/.exec(line);
    if (attr) die.attrs.set(attr[1]!, attr[2]!.trim());
  }
  finish();
  const out = new Map<string, FieldOffset>();
  for (const f of fields) {
    const members = structs.get(f.slice(0, f.lastIndexOf(".")));
    const offset = members?.get(f.slice(f.lastIndexOf(".") + 1));
    out.set(f, !members ? { missing: "struct" } : offset === undefined ? { missing: "field" } : { offset });
  }
  return out;
}

const plain = (m: Map<string, FieldOffset>): Record<string, FieldOffset> => Object.fromEntries(m);

describe("splitFieldName", () => {
  test("import paths with dots, nested paths, generics", () => {
    expect(splitFieldName("net/http.Request.Method")).toEqual({ importPath: "net/http", typeName: "Request", struct: "net/http.Request", field: "Method" });
    expect(splitFieldName("runtime.g.goid")).toEqual({ importPath: "runtime", typeName: "g", struct: "runtime.g", field: "goid" });
    expect(splitFieldName("google.golang.org/grpc.ClientConn.target")).toMatchObject({ importPath: "google.golang.org/grpc", typeName: "ClientConn" });
    expect(splitFieldName("go.opentelemetry.io/otel/trace.SpanContext.traceID")).toMatchObject({ importPath: "go.opentelemetry.io/otel/trace", typeName: "SpanContext", field: "traceID" });
    expect(splitFieldName("net/http.http2clientConnReadLoop.cc")).toMatchObject({ importPath: "net/http", typeName: "http2clientConnReadLoop" });
    expect(splitFieldName("sync/atomic.Pointer[net/http.Request].v")).toEqual({
      importPath: "sync/atomic", typeName: "Pointer[net/http.Request]", struct: "sync/atomic.Pointer[net/http.Request]", field: "v",
    });
    expect(splitFieldName("github.com/go-chi/chi/v5.Context.URLParams")).toMatchObject({ importPath: "github.com/go-chi/chi/v5", typeName: "Context" });
  });

  test("malformed names are FieldNameErrors", () => {
    for (const bad of ["Method", "net/http.Request", "net/http.Request.", "runtime.g.goid]", "pkg.T[int.f", "a/b.c/d"]) {
      expect(() => splitFieldName(bad)).toThrow(FieldNameError);
    }
    expect(() => readStructFieldOffsets(load(buildGoFixture("gobin-sample", { goVersion: NEWEST_GO })), ["nodot"])).toThrow(FieldNameError);
  });
});

describe("struct field offsets agree with readelf", () => {
  for (const v of sampleVariants()) {
    const name = variantName(v);
    if (v.stripped) {
      test(`${name}: no DWARF is a DwarfError naming the file`, () => {
        const path = buildGoFixture("gobin-sample", v);
        let err: unknown;
        try {
          readStructFieldOffsets(load(path), FIELDS);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(DwarfError);
        expect((err as DwarfError).message).toContain(path);
        expect((err as DwarfError).message).toContain("no DWARF");
      });
      continue;
    }
    test(name, () => {
      const path = buildGoFixture("gobin-sample", v);
      const ours = readStructFieldOffsets(load(path), FIELDS);
      const theirs = readelfOffsets(path, FIELDS);
      expect(plain(ours)).toEqual(plain(theirs));
      for (const f of ALWAYS_PRESENT) expect(theirs.get(f)).toHaveProperty("offset");
      expect(ours.get(MISSING_FIELD)).toEqual({ missing: "field" });
      expect(ours.get(MISSING_STRUCT)).toEqual({ missing: "struct" });
    }, 30_000);
  }
});

/** The newest Go's sample, linked with the given flags into build/fixtures/dwarf-<tag>/ (cached like buildGoFixture). */
function buildWithLdflags(tag: string, ldflags: string, cgo = false): string {
  const src = join(ROOT, "test/fixtures/gobin-sample");
  const out = join(ROOT, "build/fixtures", `dwarf-${tag}-${NEWEST_GO}`, "gobin-sample");
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(join(src, "main.go")).mtimeMs) return out;
  mkdirSync(join(out, ".."), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const r = Bun.spawnSync(["go", "build", `-ldflags=${ldflags}`, "-o", tmp], {
    cwd: src,
    env: { ...process.env, GOTOOLCHAIN: `go${NEWEST_GO}`, GOARCH: "amd64", CGO_ENABLED: cgo ? "1" : "0", GOFLAGS: "-mod=mod" },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`go build ${ldflags} failed: ${r.stderr.toString()}`);
  renameSync(tmp, out);
  return out;
}

/** `objcopy <flag>` of `path` into build/fixtures/dwarf-<tag>/. */
function objcopy(path: string, tag: string, flag: string): string {
  const out = join(ROOT, "build/fixtures", `dwarf-${tag}-${NEWEST_GO}`, "gobin-sample");
  mkdirSync(join(out, ".."), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const r = Bun.spawnSync(["objcopy", flag, path, tmp], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`objcopy ${flag} failed: ${r.stderr.toString()}`);
  renameSync(tmp, out);
  return out;
}

const SHF_COMPRESSED = 0x800n;

/** The uncompressed sample: plain .debug_* sections, so byte flips land in the DWARF itself. */
function uncompressedSample(): string {
  return buildWithLdflags("uncompressed", "-compressdwarf=false");
}

describe("compressed and uncompressed DWARF give identical offsets", () => {
  const goDefault = (): string => buildGoFixture("gobin-sample", { goVersion: NEWEST_GO });

  test("Go's default is SHF_COMPRESSED zlib; -compressdwarf=false is plain; same offsets", () => {
    const compressed = load(goDefault());
    const info = compressed.section(".debug_info")!;
    expect(info.flags & SHF_COMPRESSED).toBe(SHF_COMPRESSED);
    expect(compressed.sectionData(info)[0]).toBe(1); // ch_type ELFCOMPRESS_ZLIB
    const uncompressed = load(uncompressedSample());
    expect(uncompressed.section(".debug_info")!.flags & SHF_COMPRESSED).toBe(0n);
    expect(debugSection(uncompressed, "info")!.length).toBeGreaterThan(compressed.sectionData(info).length);
    expect(plain(readStructFieldOffsets(uncompressed, FIELDS))).toEqual(plain(readStructFieldOffsets(compressed, FIELDS)));
  }, 120_000);

  test("old-style .zdebug_* (objcopy zlib-gnu) and SHF_COMPRESSED zstd", () => {
    const expected = plain(readStructFieldOffsets(load(goDefault()), FIELDS));
    const zdebug = load(objcopy(uncompressedSample(), "zlib-gnu", "--compress-debug-sections=zlib-gnu"));
    expect(zdebug.section(".debug_info")).toBeUndefined();
    expect(zdebug.section(".zdebug_info")).toBeDefined();
    expect(plain(readStructFieldOffsets(zdebug, FIELDS))).toEqual(expected);
    const zstd = load(objcopy(uncompressedSample(), "zstd", "--compress-debug-sections=zstd"));
    expect(zstd.sectionData(zstd.section(".debug_info")!)[0]).toBe(2); // ch_type ELFCOMPRESS_ZSTD
    expect(plain(readStructFieldOffsets(zstd, FIELDS))).toEqual(expected);
  }, 120_000);

  test("external linking: gcc's DWARF 5 C units (strp, line_strp, DW_AT_sibling) beside Go's", () => {
    const path = buildWithLdflags("external", "-linkmode=external", true);
    const elf = load(path);
    expect(elf.section(".debug_str")).toBeDefined(); // written by gcc only
    expect(plain(readStructFieldOffsets(elf, FIELDS))).toEqual(plain(readelfOffsets(path, FIELDS)));
  }, 300_000);

  // Go ≤ 1.17 wrote .zdebug_* itself (and DWARF 4); the fixture and toolchain may not be on every machine
  const go117 = join(ROOT, "test/fixtures/go117-hello");
  test.skipIf(!existsSync(go117))("Go 1.17's own .zdebug sections", () => {
    const path = buildGoFixture("go117-hello", { goVersion: "1.17.13" });
    const elf = load(path);
    expect(elf.section(".zdebug_info")).toBeDefined();
    const fields = ["runtime.g.goid", "runtime.m.procid", "runtime.g.m", "runtime.nope.x"];
    expect(plain(readStructFieldOffsets(elf, fields))).toEqual(plain(readelfOffsets(path, fields)));
  }, 300_000);
});

// ---- a synthetic ELF for what Go never writes: every string form, implicit_const, indirect, sibling jumps,
// block locations, DWARF 3/4/5 and 64-bit DWARF (the expected numbers are this test's own input)

class Bytes {
  readonly out: number[] = [];
  get length(): number {
    return this.out.length;
  }
  u8(...v: number[]): this {
    this.out.push(...v);
    return this;
  }
  u16(v: number): this {
    return this.u8(v & 0xff, v >>> 8);
  }
  u32(v: number): this {
    return this.u8(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  }
  u64(v: number): this {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  uleb(v: number): this {
    do {
      const b = v & 0x7f;
      v = Math.floor(v / 128);
      this.out.push(v ? b | 0x80 : b);
    } while (v);
    return this;
  }
  str(s: string): this {
    return this.u8(...new TextEncoder().encode(s), 0);
  }
  patch32(at: number, v: number): void {
    for (let i = 0; i < 4; i++) this.out[at + i] = (v >>> (8 * i)) & 0xff;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** A minimal ELF64 with the given sections; `compressed` sections get an Elf64_Chdr and SHF_COMPRESSED. */
function syntheticElf(sections: { name: string; data: Uint8Array; compressed?: boolean }[]): Uint8Array {
  const all = [...sections.map((s) => {
    if (!s.compressed) return { ...s, flags: 0 };
    const z = deflateSync(s.data);
    return { name: s.name, flags: 0x800, data: new Bytes().u32(1).u32(0).u64(s.data.length).u64(1).u8(...z).bytes() };
  })];
  const shstr = new Bytes().u8(0);
  const names = all.map((s) => {
    const at = shstr.length;
    shstr.str(s.name);
    return at;
  });
  const shstrName = shstr.length;
  shstr.str(".shstrtab");
  all.push({ name: ".shstrtab", data: shstr.bytes(), flags: 0 });
  names.push(shstrName);
  const body = new Bytes();
  for (let i = 0; i < 64; i++) body.u8(0);
  const offsets = all.map((s) => {
    const at = body.length;
    body.u8(...s.data);
    return at;
  });
  while (body.length % 8) body.u8(0);
  const shoff = body.length;
  for (let i = 0; i < 64; i++) body.u8(0); // SHN_UNDEF
  all.forEach((s, i) => {
    body.u32(names[i]!).u32(1).u64(s.flags).u64(0).u64(offsets[i]!).u64(s.data.length).u32(0).u32(0).u64(1).u64(0);
  });
  const out = body.bytes();
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  const dv = new DataView(out.buffer);
  dv.setUint16(16, 2, true);
  dv.setUint16(18, 62, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(40, BigInt(shoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(58, 64, true);
  dv.setUint16(60, all.length + 1, true);
  dv.setUint16(62, all.length, true);
  return out;
}

// DW_TAG, DW_AT, DW_FORM values used below
const T = { cu: 0x11, struct: 0x13, member: 0x0d, subprogram: 0x2e };
const A = { sibling: 0x01, name: 0x03, byteSize: 0x0b, stmtList: 0x10, loc: 0x38, decl: 0x3c, strOffsetsBase: 0x72, lowPc: 0x11, type: 0x49 };
const F = {
  addr: 0x01, data2: 0x05, data4: 0x06, string: 0x08, block1: 0x0a, data1: 0x0b, sdata: 0x0d, strp: 0x0e, udata: 0x0f,
  refAddr: 0x10, ref4: 0x13, indirect: 0x16, secOffset: 0x17, exprloc: 0x18, flagPresent: 0x19, strx: 0x1a,
  data16: 0x1e, lineStrp: 0x1f, implicitConst: 0x21, strx1: 0x25,
};

/** `runtimeUnit`: unit 2 is named "runtime", as the unit Go's linker writes every type into. */
function syntheticDwarf(compress = false, runtimeUnit = false): Uint8Array {
  const abbrev = new Bytes();
  const decl = (code: number, tag: number, children: boolean, attrs: [number, number, number?][]): void => {
    abbrev.uleb(code).uleb(tag).u8(children ? 1 : 0);
    for (const [at, form, c] of attrs) {
      abbrev.uleb(at).uleb(form);
      if (form === F.implicitConst) abbrev.uleb(c!);
    }
    abbrev.u8(0, 0);
  };
  // table 1 (DWARF 5 unit)
  decl(1, T.cu, true, [[A.name, F.strx1], [A.strOffsetsBase, F.secOffset]]);
  decl(2, T.struct, true, [[A.name, F.strx1], [A.byteSize, F.data1]]);
  decl(3, T.member, false, [[A.name, F.string], [A.loc, F.implicitConst, 8]]);
  decl(4, T.member, false, [[A.name, F.strp], [A.loc, F.block1]]);
  decl(5, T.member, false, [[A.name, F.indirect], [A.loc, F.data2]]);
  decl(6, T.subprogram, true, [[A.sibling, F.ref4], [A.name, F.string]]);
  decl(8, T.member, false, [[A.name, F.lineStrp], [A.loc, F.udata]]);
  decl(9, T.struct, false, [[A.name, F.string], [A.decl, F.flagPresent]]);
  decl(300, T.member, false, [[A.name, F.strx], [A.loc, F.sdata]]); // a two-byte code
  abbrev.u8(0);
  // table 2 (DWARF 4 unit)
  const table2 = abbrev.length;
  decl(1, T.cu, true, [[A.name, F.string]]);
  decl(2, T.struct, true, [[A.name, F.string], [0x2900, F.data16], [A.lowPc, F.addr], [A.type, F.refAddr]]);
  decl(3, T.member, false, [[A.name, F.string], [A.loc, F.exprloc]]);
  decl(4, T.member, false, [[A.name, F.string], [A.loc, F.data4]]);
  abbrev.u8(0);
  // table 3 (64-bit DWARF 3 unit)
  const table3 = abbrev.length;
  decl(1, T.cu, true, [[A.name, F.string], [A.stmtList, F.secOffset]]);
  decl(2, T.struct, true, [[A.name, F.string]]);
  decl(3, T.member, false, [[A.name, F.string], [A.loc, F.block1]]);
  abbrev.u8(0);

  const str = new Bytes().u8(0);
  const strAt = (s: string): number => {
    const at = str.length;
    str.str(s);
    return at;
  };
  const lineStr = new Bytes().u8(0);
  const dName = lineStr.length;
  lineStr.str("d");
  const strOffsets = new Bytes().u32(0).u16(5).u16(0); // header; length patched below
  for (const s of ["unit1", "x/y.T", "e"]) strOffsets.u32(strAt(s));
  strOffsets.patch32(0, strOffsets.length - 4);
  const bName = strAt("b");

  const info = new Bytes();
  // unit 1: DWARF 5
  const u1 = info.length;
  info.u32(0).u16(5).u8(1, 8).u32(0);
  info.uleb(1).u8(0).u32(8); // CU "unit1", str_offsets_base 8
  info.uleb(6);
  const siblingField = info.length;
  info.u32(0).str("f");
  info.u8(0x7e, 0x7e, 0x7e); // garbage only a walk that ignores DW_AT_sibling would read
  info.patch32(siblingField, info.length - u1);
  info.uleb(9).str("x/y.T"); // a declaration of the struct: not it
  info.uleb(2).u8(1, 48); // struct strx1 #1 "x/y.T"
  info.uleb(3).str("a"); // implicit_const 8
  info.uleb(4).u32(bName).u8(2, 0x23, 16); // strp "b", DW_OP_plus_uconst 16
  info.uleb(5).uleb(F.string).str("c").u16(24); // indirect -> string "c"
  info.uleb(8).u32(dName).uleb(300); // line_strp "d", udata 300
  info.uleb(300).uleb(2).uleb(32); // strx #2 "e", sdata 32
  info.u8(0); // end of struct
  info.u8(0); // end of CU
  info.patch32(u1, info.length - u1 - 4);
  // unit 2: DWARF 4
  const u2 = info.length;
  info.u32(0).u16(4).u32(table2).u8(8);
  info.uleb(1).str(runtimeUnit ? "runtime" : "unit2");
  info.uleb(2).str("a/b.U");
  for (let i = 0; i < 16; i++) info.u8(i); // data16
  info.u64(0x401000).u32(u1); // addr, ref_addr
  info.uleb(3).str("p").u8(3, 0x23, 0x80, 0x01); // exprloc DW_OP_plus_uconst 128
  info.uleb(4).str("q").u32(4);
  info.u8(0, 0);
  info.patch32(u2, info.length - u2 - 4);
  // unit 3: 64-bit DWARF 3
  const u3 = info.length;
  info.u32(0xffffffff).u64(0).u16(3).u64(table3).u8(8);
  info.uleb(1).str("unit3").u64(0);
  info.uleb(2).str("c/d.V");
  info.uleb(3).str("z").u8(2, 0x23, 7);
  info.u8(0, 0);
  const len3 = info.length - u3 - 12;
  info.patch32(u3 + 4, len3);

  return syntheticElf([
    { name: ".debug_abbrev", data: abbrev.bytes(), compressed: compress },
    { name: ".debug_info", data: info.bytes(), compressed: compress },
    { name: ".debug_str", data: str.bytes() },
    { name: ".debug_line_str", data: lineStr.bytes() },
    { name: ".debug_str_offsets", data: strOffsets.bytes(), compressed: compress },
  ]);
}

describe("forms and unit kinds Go does not write (synthetic DWARF)", () => {
  const fields = [
    "x/y.T.a", "x/y.T.b", "x/y.T.c", "x/y.T.d", "x/y.T.e", "x/y.T.nope",
    "a/b.U.p", "a/b.U.q", "c/d.V.z", "x/y.Missing.a",
  ];
  const expected: Record<string, FieldOffset> = {
    "x/y.T.a": { offset: 8 }, "x/y.T.b": { offset: 16 }, "x/y.T.c": { offset: 24 }, "x/y.T.d": { offset: 300 },
    "x/y.T.e": { offset: 32 }, "x/y.T.nope": { missing: "field" }, "a/b.U.p": { offset: 128 }, "a/b.U.q": { offset: 4 },
    "c/d.V.z": { offset: 7 }, "x/y.Missing.a": { missing: "struct" },
  };

  test("strx/strp/line_strp/indirect names, implicit_const/block/exprloc/data/udata/sdata locations, DW_AT_sibling, DWARF 3/4/5, 64-bit", () => {
    const elf = ElfFile.parse(syntheticDwarf(), "synthetic");
    expect(plain(readStructFieldOffsets(elf, fields))).toEqual(expected);
  });

  test("the same, SHF_COMPRESSED", () => {
    const elf = ElfFile.parse(syntheticDwarf(true), "synthetic-z");
    expect(elf.section(".debug_info")!.flags & SHF_COMPRESSED).toBe(SHF_COMPRESSED);
    expect(plain(readStructFieldOffsets(elf, fields))).toEqual(expected);
  });

  test("with a unit named runtime, only runtime units are searched: Go's linker writes every type there", () => {
    const elf = ElfFile.parse(syntheticDwarf(false, true), "synthetic-runtime");
    const found = plain(readStructFieldOffsets(elf, fields));
    expect(found).toEqual({
      ...Object.fromEntries(fields.map((f) => [f, { missing: "struct" }])),
      "a/b.U.p": { offset: 128 }, "a/b.U.q": { offset: 4 },
    });
  });

  test("every single-byte change of the synthetic file: a result or a typed error", () => {
    const good = syntheticDwarf();
    for (let i = 64; i < good.length; i++) {
      for (const v of [0x00, 0xff, good[i]! ^ 0x01, good[i]! ^ 0x80]) {
        const bad = good.slice();
        bad[i] = v;
        attempt(bad, `byte ${i} = ${v}`, fields);
      }
    }
  });
});

/** Small deterministic PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Runs the reader on bytes; only a result or a GotelError (one line) may come out, and quickly. */
function attempt(bytes: Uint8Array, what: string, fields: readonly string[] = FIELDS): "ok" | "error" {
  const t0 = performance.now();
  try {
    readStructFieldOffsets(ElfFile.parse(bytes, "mutant"), fields);
    return "ok";
  } catch (e) {
    if (!(e instanceof GotelError)) throw new Error(`${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    expect(e.oneLine).not.toContain("\n");
    return "error";
  } finally {
    // a hang guard, not a benchmark: a full scan of the sample takes a few milliseconds
    const ms = performance.now() - t0;
    if (ms > 2000) throw new Error(`${what}: took ${ms.toFixed(0)} ms`);
  }
}

/** Byte offset of a section header's field (sh_size is at +32, sh_offset at +24). */
function headerField(bytes: Uint8Array, elf: ElfFile, name: string, field: number): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  const index = elf.sections.findIndex((s) => s.name === name);
  if (index < 0) throw new Error(`no ${name}`);
  return shoff + index * 64 + field;
}

describe("corrupt DWARF gives a typed error, never a crash, hang or huge allocation", () => {
  test("byte flips in .debug_info and .debug_abbrev of a plain binary", () => {
    const bytes = new Uint8Array(readFileSync(uncompressedSample()));
    const elf = ElfFile.parse(bytes, "original");
    const random = rng(1);
    const outcomes = { ok: 0, error: 0 };
    for (const [name, count] of [[".debug_abbrev", 150], [".debug_info", 250]] as const) {
      const s = elf.section(name)!;
      for (let i = 0; i < count; i++) {
        // abbreviations and unit headers matter most: aim half of the flips at the first bytes
        const at = s.offset + Math.floor(i % 2 ? random() * s.size : random() * Math.min(s.size, 512));
        const old = bytes[at]!;
        bytes[at] = old ^ (1 + Math.floor(random() * 255));
        try {
          outcomes[attempt(bytes, `${name} flip at ${at}`)]++;
        } finally {
          bytes[at] = old;
        }
      }
    }
    // both happen: the flips are not all harmless, and not all fatal
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes.error).toBeGreaterThan(0);
  }, 120_000);

  test("truncated .debug_info and .debug_abbrev (section sizes shrunk)", () => {
    const bytes = new Uint8Array(readFileSync(uncompressedSample()));
    const elf = ElfFile.parse(bytes, "original");
    const dv = new DataView(bytes.buffer);
    for (const name of [".debug_info", ".debug_abbrev"]) {
      const field = headerField(bytes, elf, name, 32);
      const size = elf.section(name)!.size;
      for (const cut of [0, 1, 3, 7, 11, 12, 50, Math.floor(size / 3), size - 1]) {
        dv.setBigUint64(field, BigInt(cut), true);
        expect(attempt(bytes, `${name} cut to ${cut}`)).toBe("error");
      }
      dv.setBigUint64(field, BigInt(size), true);
    }
    expect(attempt(bytes, "restored")).toBe("ok");
  }, 60_000);

  test("a truncated file", () => {
    const bytes = new Uint8Array(readFileSync(buildGoFixture("gobin-sample", { goVersion: NEWEST_GO })));
    for (const fraction of [0.1, 0.5, 0.9, 0.99]) attempt(bytes.subarray(0, Math.floor(bytes.length * fraction)), `cut at ${fraction}`);
  });

  test("compression headers: type, declared size (bombs), stream", () => {
    const path = buildGoFixture("gobin-sample", { goVersion: NEWEST_GO });
    const bytes = new Uint8Array(readFileSync(path));
    const elf = ElfFile.parse(bytes, path);
    const info = elf.section(".debug_info")!;
    const dv = new DataView(bytes.buffer);
    const declared = dv.getBigUint64(info.offset + 8, true);
    const expectSectionError = (what: string, pattern: RegExp): void => {
      let err: unknown;
      try {
        readStructFieldOffsets(ElfFile.parse(bytes, path), FIELDS);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DwarfError);
      expect((err as DwarfError).cause).toBeInstanceOf(DebugSectionError);
      expect((err as DwarfError).message).toMatch(pattern);
      expect((err as DwarfError).message).toContain(".debug_info");
    };
    dv.setUint32(info.offset, 7, true);
    expectSectionError("ch_type 7", /unknown compression type 7/);
    dv.setUint32(info.offset, 1, true);
    for (const huge of [2n ** 40n, declared * 1000n, 2n ** 64n - 1n]) {
      dv.setBigUint64(info.offset + 8, huge, true);
      expectSectionError(`ch_size ${huge}`, /implausible/);
    }
    dv.setBigUint64(info.offset + 8, declared - 1n, true);
    expectSectionError("ch_size one short", /larger than declared/);
    dv.setBigUint64(info.offset + 8, declared + 1n, true);
    expectSectionError("ch_size one long", /declares/);
    dv.setBigUint64(info.offset + 8, declared, true);
    const random = rng(2);
    for (let i = 0; i < 60; i++) {
      const at = info.offset + 24 + Math.floor(random() * Math.min(info.size - 24, 4096));
      const old = bytes[at]!;
      bytes[at] = old ^ 0x5a;
      try {
        attempt(bytes, `zlib stream flip at ${at}`);
      } finally {
        bytes[at] = old;
      }
    }
    // the section header's size cut to less than the 24-byte compression header
    const sizeField = headerField(bytes, elf, ".debug_info", 32);
    dv.setBigUint64(sizeField, 10n, true);
    expectSectionError("truncated header", /compression header is truncated/);
  }, 60_000);

  test(".zdebug header: magic and declared size", () => {
    const path = join(ROOT, "build/fixtures", `dwarf-zlib-gnu-${NEWEST_GO}`, "gobin-sample");
    const bytes = new Uint8Array(readFileSync(existsSync(path) ? path : objcopy(uncompressedSample(), "zlib-gnu", "--compress-debug-sections=zlib-gnu")));
    const elf = ElfFile.parse(bytes, "zdebug");
    const s = elf.section(".zdebug_info")!;
    const dv = new DataView(bytes.buffer);
    bytes[s.offset] = 0x58; // "XLIB"
    expect(attempt(bytes, "bad magic")).toBe("error");
    bytes[s.offset] = 0x5a;
    const declared = dv.getBigUint64(s.offset + 4, false);
    dv.setBigUint64(s.offset + 4, 2n ** 50n, false);
    expect(() => readStructFieldOffsets(ElfFile.parse(bytes, "zdebug"), FIELDS)).toThrow(/implausible/);
    dv.setBigUint64(s.offset + 4, declared, false);
    expect(attempt(bytes, "restored")).toBe("ok");
  }, 60_000);
});
