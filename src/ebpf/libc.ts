import { dlopen, FFIType, read } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  memfd_create: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
});

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
