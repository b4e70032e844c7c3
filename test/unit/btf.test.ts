import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Btf, BtfError } from "../../src/ebpf/btf.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { ROOT } from "../support/go.ts";

function objectBtf(arch: "x64" | "arm64", name = "selftest"): Btf {
  const path = join(ROOT, "build/bpf", arch, `${name}.bpf.o`);
  const elf = ElfFile.parse(new Uint8Array(readFileSync(path)), path);
  const sec = elf.section(".BTF");
  if (!sec) throw new Error(`${path} has no .BTF`);
  return Btf.parse(elf.sectionData(sec));
}

describe("BTF of the built eBPF objects", () => {
  for (const arch of ["x64", "arm64"] as const) {
    test(`${arch}: selftest_event layout is read from BTF, nested header flattened`, () => {
      const layout = objectBtf(arch).structLayout("selftest_event");
      // gotel_event_header: 4 x u32 then 3 x u64 = 40 bytes; then five u64
      expect(layout.size).toBe(80);
      expect(Object.fromEntries([...layout.fields].map(([k, f]) => [k, [f.offset, f.size]]))).toEqual({
        hdr: [0, 40],
        "hdr.type": [0, 4], "hdr.tgid": [4, 4], "hdr.tid": [8, 4], "hdr.cpu": [12, 4],
        "hdr.goroutine": [16, 8], "hdr.start_ns": [24, 8], "hdr.end_ns": [32, 8],
        go_arg1: [40, 8], go_arg2: [48, 8], c_arg1: [56, 8], magic: [64, 8], process_tag: [72, 8],
      });
    });

    test(`${arch}: enum values and .rodata variables`, () => {
      const btf = objectBtf(arch);
      expect(btf.enumValues("gotel_event_type").get("GOTEL_EVENT_SELFTEST")).toBe(1n);
      // raw .o: the variable is listed; libbpf fills in offsets at open (checked by the kernel tests)
      expect(btf.datasecVariables(".rodata").map((v) => v.name).filter((n) => !n.startsWith("gotel_btf_"))).toEqual(["gotel_event_type_id", "gotel_pidns_dev", "gotel_pidns_ino", "selftest_magic"]);
    });
  }

  test("missing struct and enum are BtfErrors naming them", () => {
    const btf = objectBtf("x64");
    expect(() => btf.structLayout("no_such_struct")).toThrow(BtfError);
    expect(() => btf.structLayout("no_such_struct")).toThrow(/struct no_such_struct/);
    expect(() => btf.enumValues("nope")).toThrow(/enum nope/);
  });

  test("corrupt BTF is a BtfError, never a crash", () => {
    const path = join(ROOT, "build/bpf/x64/selftest.bpf.o");
    const elf = ElfFile.parse(new Uint8Array(readFileSync(path)), path);
    const good = elf.sectionData(elf.section(".BTF")!);
    expect(() => Btf.parse(new Uint8Array(10))).toThrow(BtfError);
    expect(() => Btf.parse(good.slice(0, good.length / 2))).toThrow(BtfError);
    // every single-byte corruption of the header and first types either parses or fails with BtfError
    for (let i = 0; i < 200; i++) {
      const bad = good.slice();
      bad[i] = (bad[i] ?? 0) ^ 0xff;
      try {
        Btf.parse(bad);
      } catch (e) {
        expect(e).toBeInstanceOf(BtfError);
      }
    }
  });
});
