/**
 * Where members of the running kernel's structs are, from the kernel's own BTF (/sys/kernel/btf/vmlinux), for
 * eBPF programs that read kernel memory at offsets given as `.rodata` constants instead of by CO-RE.
 *
 * Why not CO-RE: for an object with CO-RE relocations libbpf parses the whole kernel BTF (~5 MB, ~125,000
 * types on 6.18, every one checked and indexed: ~16 ms here) and then searches all of it once per struct the
 * object names (~13 ms for same-host linking's seven), on the thread a start waits for. Finding the members
 * gotel reads takes one pass that decodes nothing it is not asked about (vendor/libbpf/gotel_kernel_btf.c: ~2
 * ms where Linux 6.16+ lets the file be mapped, ~7 ms where it is read; in C, so the 5 MB never reach the JS
 * heap, and a first version in TypeScript took 15–37 ms, cold in the JIT).
 *
 * As CO-RE does: anonymous structs and unions are looked through (`sock.__sk_common.skc_dport` sits in an
 * anonymous struct inside an anonymous union), typedefs and qualifiers followed, the first complete struct of a
 * name taken. Refused: bitfields (no byte offset), and a struct or member the kernel does not have; the error
 * names it, and the caller goes on without what needed it.
 */
import { GotelError } from "../errors.ts";
import { libbpf, strerror } from "./libbpf.ts";

export const VMLINUX_BTF = "/sys/kernel/btf/vmlinux";

export class KernelBtfError extends GotelError {
  constructor(message: string) {
    super(message, `gotel reads the kernel's struct layouts from ${VMLINUX_BTF} (CONFIG_DEBUG_INFO_BTF)`);
    this.name = "KernelBtfError";
  }
}

export interface KernelField {
  /** bytes from the start of the path's struct */
  offset: number;
  size: number;
}

/** gotel_btf_fields' answers other than 0 and -errno (enum in gotel_kernel_btf.c) */
const CORRUPT = 1, UNKNOWN_KIND = 2, NO_STRUCT = 3, NO_MEMBER = 4, BITFIELD = 5, NO_SIZE = 6;

/**
 * The offset and size of each member path, `struct.member[.member…]`, in `btf` (the running kernel's when not
 * given). Throws a KernelBtfError naming the first path it cannot follow.
 */
export function kernelFields(paths: readonly string[], btf?: Uint8Array): Map<string, KernelField> {
  for (const p of paths) if (!/^\w+(\.\w+)+$/.test(p)) throw new KernelBtfError(`'${p}' is not a member path (struct.member[.member…])`);
  const out = new Int32Array(2 * paths.length);
  const failed = new Int32Array(1), failedMember = new Int32Array(1);
  const names = Buffer.from(paths.map((p) => `${p}\0`).join(""));
  const err = libbpf().sym.gotel_btf_fields(btf ?? null, btf?.byteLength ?? 0, names, paths.length, out, failed, failedMember);
  if (err !== 0) throw kernelBtfError(err, paths[failed[0]!], failedMember[0]!);
  return new Map(paths.map((p, i) => [p, { offset: out[2 * i]!, size: out[2 * i + 1]! }]));
}

function kernelBtfError(err: number, path: string | undefined, member: number): KernelBtfError {
  const [struct, ...members] = path?.split(".") ?? [];
  switch (err) {
    case CORRUPT: return new KernelBtfError("the kernel's BTF is cut short or corrupt");
    case UNKNOWN_KIND: return new KernelBtfError("the kernel's BTF has a type kind newer than gotel knows");
    case NO_STRUCT: return new KernelBtfError(`the kernel has no struct ${struct} (${path})`);
    case NO_MEMBER: return new KernelBtfError(`the kernel's ${[`struct ${struct}`, ...members.slice(0, member)].join(".")} has no member ${members[member]} (${path})`);
    case BITFIELD: return new KernelBtfError(`the kernel's member ${path} is a bitfield`);
    case NO_SIZE: return new KernelBtfError(`the kernel's member ${path} has a type with no size`);
    default: return new KernelBtfError(`the kernel's BTF could not be read (${strerror(-err)})`);
  }
}
