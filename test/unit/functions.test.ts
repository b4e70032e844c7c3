import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { readBuildInfo } from "../../src/gobin/buildinfo.ts";
import { ElfFile, type ElfSymbol } from "../../src/gobin/elf.ts";
import { readFunctions } from "../../src/gobin/functions.ts";
import { PclntabError, readPclntab, readPclntabEntries } from "../../src/gobin/pclntab.ts";
import { GotelError } from "../../src/errors.ts";
import { buildGoFixture, ROOT, variantName } from "../support/go.ts";
import { sampleVariants, unstrippedTwin, type Variant } from "../support/matrix.ts";

function load(path: string): ElfFile {
  return ElfFile.parse(new Uint8Array(readFileSync(path)), path);
}

/** The truth: Go's FUNC symbols in .symtab, between runtime.text and runtime.etext, without section symbols. */
function symtabTruth(elf: ElfFile): ElfSymbol[] {
  const syms = elf.symbols();
  const text = syms.find((s) => s.name === "runtime.text")!.value;
  const etext = syms.find((s) => s.name === "runtime.etext")!.value;
  return syms.filter((s) => s.isFunction && s.value >= text && s.value < etext && s.name !== "runtime.text" && !/\(\.text[^)]*\)$/.test(s.name));
}

/**
 * Every pclntab function is a .symtab function at the same address with the same name (or that name + ".abi0"
 * for a function whose ABIInternal twin the linker discarded, which the pclntab cannot show) and, where the symbol
 * has a size, the same end: exact when the function has pc tables (Go code), else up to the next entry (C code and
 * markers, whose padding the pclntab cannot tell). And every sized .symtab Go function is in the pclntab.
 */
const SAMPLE_NAMES = ["main.lookup", "main.main", "net/http.serverHandler.ServeHTTP", "runtime.goexit.abi0"];

function expectSameFunctions(stripped: ElfFile, truthElf: ElfFile, names = SAMPLE_NAMES): void {
  const fns = readPclntab(stripped);
  const entries = readPclntabEntries(stripped);
  const counts = new Map<string, number>();
  for (const f of fns) counts.set(f.name, (counts.get(f.name) ?? 0) + 1);
  const truth = symtabTruth(truthElf);
  const at = new Map<number, ElfSymbol[]>();
  for (const s of truth) at.set(s.value, [...(at.get(s.value) ?? []), s]);
  const problems: string[] = [];
  fns.forEach((f, i) => {
    const cands = at.get(f.entry) ?? [];
    const s = cands.find((c) => c.name === f.name) ?? cands.find((c) => c.name === `${f.name}.abi0` && counts.get(f.name) === 1);
    if (!s) return void problems.push(`pclntab ${f.name}@${f.entry.toString(16)}: no such symbol (${cands.map((c) => c.name).join(", ")})`);
    if (s.size === 0) return;
    const next = fns[i + 1]?.entry ?? f.end;
    const exact = s.value + s.size === f.end;
    const padded = !entries[i]!.exactEnd && f.end >= s.value + s.size && f.end <= next;
    if (!exact && !padded) problems.push(`${f.name}: end ${f.end.toString(16)}, symtab size ${s.size}`);
  });
  const seen = new Set(fns.map((f) => `${f.entry}`));
  for (const s of truth) if (s.size > 0 && !seen.has(`${s.value}`)) problems.push(`symtab ${s.name}@${s.value.toString(16)} missing from pclntab`);
  expect(problems.slice(0, 20)).toEqual([]);
  expect(fns.length).toBeGreaterThan(1000);
  // names the instrumentation needs are there and exact
  for (const name of names) {
    const byTable = readFunctions(stripped).get(name);
    expect(byTable, name).toBeDefined();
  }
}

describe("pclntab of stripped binaries equals .symtab of their unstripped twins", () => {
  for (const v of sampleVariants().filter((x) => x.stripped)) {
    test(variantName(v), () => {
      const stripped = load(buildGoFixture("gobin-sample", v));
      expect(stripped.section(".symtab")).toBeUndefined();
      expect(readFunctions(stripped).source).toBe("pclntab");
      expectSameFunctions(stripped, load(buildGoFixture("gobin-sample", unstrippedTwin(v))));
    });
  }
});

describe("pclntab of unstripped binaries equals their own .symtab", () => {
  for (const v of sampleVariants().filter((x) => !x.stripped)) {
    test(variantName(v), () => {
      const elf = load(buildGoFixture("gobin-sample", v));
      expectSameFunctions(elf, elf);
      const table = readFunctions(elf);
      expect(table.source).toBe("symtab");
      const all = table.all();
      expect(all.every((f, i) => i === 0 || all[i - 1]!.entry <= f.entry)).toBe(true);
      const lookup = table.get("main.lookup")!;
      expect(readPclntab(elf).find((f) => f.name === "main.lookup")).toEqual(lookup);
      expect(lookup.fileOffset).toBe(elf.fileOffset(lookup.entry)!);
    });
  }
});

/** A function as `go tool objdump` prints it: its TEXT header, and the instructions listed under it. */
function objdumpFunctions(path: string, goVersion: string): { name: string; entry: number; end: number }[] {
  const r = Bun.spawnSync(["go", "tool", "objdump", path], {
    env: { ...process.env, GOTOOLCHAIN: `go${goVersion}` }, stderr: "pipe", maxBuffer: 1 << 30,
  });
  expect(r.exitCode).toBe(0);
  const out: { name: string; entry: number; end: number }[] = [];
  let cur: (typeof out)[number] | undefined;
  for (const line of r.stdout.toString().split("\n")) {
    const text = /^TEXT (\S+)\(SB\)/.exec(line);
    if (text) out.push(cur = { name: text[1]!, entry: -1, end: -1 });
    const insn = /^\s+\S+:\d+\s+0x([0-9a-f]+)\s+([0-9a-f]+)/.exec(line);
    if (insn && cur) {
      const at = parseInt(insn[1]!, 16);
      if (cur.entry < 0) cur.entry = at;
      cur.end = at + insn[2]!.length / 2;
    }
  }
  return out;
}

/**
 * `go tool objdump` (the same toolchain) agrees on where every function it lists starts and ends. It lists no
 * TEXT header for some symbols (e.g. `go:struct { io.Reader; io.WriterTo }.Read`) and prints their code under
 * the function before them: there its end runs on, over exactly those functions of ours.
 */
describe("go tool objdump agrees on every function", () => {
  const picks: Variant[] = [
    { goVersion: "1.21.13" },
    { goVersion: "1.26.9", cgo: true },
    { goVersion: "1.27.4", pie: true },
    { goVersion: "1.27.4", goarch: "arm64" },
  ];
  for (const v of picks) {
    test(variantName(v), () => {
      const ours = readFunctions(load(buildGoFixture("gobin-sample", { ...v, stripped: true }))).all();
      // cgo's C functions (no package in their names, or gcc's `.cold` parts) and the C objects' section
      // symbols (`runtime/cgo(.text)`) are not Go's
      const listed = objdumpFunctions(buildGoFixture("gobin-sample", v), v.goVersion)
        .filter((o) => o.name.includes(".") && !/\(\.text[.\w]*\)$|\.cold$/.test(o.name));
      const byEntry = new Map(ours.map((f) => [f.entry, f]));
      const listedEntries = new Set(listed.map((f) => f.entry));
      expect(listed.length).toBeGreaterThan(1000);
      const wrong: string[] = [];
      for (const o of listed) {
        const f = byEntry.get(o.entry);
        // ABI0 functions (assembly, and wrappers of Go functions for it) are `.abi0` in one name table, not the other
        if (!f || f.name.replace(/\.abi0$/, "") !== o.name.replace(/\.abi0$/, "")) {
          wrong.push(`${o.name}: objdump's entry 0x${o.entry.toString(16)}, ours ${f ? f.name : "none"}`);
          continue;
        }
        if (f.end === o.end) continue;
        // objdump ran on over functions it has no header for: every one of them is ours, none is listed
        const between = ours.filter((g) => g.entry >= f.end && g.entry < o.end);
        if (f.end > o.end || between.length === 0 || between.some((g) => listedEntries.has(g.entry))) {
          wrong.push(`${o.name}: objdump's end 0x${o.end.toString(16)}, ours 0x${f.end.toString(16)}`);
        }
      }
      expect(wrong).toEqual([]);
    });
  }
});

/** External linking (cgo with the C linker), where C code precedes Go's text; built here, cached in build/fixtures. */
function buildExternal(goVersion: string, mode: "exe" | "pie", stripped: boolean): string {
  const name = `gobin-sample-ext-${goVersion}-${mode}-${stripped ? "stripped" : "symbols"}`;
  const out = join(ROOT, "build/fixtures", name, "gobin-sample");
  const src = join(ROOT, "test/fixtures/gobin-sample");
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(join(src, "main.go")).mtimeMs) return out;
  mkdirSync(join(ROOT, "build/fixtures", name), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const r = Bun.spawnSync(["go", "build", `-buildmode=${mode}`, `-ldflags=-linkmode=external${stripped ? " -s -w" : ""}`, "-o", tmp], {
    cwd: src,
    env: { ...process.env, GOTOOLCHAIN: `go${goVersion}`, CGO_ENABLED: "1", GOARCH: "amd64", GOFLAGS: "-mod=mod" },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`external-link build (${name}) failed: ${r.stderr.toString()}`);
  renameSync(tmp, out);
  return out;
}

describe("externally linked (C code first in .text)", () => {
  for (const goVersion of ["1.24.13", "1.26.9", "1.27.4"]) {
    for (const mode of ["exe", "pie"] as const) {
      test(`${goVersion} ${mode}`, () => {
        const full = load(buildExternal(goVersion, mode, false));
        const stripped = load(buildExternal(goVersion, mode, true));
        // the point of the case: Go's text does not start where .text does
        const textSym = full.symbols().find((s) => s.name === "runtime.text")!;
        expect(full.section(".text")!.addr).toBeLessThan(textSym.value);
        expectSameFunctions(stripped, full);
      });
    }
  }
});

test("PIE whose pointers live only in R_X86_64_RELATIVE addends (as lld writes them)", () => {
  const path = buildExternal("1.27.4", "pie", true);
  const bytes = new Uint8Array(readFileSync(path));
  const elf = ElfFile.parse(bytes, path);
  const expected = readPclntab(elf);
  const rela = elf.section(".rela.dyn")!;
  const b = bytes.slice();
  const dv = new DataView(b.buffer);
  let cleared = 0;
  for (let p = rela.offset; p + 24 <= rela.offset + rela.size; p += 24) {
    if (dv.getUint32(p + 8, true) !== 8) continue; // R_X86_64_RELATIVE
    const off = elf.fileOffset(Number(dv.getBigUint64(p, true)));
    if (off !== undefined) {
      dv.setBigUint64(off, 0n, true);
      cleared++;
    }
  }
  expect(cleared).toBeGreaterThan(1000);
  expect(readPclntab(ElfFile.parse(b, "lld-style"))).toEqual(expected);
});

test("Go 1.17 (the 1.16 table format, absolute addresses)", () => {
  // the same build (and cache entry) as buildinfo.test.ts's
  const path = join(ROOT, "build/fixtures/go117-hello-1.17.13-amd64/prog");
  if (!existsSync(path)) {
    mkdirSync(join(path, ".."), { recursive: true });
    const r = Bun.spawnSync(["go", "build", "-o", `${path}.tmp-${process.pid}`], {
      cwd: join(ROOT, "test/fixtures/go117-hello"),
      env: { ...process.env, GOTOOLCHAIN: "go1.17.13", CGO_ENABLED: "0", GOARCH: "amd64", GOFLAGS: "-mod=mod" },
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`go1.17.13 build failed: ${r.stderr.toString()}`);
    renameSync(`${path}.tmp-${process.pid}`, path);
  }
  const elf = load(path);
  expectSameFunctions(elf, elf, ["main.greet", "main.main", "runtime.goexit.abi0"]);
});

describe("not Go, or corrupt", () => {
  test("a non-Go ELF file is a typed error", () => {
    const elf = load("/bin/true");
    expect(() => readPclntab(elf)).toThrow(PclntabError);
    expect(() => readFunctions(elf)).toThrow(PclntabError);
  });

  // Go 1.27 stripped PIE: the moduledata path (no textStart) is exercised by every mutation
  const path = buildGoFixture("gobin-sample", { goVersion: "1.27.4", stripped: true, pie: true });
  const bytes = new Uint8Array(readFileSync(path));
  const clean = ElfFile.parse(bytes, "clean");
  const pcln = clean.section(".gopclntab")!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const word = (i: number): number => Number(dv.getBigUint64(pcln.offset + 8 + i * 8, true));

  /** Only a function list or a GotelError, quickly. */
  function survives(b: Uint8Array, what: string): void {
    const t0 = performance.now();
    try {
      const fns = readPclntab(ElfFile.parse(b, what));
      expect(Array.isArray(fns)).toBe(true);
    } catch (e) {
      if (!(e instanceof GotelError)) throw new Error(`${what}: ${(e as Error).stack}`);
    }
    expect(performance.now() - t0, what).toBeLessThan(3000);
  }

  test("every header byte, flipped or maxed", () => {
    for (let i = 0; i < 72; i++) {
      for (const v of [0x00, 0xff, 0x7f, bytes[pcln.offset + i]! ^ 0x10]) {
        const b = bytes.slice();
        b[pcln.offset + i] = v;
        survives(b, `header byte ${i} = ${v}`);
      }
    }
  });

  test("funcnametab offsets, pcsp offsets and ftab entries scrambled", () => {
    const nfunc = word(0);
    const ftab = pcln.offset + word(7);
    let seed = 42;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let round = 0; round < 12; round++) {
      const b = bytes.slice();
      const bdv = new DataView(b.buffer);
      for (let k = 0; k < 200; k++) {
        const i = rand(nfunc);
        const rec = ftab + bdv.getUint32(ftab + i * 8 + 4, true);
        const field = [4, 16, 20, 32][round % 4]!; // nameOff, pcsp, pcfile, cuOffset
        bdv.setUint32(rec + field, [0xffffffff, 0x7fffffff, rand(2 ** 31), 0][k % 4]!, true);
      }
      survives(b, `records round ${round}`);
      const c = bytes.slice();
      const cdv = new DataView(c.buffer);
      cdv.setUint32(ftab + rand(nfunc) * 8 + (round % 2) * 4, rand(2 ** 32), true);
      survives(c, `ftab round ${round}`);
    }
  });

  test("a funcnametab with no terminators is an error, not a quadratic scan", () => {
    const b = bytes.slice();
    b.fill(0x41, pcln.offset + word(3), pcln.offset + word(4));
    const t0 = performance.now();
    expect(() => readPclntab(ElfFile.parse(b, "no-nul"))).toThrow(PclntabError);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  test("moduledata unreadable: Go 1.26+ has no textStart to fall back to", () => {
    const b = bytes.slice();
    const md = clean.section(".go.module")!;
    b.fill(0, md.offset, md.offset + md.size);
    expect(() => readPclntab(ElfFile.parse(b, "no-moduledata"))).toThrow(/start of Go's text|where Go's text starts/);
  });

  test("without section headers the table and moduledata are still found", () => {
    const b = bytes.slice();
    new DataView(b.buffer).setBigUint64(40, 0n, true); // e_shoff
    new DataView(b.buffer).setUint16(60, 0, true); // e_shnum
    expect(readPclntab(ElfFile.parse(b, "no-sections"))).toEqual(readPclntab(clean));
    expect(readBuildInfo(ElfFile.parse(b, "no-sections"))).toEqual(readBuildInfo(clean));
  });

  test("truncated anywhere", () => {
    for (const len of [pcln.offset + 4, pcln.offset + 60, pcln.offset + word(7) + 100, pcln.offset + pcln.size - 1, bytes.byteLength - 1]) {
      survives(bytes.subarray(0, len), `truncated at ${len}`);
    }
  });
});

test("timing: readPclntab + readBuildInfo on the largest fixture", () => {
  const paths = sampleVariants().map((v) => buildGoFixture("gobin-sample", v));
  const largest = paths.reduce((a, b) => (statSync(b).size > statSync(a).size ? b : a));
  const elf = load(largest);
  const runs: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    readPclntab(elf);
    readBuildInfo(elf);
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  console.log(`readPclntab + readBuildInfo on ${largest.split("/").at(-2)} (${(statSync(largest).size / 1e6).toFixed(1)} MB): first ${runs.at(-1)!.toFixed(1)} ms, median ${runs[3]!.toFixed(1)} ms`);
});
