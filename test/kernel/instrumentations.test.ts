/**
 * Every registered instrumentation (src/instrumentations/index.ts) is whole: its eBPF C in its own folder, its
 * object built for both architectures and embedded, loaded by `gotel doctor` under its name, and listed by
 * `gotel inspect --json`. Adding one to the list without the rest fails here.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Btf } from "../../src/ebpf/btf.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { INSTRUMENTATIONS } from "../../src/instrumentations/index.ts";
import { ROUTERS } from "../../src/instrumentations/http-routes/routers.ts";
import { GOTEL, runCommand } from "../support/cli.ts";
import { buildGoFixture, ROOT } from "../support/go.ts";
import { requireRoot } from "../support/kernel.ts";

const FOLDERS = join(ROOT, "src/instrumentations");

let doctor: string[];
let inspected: { name: string; status: string }[];

beforeAll(() => {
  requireRoot();
  const r = runCommand([GOTEL, "doctor"]);
  expect(r.code).toBe(0);
  doctor = r.stdout.split("\n");
  // programs that, between them, use every library the registered instrumentations cover
  const programs = [
    buildGoFixture("http-db", { cgo: true }), buildGoFixture("http-chain"), buildGoFixture("grpc-service"), buildGoFixture("otel-api"),
    buildGoFixture("http-routers", { goVersion: "1.27.4" }), buildGoFixture("kafka-go", { goVersion: "1.27.4" }),
    buildGoFixture("sarama", { goVersion: "1.27.4" }),
  ];
  inspected = programs.flatMap((exe) => {
    const i = runCommand([GOTEL, "inspect", "--json", exe]);
    expect(i.code).toBe(0);
    return (JSON.parse(i.stdout) as { instrumentations: { name: string; status: string }[] }).instrumentations;
  });
}, 300_000);

test("the list has no two instrumentations with one name or one object, but the routers, which share theirs", () => {
  expect(new Set(INSTRUMENTATIONS.map((i) => i.name)).size).toBe(INSTRUMENTATIONS.length);
  const routers = new Set(ROUTERS.map((r) => r.name));
  const others = INSTRUMENTATIONS.filter((i) => !routers.has(i.name));
  expect(new Set(others.map((i) => i.object)).size).toBe(others.length);
  expect([...new Set(INSTRUMENTATIONS.filter((i) => routers.has(i.name)).map((i) => i.object))]).toEqual(["http_routes"]);
  expect(others.map((i) => i.object)).not.toContain("http_routes");
});

describe.each(INSTRUMENTATIONS.map((i) => [i.name, i] as const))("%s", (_name, instrumentation) => {
  test("its eBPF C is in its own folder", () => {
    const sources = readdirSync(FOLDERS, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(`/${instrumentation.object}.bpf.c`));
    expect(sources).toHaveLength(1);
  });

  test("its object is built for x64 and arm64", () => {
    for (const arch of ["x64", "arm64"]) expect(existsSync(join(ROOT, "build/bpf", arch, `${instrumentation.object}.bpf.o`))).toBe(true);
  });

  test("doctor loads it, under its instrumentation's name", () => {
    const line = doctor.find((l) => l.includes(`eBPF object ${instrumentation.object} `));
    // a shared object is named after all its instrumentations
    const names = INSTRUMENTATIONS.filter((i) => i.object === instrumentation.object).map((i) => i.name).join(", ");
    expect(line).toMatch(new RegExp(`^\\s+ok\\s+eBPF object ${instrumentation.object}\\s+${names.replaceAll("/", "\\/")}: \\d+ programs loaded`));
    expect(names).toContain(instrumentation.name);
  });

  test("inspect --json lists it, ready for a program that uses its library", () => {
    expect(inspected.filter((i) => i.name === instrumentation.name).map((i) => i.status)).toContain("ready");
  });
});

// the instrumentations with reasons of their own for losing spans (Instrumentation.losses)
describe.each(INSTRUMENTATIONS.flatMap((i) => (i.losses ? [[i.name, i.object, i.losses] as const] : [])))("%s", (_name, object, losses) => {
  test("its own reasons for losing spans are counters its object has room for", () => {
    for (const arch of ["x64", "arm64"]) {
      const file = join(ROOT, "build/bpf", arch, `${object}.bpf.o`);
      const elf = ElfFile.parse(new Uint8Array(readFileSync(file)), file);
      const btf = Btf.parse(elf.sectionData(elf.section(".BTF")!));
      const perType = btf.enumValues("gotel_counter").get("GOTEL_COUNTER_OWN_PER_TYPE")!;
      const values = btf.enumValues(losses.enum);
      for (const member of Object.keys(losses.reasons)) {
        expect({ member, fits: (values.get(member) ?? perType) < perType }).toEqual({ member, fits: true });
      }
    }
  });
});

test("doctor loads the core object that owns the shared maps", () => {
  expect(doctor.find((l) => l.includes("eBPF object core "))).toMatch(/^\s+ok\s+eBPF object core\s+shared by every instrumentation: maps only, no programs$/);
});
