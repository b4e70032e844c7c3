/**
 * Boots another Linux kernel (amd64 or arm64) in a qemu VM with an initramfs holding the files a
 * test gives and a shell script as /init, and returns what the VM printed on its serial console. The kernels
 * and busybox come from scripts/build-kernels.sh (Debian's cloud kernels), qemu from the machine's packages.
 * No disk, no network but loopback: the script runs, prints, and powers the VM off.
 */
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./go.ts";

export const KERNELS_DIR = join(ROOT, "build/kernels");

export interface VmFile {
  /** absolute path inside the VM */
  path: string;
  /** the host file to copy, or the content */
  from?: string;
  content?: string;
  mode?: number;
}

/** The newc ("070701") cpio format the kernel unpacks an initramfs from: a header of 13 hex fields per entry. */
function cpioNewc(entries: { name: string; mode: number; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  const pad4 = (n: number) => new Uint8Array((4 - (n % 4)) % 4);
  const add = (name: string, mode: number, data: Uint8Array, ino: number) => {
    const hex = (n: number) => n.toString(16).padStart(8, "0");
    const nameBytes = enc.encode(`${name}\0`);
    const header = `070701${[ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0].map(hex).join("")}`;
    parts.push(enc.encode(header), nameBytes, pad4(110 + nameBytes.length), data, pad4(data.length));
  };
  entries.forEach((e, i) => add(e.name, e.mode, e.data, i + 1));
  add("TRAILER!!!", 0, new Uint8Array(0), 0);
  return Buffer.concat(parts);
}

/** The directories every file needs, then the files (cpio wants parents first). */
function initramfs(files: VmFile[]): Uint8Array {
  const dirs = new Set<string>(["dev", "proc", "sys", "tmp", "bin", "sys/fs/bpf"]);
  for (const f of files) {
    const segs = f.path.replace(/^\//, "").split("/").slice(0, -1);
    for (let i = 1; i <= segs.length; i++) dirs.add(segs.slice(0, i).join("/"));
  }
  const entries = [...dirs].sort().map((d) => ({ name: d, mode: 0o40755, data: new Uint8Array(0) }));
  for (const f of files) {
    const data = f.from !== undefined ? new Uint8Array(readFileSync(f.from)) : new TextEncoder().encode(f.content ?? "");
    entries.push({ name: f.path.replace(/^\//, ""), mode: 0o100000 | (f.mode ?? 0o755), data });
  }
  return cpioNewc(entries);
}

/** A dynamically linked host program and the shared libraries it loads (ldd), at their host paths. */
export function withLibraries(path: string, at: string): VmFile[] {
  const r = Bun.spawnSync(["ldd", path], { stdout: "pipe" });
  const libs = [...r.stdout.toString().matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
  return [{ path: at, from: path }, ...libs.map((l) => ({ path: l, from: realpathSync(l) }))];
}

/** ARM64 glibc, from the cross toolchain scripts/fetch-cross.sh unpacks, for an arm64 program (no ldd for it). */
export function withArm64Libraries(path: string, at: string): VmFile[] {
  const lib = join(ROOT, "build/cross/usr/aarch64-linux-gnu/lib");
  const r = Bun.spawnSync(["readelf", "-d", path], { stdout: "pipe" });
  const needed = [...r.stdout.toString().matchAll(/Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
  return [
    { path: at, from: path },
    ...needed.map((n) => ({ path: `/lib/aarch64-linux-gnu/${n}`, from: realpathSync(join(lib, n)) })),
    { path: "/lib/ld-linux-aarch64.so.1", from: realpathSync(join(lib, "ld-linux-aarch64.so.1")) },
  ];
}

/**
 * The arm64 VM's CPU: Neoverse N1, the core of AWS Graviton2 and Ampere Altra. Under qemu's "max" model (every
 * feature qemu emulates: pointer authentication, SVE2, MTE, …) Bun itself crashed in 2 of 24 emulated starts of
 * `gotel trace` over nine targets (an abort in JavaScriptCore's JIT tier-up, a segfault at 0x102), builds from
 * before and after the same changes alike; under this one, none in 40, and starts take half the time.
 * GOTEL_VM_ARM64_CPU=max brings the other back.
 */
const ARM64_CPU = "neoverse-n1";

/** busybox as /bin/busybox, and /init: mounts what gotel needs, brings loopback up, runs `script`, powers off. */
function bootFiles(kernel: string, script: string): VmFile[] {
  const init = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
mount -t debugfs debugfs /sys/kernel/debug; mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf; mount -t cgroup2 cgroup2 /sys/fs/cgroup; ip link set lo up
echo "@@kernel $(uname -r)"
${script}
echo "@@end"
poweroff -f
`;
  return [{ path: "/bin/busybox", from: join(KERNELS_DIR, kernel, "busybox") }, { path: "/init", content: init }];
}

/** build/kernels/<name>: "-arm64" ones are booted by qemu-system-aarch64 (emulated), the others by qemu-system-x86_64 */
export const isArm64 = (kernel: string): boolean => kernel.endsWith("-arm64");

export function kernelAvailable(kernel: string): string | undefined {
  if (!existsSync(join(KERNELS_DIR, kernel, "vmlinuz"))) return `build/kernels/${kernel} is missing (scripts/build-kernels.sh fetches it)`;
  const qemu = isArm64(kernel) ? "qemu-system-aarch64" : "qemu-system-x86_64";
  if (!Bun.which(qemu)) return `${qemu} is missing (scripts/build-kernels.sh installs it)`;
  return undefined;
}

/** Boots `kernel` (a directory of build/kernels) with `files` and runs `script` as root; the console's lines. */
export async function runInVm(kernel: string, files: VmFile[], script: string, timeoutMs = 240_000): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "gotel-vm-"));
  try {
    const initrd = join(dir, "initrd.gz");
    writeFileSync(initrd, Bun.gzipSync(new Uint8Array(initramfs([...bootFiles(kernel, script), ...files])), { level: 1 }));
    // KVM nested in these VMs fails on the guest kernel's first cmpxchg16b ("emulation failure"): emulate
    const kvm = process.env.GOTEL_VM_KVM === "1" && existsSync("/dev/kvm");
    const machine = isArm64(kernel)
      ? ["qemu-system-aarch64", "-M", "virt", "-cpu", process.env.GOTEL_VM_ARM64_CPU ?? ARM64_CPU]
      : ["qemu-system-x86_64", ...(kvm ? ["-enable-kvm", "-cpu", "host,arch-capabilities=off"] : ["-cpu", "max"])];
    const proc = Bun.spawn([
      ...machine, "-m", "2048", "-smp", "2", "-nographic", "-no-reboot", "-kernel", join(KERNELS_DIR, kernel, "vmlinuz"),
      "-initrd", initrd, "-append", `console=${isArm64(kernel) ? "ttyAMA0" : "ttyS0"} rdinit=/init panic=-1 quiet loglevel=1`,
    ], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    await proc.exited;
    const lines = out.split(/\r?\n/);
    if (!lines.some((l) => l.startsWith("@@end"))) {
      throw new Error(`the VM (${kernel}) did not finish its script within ${timeoutMs / 1000} s (kvm: ${kvm}); console:\n${out.slice(-4000)}\n${err}`);
    }
    return lines;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
