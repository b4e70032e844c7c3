import { dlopen, FFIType, read } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  memfd_create: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
  clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
});

const CLOCK_REALTIME = 0;
/** what bpf_ktime_get_ns() reads */
const CLOCK_MONOTONIC = 1;
const timespec = new BigInt64Array(2);

function clockNs(clock: number): bigint {
  libc.symbols.clock_gettime(clock, timespec);
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
}

/** CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), so event timestamps can be compared with it. */
export function monotonicNs(): bigint {
  return clockNs(CLOCK_MONOTONIC);
}

/** CLOCK_REALTIME in ns (wall-clock time since the epoch). */
export function realtimeNs(): bigint {
  return clockNs(CLOCK_REALTIME);
}

const MFD_CLOEXEC = 0x1;
/** Kernel >= 6.3 with vm.memfd_noexec: ask for an executable memfd explicitly. Older kernels reject the flag. */
const MFD_EXEC = 0x10;
const EINVAL = 22;

function errno(): number {
  const p = libc.symbols.__errno_location();
  return p ? read.i32(p, 0) : 0;
}

/** An anonymous in-memory file; returns its fd or the (positive) errno. */
export function memfdCreate(name: string): { fd: number } | { errno: number } {
  const cname = Buffer.from(name + "\0");
  let fd = libc.symbols.memfd_create(cname, MFD_CLOEXEC | MFD_EXEC);
  if (fd < 0 && errno() === EINVAL) fd = libc.symbols.memfd_create(cname, MFD_CLOEXEC);
  return fd < 0 ? { errno: errno() } : { fd };
}

/** madvise's MADV_PAGEOUT (Linux 5.4): reclaim the range's pages now */
const MADV_PAGEOUT = 21;

/**
 * Asks the kernel to reclaim the pages of [start, start + length) of this process now; 0, or the errno. Clean
 * pages of a file are dropped (read again if used); the kernel skips pages other processes map too.
 */
export function pageOut(start: number, length: number): number {
  return libc.symbols.madvise(BigInt(start), BigInt(length), MADV_PAGEOUT) < 0 ? errno() : 0;
}
