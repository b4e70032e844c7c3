/**
 * Attaching programs to uprobes at file offsets. Two kernel paths:
 * - `multi`: one uprobe.multi link for all offsets (kernel >= 6.6). Attach and detach are one syscall each.
 * - `classic`: one perf-event link per offset. Detach costs ~100 ms per link on our VMs, so a probe with many
 *   RET sites makes shutdown slow; it is the fallback for older kernels.
 * The program must have been loaded from the matching section (`uprobe.multi` vs `uprobe`).
 */
import type { Pointer } from "bun:ffi";
import { close, openSync } from "node:fs";
import { GotelError } from "../errors.ts";
import { log } from "../log.ts";
import { BpfError, ENOENT, ESRCH } from "./errors.ts";
import { cstr, libbpf, pointer, strerror } from "./libbpf.ts";
import type { BpfProgram } from "./object.ts";

export type AttachMode = "multi" | "classic";

export interface UprobeSites {
  /** the executable or shared object the offsets belong to */
  path: string;
  /** file offsets of the probed instructions */
  offsets: readonly bigint[];
  /** only fire in this process; -1 (default) for every process mapping the file, now and later */
  pid?: number;
  /** bpf_get_attach_cookie() value per offset (kernel >= 5.15) */
  cookies?: readonly bigint[];
}

export class UprobeLinks {
  private links: Pointer[];

  constructor(links: Pointer[], readonly mode: AttachMode, readonly sites: number) {
    this.links = links;
  }

  get attached(): boolean {
    return this.links.length > 0;
  }

  /** Detaches every uprobe. Safe to call twice. */
  destroy(): void {
    while (this.destroyOne());
  }

  /**
   * Detaches every uprobe without blocking the event loop where that is possible. Closing a uprobe.multi link's
   * fd is what costs (~40 ms here: the kernel waits for a grace period), so the link is disconnected from libbpf
   * and its fd closed on the runtime's thread pool; the closes run side by side. A classic link is a perf event
   * and a BPF link that only libbpf knows how to take apart: those are destroyed here, one by one.
   */
  release(): Promise<void> {
    if (this.mode !== "multi") {
      this.destroy();
      return Promise.resolve();
    }
    const { sym } = libbpf();
    const closes = this.links.splice(0).map((l) => {
      const fd = sym.bpf_link__fd(l);
      sym.bpf_link__disconnect(l);
      sym.bpf_link__destroy(l); // disconnected: frees libbpf's struct, leaves the fd open
      return new Promise<void>((resolve) => {
        if (fd < 0) return resolve();
        close(fd, (e) => {
          if (e) log.warn("detaching a uprobe failed", { error: e.message });
          resolve();
        });
      });
    });
    return Promise.all(closes).then(() => undefined);
  }

  /** Detaches one link (one kernel call, ~40 ms for a uprobe.multi link here); says whether any are left. */
  destroyOne(): boolean {
    const l = this.links.pop();
    if (l === undefined) return false;
    const err = libbpf().sym.bpf_link__destroy(l);
    if (err < 0) log.warn("detaching a uprobe failed", { error: strerror(err) });
    return this.links.length > 0;
  }
}

function siteName(sites: UprobeSites, offset?: bigint): string {
  const where = offset === undefined ? `${sites.offsets.length} offsets` : `offset 0x${offset.toString(16)}`;
  return `${sites.path} (${where}${sites.pid !== undefined && sites.pid >= 0 ? `, pid ${sites.pid}` : ""})`;
}

function attachError(call: string, err: number, prog: BpfProgram, sites: UprobeSites, offset?: bigint): BpfError {
  const hint =
    -err === ESRCH ? `process ${sites.pid} does not exist (or has exited); check the pid` :
    -err === ENOENT ? `check that ${sites.path} exists and is readable` : undefined;
  return new BpfError(call, err, `program '${prog.name}' at ${siteName(sites, offset)}`, strerror(err), hint);
}

export function attachUprobes(prog: BpfProgram, sites: UprobeSites, mode: AttachMode): UprobeLinks {
  return mode === "multi" ? attachMulti(prog, sites) : attachClassic(prog, sites);
}

function attachClassic(prog: BpfProgram, sites: UprobeSites): UprobeLinks {
  const { sym } = libbpf();
  const path = cstr(sites.path);
  const err = new Int32Array(1);
  const made: Pointer[] = [];
  sites.offsets.forEach((offset, i) => {
    const link = pointer(sym.gotel_attach_uprobe(prog.handle, sites.pid ?? -1, path, offset, sites.cookies?.[i] ?? 0n, err));
    if (!link) {
      new UprobeLinks(made, "classic", made.length).destroy();
      throw attachError("bpf_program__attach_uprobe_opts", err[0] ?? 0, prog, sites, offset);
    }
    made.push(link);
  });
  return new UprobeLinks(made, "classic", sites.offsets.length);
}

function attachMulti(prog: BpfProgram, sites: UprobeSites): UprobeLinks {
  const { sym } = libbpf();
  const offsets = BigUint64Array.from(sites.offsets);
  const cookies = sites.cookies ? BigUint64Array.from(sites.cookies) : null;
  const err = new Int32Array(1);
  const link = pointer(sym.gotel_attach_uprobe_multi(prog.handle, sites.pid ?? -1, cstr(sites.path), offsets, cookies, offsets.length, err));
  if (!link) throw attachError("bpf_program__attach_uprobe_multi", err[0] ?? 0, prog, sites);
  return new UprobeLinks([link], "multi", offsets.length);
}

/** Attaches a kernel program where its section says (e.g. raw_tp/sys_enter); destroying the link detaches it. */
export function attachBySection(prog: BpfProgram): UprobeLinks {
  const { sym } = libbpf();
  const link = pointer(sym.bpf_program__attach(prog.handle));
  if (!link) {
    const err = Number(sym.libbpf_get_error(null)) || -1;
    throw new BpfError("bpf_program__attach", err, `program '${prog.name}' (${prog.section})`, strerror(err));
  }
  return new UprobeLinks([link], "classic", 1);
}

/**
 * Attaches a cgroup program (sock_ops) to the cgroup v2 directory at path, through a BPF link: closing the link's
 * fd detaches it, and the kernel closes it when gotel exits, `kill -9` included.
 */
export function attachCgroup(prog: BpfProgram, path: string): UprobeLinks {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new GotelError(`cannot open cgroup ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, "gotel needs a cgroup v2 hierarchy it can open (root)");
  }
  try {
    const { sym } = libbpf();
    const link = pointer(sym.bpf_program__attach_cgroup(prog.handle, fd));
    if (!link) {
      const err = Number(sym.libbpf_get_error(null)) || -1;
      throw new BpfError("bpf_program__attach_cgroup", err, `program '${prog.name}' on ${path}`, strerror(err));
    }
    return new UprobeLinks([link], "classic", 1);
  } finally {
    close(fd);
  }
}

/** BPF_SK_MSG_VERDICT (enum bpf_attach_type, include/uapi/linux/bpf.h) */
const BPF_SK_MSG_VERDICT = 7;

/**
 * Attaches an sk_msg program to a SOCKHASH: it then runs on every send of the sockets put into the map. Held by
 * the map, which the kernel frees (and with it every socket's hook) when its last fd and program are gone.
 */
export function attachSkMsg(prog: BpfProgram, mapFd: number): { detach(): void } {
  const { sym } = libbpf();
  const err = sym.bpf_prog_attach(prog.fd, mapFd, BPF_SK_MSG_VERDICT, 0);
  if (err < 0) throw new BpfError("bpf_prog_attach", err, `program '${prog.name}' on its SOCKHASH`, strerror(err));
  return { detach: () => void sym.bpf_prog_detach2(prog.fd, mapFd, BPF_SK_MSG_VERDICT) };
}

let multiSupport: boolean | undefined;

/**
 * Whether this kernel accepts uprobe.multi links (probed the way libbpf does: load a trivial program with
 * that attach type and see the link creation fail for the right reason).
 */
export function uprobeMultiSupported(): boolean {
  if (multiSupport === undefined) {
    const r = libbpf().sym.gotel_probe_uprobe_multi();
    multiSupport = r === 1;
    if (r < 0) log.debug("uprobe.multi probe failed", { error: strerror(r) });
  }
  return multiSupport;
}

/** uprobe.multi where the kernel has it, unless asked for one mode (`GOTEL_UPROBE_ATTACH`). */
export function preferredAttachMode(asked: AttachMode | "auto" = "auto"): AttachMode {
  if (asked === "multi" && !uprobeMultiSupported()) {
    throw new GotelError("GOTEL_UPROBE_ATTACH=multi: this kernel has no uprobe.multi links (Linux 6.6+)", "use auto or classic; `gotel doctor` shows what the kernel has");
  }
  if (asked !== "auto") return asked;
  return uprobeMultiSupported() ? "multi" : "classic";
}
