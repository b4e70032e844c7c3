import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Btf } from "../../src/ebpf/btf.ts";
import { KernelBtfError, VMLINUX_BTF, kernelFields } from "../../src/ebpf/kernel-btf.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { ROOT } from "../support/go.ts";

// the members same-host linking reads (src/propagation/same-host.ts), and a few more of other shapes
const PATHS = [
  "task_struct.files", "task_struct.tgid", "files_struct.fdt", "fdtable.max_fds", "fdtable.fd", "file.f_inode",
  "file.private_data", "inode.i_mode", "socket.sk", "sock.__sk_common.skc_family", "sock.__sk_common.skc_daddr",
  "sock.__sk_common.skc_rcv_saddr", "sock.__sk_common.skc_v6_daddr", "sock.__sk_common.skc_v6_rcv_saddr",
  "sock.__sk_common.skc_dport", "sock.__sk_common.skc_num", "sock.sk_rcvbuf",
];

const haveBtf = existsSync(VMLINUX_BTF);
if (!haveBtf) console.warn(`kernel-btf tests skipped: ${VMLINUX_BTF} is missing (gotel doctor: kernel BTF)`);

describe.skipIf(!haveBtf)("members of the running kernel's structs", () => {
  const vmlinux = haveBtf ? new Uint8Array(readFileSync(VMLINUX_BTF)) : new Uint8Array();
  // the object reader parses every type in full: slow on a kernel's BTF, and written independently of the scan
  const full = haveBtf ? Btf.parse(vmlinux) : undefined;

  test("offsets and sizes agree with a full parse of the kernel's BTF, anonymous unions looked through", () => {
    const found = kernelFields(PATHS);
    for (const path of PATHS) {
      const [struct, ...members] = path.split(".");
      const expected = full!.structLayout(struct!).fields.get(members.join("."));
      expect({ path, ...found.get(path) }).toEqual({ path, offset: expected!.offset, size: expected!.size });
    }
    // a port and its peer sit in an anonymous struct of an anonymous union: 2 bytes apart
    expect(found.get("sock.__sk_common.skc_num")!.offset - found.get("sock.__sk_common.skc_dport")!.offset).toBe(2);
  });

  test("a missing struct or member, and a bitfield, are KernelBtfErrors naming them", () => {
    expect(() => kernelFields(["no_such_struct.x"], vmlinux)).toThrow(/no struct no_such_struct/);
    expect(() => kernelFields(["sock.__sk_common.no_such_member"], vmlinux)).toThrow(/struct sock\.__sk_common has no member no_such_member/);
    expect(() => kernelFields(["sock"], vmlinux)).toThrow(KernelBtfError);
  });

  test("corrupt BTF is a KernelBtfError, never a crash", { timeout: 60_000 }, () => {
    expect(() => kernelFields(PATHS, new Uint8Array(10))).toThrow(KernelBtfError);
    expect(() => kernelFields(PATHS, vmlinux.slice(0, vmlinux.length / 2))).toThrow(KernelBtfError);
    // the header and first types byte by byte, then places spread over the whole
    const places = [...Array(96).keys(), ...Array.from({ length: 400 }, (_, i) => Math.floor((i * vmlinux.length) / 400))];
    const bad = vmlinux.slice();
    for (const at of places) {
      bad.set(vmlinux);
      bad[at] = (bad[at] ?? 0) ^ 0xff;
      try {
        kernelFields(PATHS, bad);
      } catch (e) {
        expect(e).toBeInstanceOf(KernelBtfError);
      }
    }
  });
});

describe("members of a struct in made-up BTF", () => {
  // struct outer { int a; union { struct { u16 x, y; }; }; int bits : 3; struct { u16 x, y; } named; }
  const btf = syntheticBtf();

  test("anonymous members are looked through, typedefs followed, named nested structs followed by name", () => {
    const found = kernelFields(["outer.a", "outer.y", "outer.named.x", "outer.named.y"], btf);
    expect(Object.fromEntries(found)).toEqual({
      "outer.a": { offset: 0, size: 4 },
      "outer.y": { offset: 6, size: 2 },
      "outer.named.x": { offset: 12, size: 2 },
      "outer.named.y": { offset: 14, size: 2 },
    });
  });

  test("a bitfield has no byte offset: refused, named", () => {
    expect(() => kernelFields(["outer.bits"], btf)).toThrow(/member outer\.bits is a bitfield/);
    expect(() => kernelFields(["outer.named.z"], btf)).toThrow(/struct outer\.named has no member z/);
  });
});

/** BTF as the kernel writes it: header, types, strings (little-endian) */
function syntheticBtf(): Uint8Array {
  const strings = ["", "int", "outer", "a", "bits", "named", "x", "y", "u16", "short"];
  const name = (s: string): number => strings.slice(0, strings.indexOf(s)).reduce((n, t) => n + t.length + 1, 0);
  const info = (kind: number, vlen: number, kindFlag = 0): number => ((kindFlag << 31) | (kind << 24) | vlen) >>> 0;
  const words = [
    name("int"), info(1, 0), 4, 32, // 1: int
    name("outer"), info(4, 4, 1), 16, // 2: struct outer, bitfield offsets
    name("a"), 1, 0, 0, 3, 32, name("bits"), 1, (3 << 24) | 64, name("named"), 4, 96,
    0, info(5, 1), 4, 0, 4, 0, // 3: anonymous union { struct 4 }
    0, info(4, 2), 4, name("x"), 5, 0, name("y"), 5, 16, // 4: anonymous struct { u16 x, y }
    name("u16"), info(8, 0), 6, // 5: typedef u16 -> 6
    name("short"), info(1, 0), 2, 16, // 6: int, 2 bytes
  ];
  const str = new TextEncoder().encode(strings.join("\0") + "\0");
  const out = new Uint8Array(24 + words.length * 4 + str.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, 0xeb9f, true);
  dv.setUint8(2, 1);
  dv.setUint32(4, 24, true);
  dv.setUint32(8, 0, true);
  dv.setUint32(12, words.length * 4, true);
  dv.setUint32(16, words.length * 4, true);
  dv.setUint32(20, str.length, true);
  words.forEach((w, i) => dv.setUint32(24 + i * 4, w, true));
  out.set(str, 24 + words.length * 4);
  return out;
}

describe("the built eBPF objects", () => {
  // an object with CO-RE relocations makes libbpf parse and search the whole kernel BTF at load (~30 ms of a start):
  // kernel members are read at offsets from kernelFields instead
  for (const arch of ["x64", "arm64"] as const) {
    test(`${arch}: none has CO-RE relocations`, () => {
      const dir = join(ROOT, "build/bpf", arch);
      const withCore = readdirSync(dir).filter((f) => f.endsWith(".bpf.o")).filter((f) => coreRelocationBytes(join(dir, f)) > 0);
      expect(withCore).toEqual([]);
    });
  }
});

/** the length of the CO-RE relocation part of an object's .BTF.ext (0 without one) */
function coreRelocationBytes(path: string): number {
  const elf = ElfFile.parse(new Uint8Array(readFileSync(path)), path);
  const sec = elf.section(".BTF.ext");
  if (!sec) return 0;
  const ext = elf.sectionData(sec);
  const dv = new DataView(ext.buffer, ext.byteOffset, ext.byteLength);
  // struct btf_ext_header: magic, version, flags, hdr_len, then (offset, length) of func info, line info, CO-RE relocations
  return dv.getUint32(4, true) >= 32 ? dv.getUint32(28, true) : 0;
}
