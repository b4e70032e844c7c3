/**
 * Corrupt Go executables: truncated, and with bytes flipped in the ELF headers, build info, pclntab and
 * DWARF. Every reader must answer or throw a GotelError — never another exception, never hang, never
 * allocate without bound.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspectExecutable } from "../../src/cli/inspect.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { ElfFile, PT_LOAD } from "../../src/gobin/elf.ts";
import { GotelError } from "../../src/errors.ts";
import { expectOneLineError, GOTEL, runCommand } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";

/**
 * What an error about a mangled file must name: the part of the file that is wrong (a header, a section, a
 * table), or what the file is not.
 */
const NAMES_A_PART = new RegExp([
  "ELF header", "program header", "section header", "\\.gopclntab", "Go function table", "funcnametab", "\\.go\\.buildinfo",
  "Go build info", "\\.symtab", "\\.strtab", "\\.debug_", "DWARF", "pclntab", "moduledata", "loaded segment",
  "not an ELF file", "not a 64-bit ELF", "not a little-endian ELF", "not a Go executable", "ELF machine", "function .+:",
].join("|"));
/** messages that name nothing, or a runtime's own words leaking out */
const LEAKS = /value 0x[0-9a-f]+ is out of range|Cannot create a Buffer|RangeError|TypeError|BigInt|undefined|NaN|byteOffset|Offset is outside/;

function expectNamedError(e: GotelError, what: string): void {
  expect(e.oneLine, what).not.toContain("\n");
  expect(e.oneLine, what).toMatch(NAMES_A_PART);
  expect(e.oneLine, what).not.toMatch(LEAKS);
}

/** Small deterministic PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const FUNCTIONS = ["main.lookup", "net/http.serverHandler.ServeHTTP", "runtime.mallocgc"];
const FIELDS = ["net/http.Request.Method", "runtime.g.goid", "main.user.Email"];

/** Everything gotel reads from a binary. */
function analyzeAll(bytes: Uint8Array): void {
  const exe = GoExecutable.fromBytes(bytes, "mutant");
  void exe.goVersion;
  void exe.stripped;
  void exe.cgo;
  for (const f of FUNCTIONS) exe.probeSites(f);
  exe.dwarfFieldOffsets(FIELDS);
}

function survives(bytes: Uint8Array, what: string): "ok" | "error" {
  try {
    analyzeAll(bytes);
    return "ok";
  } catch (e) {
    if (!(e instanceof GotelError)) throw new Error(`${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    expectNamedError(e, what);
    return "error";
  }
}

function regions(elf: ElfFile): [string, number, number][] {
  const out: [string, number, number][] = [["ELF header", 0, 64], ["program headers", 64, elf.segments.length * 56]];
  const shoff = Number(new DataView(elf.bytes.buffer, elf.bytes.byteOffset).getBigUint64(40, true));
  out.push(["section headers", shoff, elf.sections.length * 64]);
  for (const name of [".go.buildinfo", ".gopclntab", ".debug_info", ".debug_abbrev", ".symtab", ".text"]) {
    const s = elf.section(name);
    if (s && s.size > 0) out.push([name, s.offset, Math.min(s.size, 4096)]);
  }
  return out;
}

describe.each([
  ["unstripped", { goVersion: "1.27.4" }],
  ["stripped", { goVersion: "1.27.4", stripped: true }],
  ["stripped Go 1.21", { goVersion: "1.21.13", stripped: true }],
] as const)("mutated %s binary", (_label, variant) => {
  const original = new Uint8Array(readFileSync(buildGoFixture("gobin-sample", variant)));

  test("the original analyses cleanly", () => {
    expect(survives(original, "original")).toBe("ok");
  });

  test("truncated at many points", () => {
    const cuts = [0, 3, 4, 63, 64, 200, 4096, 65536, original.length / 3, original.length / 2, original.length - 1].map(Math.floor);
    for (const n of cuts) survives(original.subarray(0, n), `truncated to ${n}`);
  });

  test("bytes flipped in headers, build info, pclntab and DWARF", () => {
    const random = rng(0x90e1);
    const rssBefore = process.memoryUsage().rss;
    const elf = ElfFile.parse(original, "original");
    let errors = 0;
    let runs = 0;
    for (const [name, start, len] of regions(elf)) {
      for (let i = 0; i < 40; i++) {
        const m = original.slice();
        // a bit flipped, a random byte, or a whole word of 0x00/0xff/0x7f/0x80 (huge or zero offsets and sizes)
        const mode = random();
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) {
          const at = start + Math.floor(random() * len);
          if (mode < 0.5) m[at] = (m[at] ?? 0) ^ (1 << Math.floor(random() * 8));
          else if (mode < 0.75) m[at] = Math.floor(random() * 256);
          else m.fill([0, 0xff, 0x7f, 0x80][Math.floor(random() * 4)]!, at, Math.min(at + 8, m.length));
        }
        if (survives(m, `${name} mutation ${i}`) === "error") errors++;
        runs++;
      }
    }
    expect(runs).toBeGreaterThanOrEqual(240);
    expect(errors).toBeGreaterThan(0); // the mutations do reach the readers
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(1024 ** 3);
  }, 300_000);
});

/** Field offsets of the ELF64 headers. */
const E_PHOFF = 32, E_SHOFF = 40, E_PHENTSIZE = 54, E_SHSTRNDX = 62;
const P_OFFSET = 8, P_VADDR = 16, P_FILESZ = 32;
const SH_NAME = 0, SH_OFFSET = 24, SH_SIZE = 32, SH_LINK = 40;

interface Mangle {
  what: string;
  variant: "unstripped" | "stripped";
  change: (b: Uint8Array, dv: DataView, elf: ElfFile) => void;
  /** the message after "<path>: " */
  line: RegExp;
}

function shdr(elf: ElfFile, name: string): number {
  const dv = new DataView(elf.bytes.buffer, elf.bytes.byteOffset);
  const s = elf.section(name);
  if (!s) throw new Error(`fixture has no ${name}`);
  return Number(dv.getBigUint64(E_SHOFF, true)) + s.index * 64;
}
function firstLoad(elf: ElfFile): number {
  return 64 + elf.segments.findIndex((p) => p.type === PT_LOAD) * 56;
}

const MANGLES: Mangle[] = [
  { what: "e_phoff huge", variant: "unstripped", change: (_b, dv) => dv.setBigUint64(E_PHOFF, 2n ** 63n, true),
    line: /^ELF header: the program header table offset \(e_phoff\) is 0x8000000000000000, beyond any file or address space \(corrupt\)$/ },
  { what: "e_shoff huge", variant: "unstripped", change: (_b, dv) => dv.setBigUint64(E_SHOFF, 0x440000000073dda0n, true),
    line: /^ELF header: the section header table offset \(e_shoff\) is 0x440000000073dda0, beyond/ },
  { what: "e_shoff past the end", variant: "unstripped", change: (b, dv) => dv.setBigUint64(E_SHOFF, BigInt(b.length - 100), true),
    line: /^section header table lies outside the file \(truncated or corrupt\)$/ },
  { what: "e_phoff past the end", variant: "stripped", change: (b, dv) => dv.setBigUint64(E_PHOFF, BigInt(b.length - 10), true),
    line: /^program header table lies outside the file \(truncated or corrupt\)$/ },
  { what: "e_phentsize too small", variant: "unstripped", change: (_b, dv) => dv.setUint16(E_PHENTSIZE, 8, true),
    line: /^ELF header: program header size \(e_phentsize\) is 8, less than 56$/ },
  { what: "e_shstrndx past the table", variant: "unstripped", change: (_b, dv) => dv.setUint16(E_SHSTRNDX, 0xfff0, true),
    line: /^ELF header: the section name table index \(e_shstrndx\) is 65520, but there are \d+ sections$/ },
  { what: "a PT_LOAD segment longer than the file", variant: "stripped", change: (b, dv, elf) => dv.setBigUint64(firstLoad(elf) + P_FILESZ, BigInt(b.length * 2), true),
    line: /^program header \d+ \(PT_LOAD\) points past the end of the file \(offset 0x[0-9a-f]+, \d+ bytes; the file has \d+: truncated\?\)$/ },
  { what: "p_vaddr huge", variant: "stripped", change: (_b, dv, elf) => dv.setBigUint64(firstLoad(elf) + P_VADDR, 2n ** 63n, true),
    line: /^program header \d+: p_vaddr is 0x8000000000000000, beyond/ },
  { what: "p_offset huge", variant: "unstripped", change: (_b, dv, elf) => dv.setBigUint64(firstLoad(elf) + P_OFFSET, 2n ** 64n - 1n, true),
    line: /^program header \d+: p_offset is 0xffffffffffffffff, beyond/ },
  { what: ".gopclntab past the end", variant: "stripped", change: (b, dv, elf) => dv.setBigUint64(shdr(elf, ".gopclntab") + SH_OFFSET, BigInt(b.length - 16), true),
    line: /^section header \d+ \(\.gopclntab\) points past the end of the file \(offset 0x[0-9a-f]+, \d+ bytes; the file has \d+: truncated\?\)$/ },
  { what: ".gopclntab size huge", variant: "stripped", change: (_b, dv, elf) => dv.setBigUint64(shdr(elf, ".gopclntab") + SH_SIZE, 2n ** 60n, true),
    line: /^section header \d+ \(\.gopclntab\): sh_size is 0x1000000000000000, beyond/ },
  { what: ".go.buildinfo past the end", variant: "unstripped", change: (b, dv, elf) => dv.setBigUint64(shdr(elf, ".go.buildinfo") + SH_OFFSET, BigInt(b.length), true),
    line: /^section header \d+ \(\.go\.buildinfo\) points past the end of the file/ },
  { what: ".symtab linked to a missing string table", variant: "unstripped", change: (_b, dv, elf) => dv.setUint32(shdr(elf, ".symtab") + SH_LINK, 999, true),
    line: /^section header \d+ \(\.symtab\): its string table \(sh_link\) is section 999, but there are \d+ sections$/ },
  { what: "a section name offset past the name table", variant: "unstripped", change: (_b, dv, elf) => dv.setUint32(shdr(elf, ".text") + SH_NAME, 0xffffffff, true),
    line: /^section header \d+: its name offset 4294967295 is past the end of the section name table \(\d+ bytes\)$/ },
  { what: "a symbol name offset past .strtab", variant: "unstripped", change: (_b, dv, elf) => dv.setUint32(elf.section(".symtab")!.offset + 24, 0x7fffffff, true),
    line: /^symbol 1 of \.symtab: its name offset 2147483647 is past the end of \.strtab \(\d+ bytes\)$/ },
  { what: "DWARF that inflates past its declared size", variant: "unstripped",
    change: (_b, dv, elf) => dv.setBigUint64(elf.section(".debug_info")!.offset + 8, dv.getBigUint64(elf.section(".debug_info")!.offset + 8, true) - 1n, true),
    line: /^corrupt DWARF: section header \d+ \(\.debug_info\): its zlib data is larger than declared: it inflates past the \d+ bytes its compression header gives; the file is corrupt$/ },
  { what: "DWARF declared 1 byte long", variant: "unstripped", change: (_b, dv, elf) => dv.setBigUint64(elf.section(".debug_info")!.offset + 8, 1n, true),
    line: /^corrupt DWARF: section header \d+ \(\.debug_info\): its zlib data is larger than declared: it inflates past the 1 bytes/ },
];

describe("inspect of targeted mangles: one line naming the part of the file", () => {
  const scratch = mkdtempSync(join(tmpdir(), "gotel-mangle-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const originals = {
    unstripped: new Uint8Array(readFileSync(buildGoFixture("gobin-sample", { goVersion: "1.27.4" }))),
    stripped: new Uint8Array(readFileSync(buildGoFixture("gobin-sample", { goVersion: "1.27.4", stripped: true }))),
  };
  const INSPECT = { functions: FUNCTIONS, fields: FIELDS.slice(0, 2) };

  test.each(MANGLES.map((m) => [m.what, m] as const))("%s", (_what, m) => {
    const b = originals[m.variant].slice();
    m.change(b, new DataView(b.buffer), ElfFile.parse(originals[m.variant], "original"));
    const path = join(scratch, m.what.replace(/\W+/g, "-"));
    writeFileSync(path, b);
    let thrown: unknown;
    try {
      inspectExecutable(path, INSPECT);
    } catch (e) {
      thrown = e;
    }
    expect(thrown, m.what).toBeInstanceOf(GotelError);
    const e = thrown as GotelError;
    expectNamedError(e, m.what);
    expect(e.oneLine.startsWith(`${path}: `), e.oneLine).toBe(true);
    expect(e.oneLine.slice(path.length + 2)).toMatch(m.line);
    // the compiled CLI prints the same, as one line, exit 1
    const r = runCommand([GOTEL, "inspect", "--function", FUNCTIONS[0]!, "--field", FIELDS[0]!, path]);
    expect(expectOneLineError(r)).toBe(`gotel: ${e.oneLine}`);
    expect(r.code).toBe(1);
  }, 60_000);

  test("random mangles through inspect: it answers, or one line that names a part", () => {
    const random = rng(0x15);
    let errors = 0;
    for (const variant of ["unstripped", "stripped"] as const) {
      const original = originals[variant];
      const elf = ElfFile.parse(original, "original");
      for (const [name, start, len] of regions(elf)) {
        for (let i = 0; i < 12; i++) {
          const m = original.slice();
          const at = start + Math.floor(random() * Math.max(1, len - 8));
          m.fill([0, 0xff, 0x7f, 0x80, Math.floor(random() * 256)][Math.floor(random() * 5)]!, at, at + 1 + Math.floor(random() * 8));
          const path = join(scratch, `random-${variant}-${i}`);
          writeFileSync(path, m);
          try {
            inspectExecutable(path, INSPECT);
          } catch (e) {
            if (!(e instanceof GotelError)) throw new Error(`${name} mangle ${i}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
            expectNamedError(e, `${name} mangle ${i}`);
            errors++;
          }
        }
      }
    }
    expect(errors).toBeGreaterThan(0);
  }, 300_000);
});
