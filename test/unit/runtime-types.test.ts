/**
 * Go type names read from an executable's type data (src/gobin/runtime-types.ts), checked against the linker's
 * own names (as %T prints them): every itab symbol `go:itab.T,I` (Go 1.20-1.25; `go.itab.T,I` before) holds at +8 the address of
 * type T. Go 1.26+ emit no itab symbols; there error.type is checked end to end (test/e2e/distributed.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { moduledataTypeRange, moduledataTypes } from "../../src/gobin/pclntab.ts";
import { GoTypeNames, loadBias, ProcessMemory, typesBase } from "../../src/gobin/runtime-types.ts";
import { buildGoFixture } from "../support/go.ts";
import { startServer } from "../support/processes.ts";
import { GO_VERSIONS } from "../support/matrix.ts";

/** What Go's %T prints for a type the linker names by import path: the package's name, not its path. */
function asPercentT(linkName: string): string {
  // type arguments keep their import paths
  const bracket = linkName.indexOf("[");
  if (bracket >= 0) return asPercentT(linkName.slice(0, bracket)) + linkName.slice(bracket);
  return linkName.replace(/((?:[\w.~-]+\/)+)([\w.~-]+)\./g, (_, dirs: string, last: string) => {
    const parts = `${dirs}${last}`.split("/");
    let name = parts.at(-1)!;
    if (/^v\d+$/.test(name) && parts.length > 1) name = parts.at(-2)!; // github.com/go-chi/chi/v5 is package chi
    return `${name.replace(/\.v\d+$/, "").replace(/^go-/, "")}.`;
  });
}

describe.each(GO_VERSIONS.filter((v) => !/^1\.(2[6-9]|[3-9]\d)\./.test(v)))("Go %s", (goVersion) => {
  test("the name of every itab's type equals the type in the itab's symbol name", () => {
    const path = buildGoFixture("gobin-sample", { goVersion });
    const elf = ElfFile.parse(new Uint8Array(readFileSync(path)), path);
    const names = new GoTypeNames(typesBase(elf, goVersion)!, (a, n) => elf.bytesAt(a, n));
    const itabs = elf.symbols().filter((s) => /^go[.:]itab\./.test(s.name));
    expect(itabs.length).toBeGreaterThan(50);
    for (const s of itabs) {
      const concrete = s.name.replace(/^go[.:]itab\./, "").split(",")[0];
      const p = elf.bytesAt(s.value + 8, 8)!;
      const typeAddr = Number(new DataView(p.buffer, p.byteOffset, 8).getBigUint64(0, true));
      expect(names.name(typeAddr)).toBe(asPercentT(concrete!));
    }
  });
});

/** runtime.types of the unstripped twin: the symbol */
function typesSymbol(path: string): number | undefined {
  return ElfFile.parse(new Uint8Array(readFileSync(path)), path).symbols().find((s) => s.name === "runtime.types")?.value;
}

describe("runtime.types of a stripped binary comes from runtime.firstmoduledata", () => {
  // Go's own linker starts its type data section with runtime.types
  test.each(["1.19.13", GO_VERSIONS[0], GO_VERSIONS.at(-1)!])("Go %s", (goVersion) => {
    const stripped = buildGoFixture("gobin-sample", { goVersion, stripped: true });
    const elf = ElfFile.parse(new Uint8Array(readFileSync(stripped)), stripped);
    const section = (elf.section(".go.type") ?? elf.section(".rodata"))!.addr;
    expect(moduledataTypes(elf, Number(goVersion.split(".")[1]))).toBe(section);
    expect(typesBase(elf, goVersion)).toBe(section);
    // and where it ends, as the unstripped build's own symbols say (Go 1.27 has no runtime.etypes symbol)
    const unstripped = buildGoFixture("gobin-sample", { goVersion });
    const u = ElfFile.parse(new Uint8Array(readFileSync(unstripped)), unstripped);
    const symbol = (name: string) => u.symbols().find((s) => s.name === name)?.value;
    const range = moduledataTypeRange(u, Number(goVersion.split(".")[1]))!;
    expect(range.start).toBe(symbol("runtime.types")!);
    if (symbol("runtime.etypes") !== undefined) expect(range.end).toBe(symbol("runtime.etypes")!);
    expect(range.end).toBeGreaterThan(range.start + 100_000);
  });

  test("externally linked (cgo with a C library): Go's type data does not start .rodata", () => {
    const exe = buildGoFixture("http-db", { cgo: true });
    const want = typesSymbol(exe)!;
    const elf = ElfFile.parse(new Uint8Array(readFileSync(exe)), exe);
    expect(want).not.toBe(elf.section(".rodata")!.addr); // the case this is about
    const stripped = buildGoFixture("http-db", { cgo: true, stripped: true });
    expect(typesBase(ElfFile.parse(new Uint8Array(readFileSync(stripped)), stripped), GoExecutable.open(stripped).goVersion)).toBe(want);
  }, 300_000);

  test("a PIE linked externally: Go's type data is in .data.rel.ro (read-only once relocated, PT_GNU_RELRO)", () => {
    const exe = buildGoFixture("http-db", { cgo: true, pie: true });
    const elf = ElfFile.parse(new Uint8Array(readFileSync(exe)), exe);
    const want = typesSymbol(exe)!;
    expect(elf.section(".data.rel.ro")!.addr).toBeLessThanOrEqual(want); // the case this is about
    expect(typesBase(elf, GoExecutable.open(exe).goVersion)).toBe(want);
  }, 300_000);
});

test("the load bias comes from the executable's first mapping", () => {
  const maps = [
    "55d0c0a00000-55d0c0b2e000 r--p 00000000 fe:01 1234  /srv/app (deleted)",
    "55d0c0b2e000-55d0c0f00000 r-xp 0012e000 fe:01 1234  /srv/app (deleted)",
    "7ffd1000000-7ffd1021000 rw-p 00000000 00:00 0  [stack]",
  ].join("\n");
  expect(loadBias(maps, "/srv/app", 0)).toBe(0x55d0c0a00000);
  expect(loadBias("400000-52e000 r-xp 00000000 fe:01 9 /srv/app\n", "/srv/app", 0x400000)).toBe(0);
  expect(loadBias(maps, "/srv/other", 0)).toBeUndefined();
});

test("a live process's memory: read through one open /proc/PID/mem, nothing once the process is gone or closed", async () => {
  const exe = buildGoFixture("http-server", { goVersion: "1.27.4" });
  const { proc } = await startServer(exe);
  const memory = new ProcessMemory(proc.pid);
  try {
    // the executable's first mapping starts with its ELF header
    const maps = readFileSync(`/proc/${proc.pid}/maps`, "utf8").split("\n");
    const first = maps.find((l) => l.endsWith(exe) && / 00000000 /.test(l))!;
    const start = Number.parseInt(first.split("-")[0]!, 16);
    expect([...memory.read(start, 4)!]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
    expect(memory.read(8, 4)).toBeUndefined(); // unmapped
    await proc.stop("SIGKILL");
    expect(memory.read(start, 4)).toBeUndefined();
  } finally {
    memory.close();
    await proc.stop("SIGKILL");
  }
  expect(memory.read(0, 4)).toBeUndefined();
});
