/** The cross-built arm64 executable is really arm64, embeds the arm64 libbpf and eBPF objects, and starts. */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EM_AARCH64, EM_X86_64, ElfFile } from "../../src/gobin/elf.ts";
import { runCommand } from "../support/cli.ts";
import { ROOT } from "../support/go.ts";

const read = (p: string) => readFileSync(join(ROOT, p));

describe.each([
  ["arm64", EM_AARCH64, "x64"],
  ["x64", EM_X86_64, "arm64"],
] as const)("dist/gotel-linux-%s", (arch, machine, other) => {
  const bin = read(`dist/gotel-linux-${arch}`);

  test("ELF machine and embedded assets of its own architecture only", () => {
    expect(ElfFile.parse(new Uint8Array(bin.buffer, bin.byteOffset, bin.byteLength), arch).machine).toBe(machine);
    expect(bin.indexOf(read(`build/libbpf/${arch}/libbpf.so`))).toBeGreaterThan(0);
    expect(bin.indexOf(read(`build/bpf/${arch}/selftest.bpf.o`))).toBeGreaterThan(0);
    expect(bin.indexOf(read(`build/libbpf/${other}/libbpf.so`))).toBe(-1);
    expect(bin.indexOf(read(`build/bpf/${other}/selftest.bpf.o`))).toBe(-1);
  }, 60_000);
});

test("the arm64 binary starts under qemu-user and prints its version", () => {
  const qemu = join(ROOT, "build/cross/usr/bin/qemu-aarch64-static");
  // scripts/setup.sh fetches qemu-user-static with the arm64 cross toolchain; without it this cannot run
  expect(existsSync(qemu)).toBe(true);
  const r = runCommand([qemu, "-L", join(ROOT, "build/cross/usr/aarch64-linux-gnu"), join(ROOT, "dist/gotel-linux-arm64"), "version"]);
  expect(r.stderr).toBe("");
  expect(r.stdout).toMatch(/^gotel \d+\.\d+\.\d+ \(libbpf 1\.4\.6, linux\/arm64, bun \d+\.\d+\.\d+\)\n$/);
  expect(r.code).toBe(0);
}, 120_000);
