/**
 * The raw binding to our libbpf shared object (vendor/libbpf) through bun:ffi. Nothing outside src/ebpf/
 * sees these pointers; the typed layer is object.ts, map.ts, link.ts and ring-buffer.ts.
 *
 * The .so is embedded in the executable. We copy it into a memfd and dlopen `/proc/self/fd/N` instead of
 * letting Bun extract it: Bun would leave `$TMPDIR/.bun-*.so` behind, and a noexec $TMPDIR breaks it.
 * The `gotel_*` functions are our C helpers in the same .so: they fill libbpf's opts structs in C (so their
 * layouts are never copied into TS) and return errno through an out-parameter, read right after the call.
 */
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { readFileSync, writeSync } from "node:fs";
import { libbpfPath } from "gotel:assets";
import { GotelError } from "../errors.ts";
import { errnoName } from "./errors.ts";
import { memfdCreate } from "./libc.ts";

// size_t is u64 on the LP64 targets we build for (x86_64, aarch64)
const { ptr, i32, u32, u64, i64, bool, cstring, void: none, function: fn } = FFIType;
const usize = u64;

const symbols = {
  libbpf_major_version: { args: [], returns: u32 },
  libbpf_minor_version: { args: [], returns: u32 },
  libbpf_strerror: { args: [i32, ptr, usize], returns: i32 },
  libbpf_num_possible_cpus: { args: [], returns: i32 },
  libbpf_probe_bpf_map_type: { args: [i32, ptr], returns: i32 },
  bpf_object__load: { args: [ptr], returns: i32 },
  bpf_object__close: { args: [ptr], returns: none },
  bpf_object__btf: { args: [ptr], returns: ptr },
  bpf_object__next_program: { args: [ptr, ptr], returns: ptr },
  bpf_object__next_map: { args: [ptr, ptr], returns: ptr },
  bpf_object__find_map_by_name: { args: [ptr, ptr], returns: ptr },
  btf__raw_data: { args: [ptr, ptr], returns: ptr },
  bpf_program__name: { args: [ptr], returns: cstring },
  bpf_program__section_name: { args: [ptr], returns: cstring },
  bpf_program__set_autoload: { args: [ptr, bool], returns: i32 },
  bpf_program__autoload: { args: [ptr], returns: bool },
  bpf_program__set_log_level: { args: [ptr, u32], returns: i32 },
  bpf_program__set_log_buf: { args: [ptr, ptr, usize], returns: i32 },
  bpf_program__fd: { args: [ptr], returns: i32 },
  bpf_map__name: { args: [ptr], returns: cstring },
  bpf_map__fd: { args: [ptr], returns: i32 },
  bpf_map__type: { args: [ptr], returns: i32 },
  bpf_map__key_size: { args: [ptr], returns: u32 },
  bpf_map__value_size: { args: [ptr], returns: u32 },
  bpf_map__max_entries: { args: [ptr], returns: u32 },
  bpf_map__set_max_entries: { args: [ptr, u32], returns: i32 },
  bpf_map__map_flags: { args: [ptr], returns: u32 },
  bpf_map__set_map_flags: { args: [ptr, u32], returns: i32 },
  bpf_map__reuse_fd: { args: [ptr, i32], returns: i32 },
  bpf_map__initial_value: { args: [ptr, ptr], returns: ptr },
  bpf_map__lookup_elem: { args: [ptr, ptr, usize, ptr, usize, u64], returns: i32 },
  bpf_map__update_elem: { args: [ptr, ptr, usize, ptr, usize, u64], returns: i32 },
  bpf_map__delete_elem: { args: [ptr, ptr, usize, u64], returns: i32 },
  bpf_map__get_next_key: { args: [ptr, ptr, ptr, usize], returns: i32 },
  bpf_link__destroy: { args: [ptr], returns: i32 },
  bpf_program__attach: { args: [ptr], returns: ptr },
  bpf_program__attach_cgroup: { args: [ptr, i32], returns: ptr },
  bpf_prog_attach: { args: [i32, i32, i32, u32], returns: i32 },
  bpf_prog_detach2: { args: [i32, i32, i32], returns: i32 },
  libbpf_get_error: { args: [ptr], returns: i64 },
  bpf_link__fd: { args: [ptr], returns: i32 },
  bpf_link__disconnect: { args: [ptr], returns: none },
  gotel_set_log: { args: [fn], returns: none },
  gotel_keep_debug_lines: { args: [], returns: none },
  gotel_open_mem: { args: [ptr, usize, ptr, u32, ptr], returns: ptr },
  gotel_attach_uprobe: { args: [ptr, i32, ptr, usize, u64, ptr], returns: ptr },
  gotel_attach_uprobe_multi: { args: [ptr, i32, ptr, ptr, ptr, usize, ptr], returns: ptr },
  gotel_probe_uprobe_multi: { args: [], returns: i32 },
  gotel_probe_write_user: { args: [], returns: i32 },
  gotel_load_start: { args: [ptr, ptr], returns: ptr },
  gotel_load_join: { args: [ptr, ptr, ptr], returns: i32 },
  gotel_load_free: { args: [ptr], returns: none },
  gotel_ring_new: { args: [i32, ptr, usize, ptr], returns: ptr },
  gotel_ring_drain: { args: [ptr, ptr], returns: i64 },
  gotel_ring_free: { args: [ptr], returns: none },
  gotel_uprobe_trigger: { args: [u64], returns: u64 },
  gotel_libbpf_version: { args: [], returns: cstring },
  gotel_btf_fields: { args: [ptr, usize, ptr, u32, ptr, ptr, ptr], returns: i32 },
} as const;

export type LibbpfSymbols = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

export interface Libbpf {
  sym: LibbpfSymbols;
  /** A path through which the kernel can open the loaded .so (for doctor's uprobe on gotel_uprobe_trigger). */
  path: string;
  version: string;
}

let loaded: Libbpf | undefined;

/** Loads our libbpf once per process. */
export function libbpf(): Libbpf {
  loaded ??= load();
  return loaded;
}

function load(): Libbpf {
  let bytes: Buffer;
  try {
    bytes = readFileSync(libbpfPath);
  } catch (e) {
    throw new GotelError(`cannot read the embedded libbpf at ${libbpfPath}: ${(e as Error).message}`,
      "rebuild gotel (npm run build)");
  }
  const memfd = memfdCreate("gotel-libbpf");
  if ("errno" in memfd) {
    throw new GotelError(`memfd_create failed (${errnoName(memfd.errno)}), so the embedded libbpf cannot be loaded`,
      "gotel needs Linux >= 3.17 and vm.memfd_noexec < 2");
  }
  for (let off = 0; off < bytes.length; ) off += writeSync(memfd.fd, bytes, off);
  const path = `/proc/self/fd/${memfd.fd}`;
  let lib;
  try {
    lib = dlopen(path, symbols);
  } catch (e) {
    throw new GotelError(`cannot load the embedded libbpf: ${(e as Error).message}`,
      "gotel needs glibc >= 2.28 on this machine");
  }
  return { sym: lib.symbols, path, version: String(lib.symbols.gotel_libbpf_version()) };
}

/** libbpf's text for an error code (errno values and libbpf's own 4000+ codes). */
export function strerror(err: number): string {
  const buf = Buffer.alloc(256);
  libbpf().sym.libbpf_strerror(-Math.abs(err), buf, buf.length);
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString();
}

/** bun:ffi types pointer returns as `Pointer | bigint | null`; on our 64-bit targets they fit a number. */
export function pointer(p: Pointer | bigint | null): Pointer | null {
  if (typeof p === "bigint") return p === 0n ? null : (Number(p) as Pointer);
  return p;
}

/** A NUL-terminated copy of s; keep it referenced for as long as C may read it. */
export function cstr(s: string): Buffer {
  return Buffer.from(s + "\0");
}

export type { Pointer };
