/**
 * Corrupt Go executables: truncated, and with bytes flipped in the ELF headers, build info, pclntab and
 * DWARF. Every reader must answer or throw a GotelError — never another exception, never hang, never
 * allocate without bound.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { GotelError } from "../../src/errors.ts";
import { buildGoFixture } from "../support/go.ts";

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
    expect(e.oneLine).not.toContain("\n");
    return "error";
  }
}

function regions(elf: ElfFile): [string, number, number][] {
  const out: [string, number, number][] = [["ELF header", 0, 64]];
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
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) {
          const at = start + Math.floor(random() * len);
          m[at] = (m[at] ?? 0) ^ (1 << Math.floor(random() * 8));
        }
        if (survives(m, `${name} mutation ${i}`) === "error") errors++;
        runs++;
      }
    }
    expect(runs).toBeGreaterThanOrEqual(200);
    expect(errors).toBeGreaterThan(0); // the mutations do reach the readers
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(1024 ** 3);
  }, 300_000);
});
