/**
 * Socket insertion (bpf/include/socket_insert.h says how; socket_traceparent.bpf.c beside this file is the kernel's
 * half): a traced process's plaintext HTTP/1 requests carry Traceparent (and Tracestate) on the wire, inserted
 * into the bytes its sockets send. Nothing is written into any process, so it links services across hosts where
 * lockdown refuses bpf_probe_write_user — to any receiver, traced or not.
 *
 * Loaded once, after the core object whose maps it shares. The sk_msg program is attached to its SOCKHASH first,
 * then the sock_ops program to the cgroup v2 root, through a BPF link: the kernel closes the link when gotel
 * exits (`kill -9` included), and with the last reference to the SOCKHASH gone, it takes every socket out of it
 * and their sends go the plain way again. Nothing outlives gotel.
 *
 * Only connections opened after gotel traces a process are chosen: a keep-alive connection opened before keeps
 * sending requests without the header (counted as misses), until the client opens a new one.
 */
import { readFileSync, statSync } from "node:fs";
import { readEmbeddedObject } from "../ebpf/assets.ts";
import { attachCgroup, attachSkMsg, type UprobeLinks } from "../ebpf/link.ts";
import { kernelFields } from "../ebpf/kernel-btf.ts";
import { BpfObject } from "../ebpf/object.ts";
import { GotelError } from "../errors.ts";
import { useCoreMaps } from "../ebpf/shared-maps.ts";

/** the embedded object (socket_traceparent.bpf.c) */
const NAME = "socket_traceparent";

/** Where the cgroup v2 hierarchy is mounted (its root, as gotel's cgroup namespace sees it), from mountinfo. */
export function cgroup2Root(mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): string | undefined {
  for (const line of mountinfo.split("\n")) {
    const [mount, fs] = line.split(" - ");
    if (fs?.split(" ")[0] !== "cgroup2") continue;
    const fields = mount!.split(" ");
    // the root of the mounted hierarchy ("/"), its mount point; octal escapes as the kernel writes them
    if (fields[3] === "/" && fields[4]) return fields[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return undefined;
}

/** The object's two variants: its sock_ops program asks the kernel which process connects (Linux 6.10+), or reads
 * the task's tgid (before; only where gotel runs in the host's PID namespace). */
const VARIANT = { asking: NAME, reading: `${NAME}_task` } as const;
export const SOCKET_TRACEPARENT_OBJECTS = Object.values(VARIANT);

/** PROC_PID_INIT_INO: the host's PID namespace */
const HOST_PID_NAMESPACE = 0xeffffffcn;

function inHostPidNamespace(): boolean {
  return statSync("/proc/self/ns/pid", { bigint: true }).ino === HOST_PID_NAMESPACE;
}

function load(core: BpfObject, showVerifierLog: boolean, variant: string): BpfObject {
  const tgidAt = variant === VARIANT.reading ? taskTgidOffset() : undefined;
  return BpfObject.openAndLoad(readEmbeddedObject(variant), { name: `${variant}.bpf.o`, showVerifierLog }, (o) => {
    if (tgidAt !== undefined) o.setConstants({ k_task_tgid: tgidAt });
    useCoreMaps(o, core);
  });
}

/** where the reading variant finds a task's tgid in the running kernel */
function taskTgidOffset(): number {
  const tgid = kernelFields(["task_struct.tgid"]).get("task_struct.tgid")!;
  if (tgid.size !== 4) throw new GotelError(`the kernel's task_struct.tgid is ${tgid.size} bytes, not 4`, "socket insertion does not know this kernel");
  return tgid.offset;
}

export class SocketTraceparent {
  private constructor(
    private readonly obj: BpfObject,
    private readonly skMsg: { detach(): void },
    private readonly sockOps: UprobeLinks,
    /** the cgroup the sock_ops program is attached to */
    readonly cgroup: string,
  ) {}

  /** Loads and attaches both programs; throws a GotelError saying why the kernel or the host cannot. */
  static start(core: BpfObject, opts: { showVerifierLog: boolean }): SocketTraceparent {
    let obj: BpfObject;
    try {
      obj = load(core, opts.showVerifierLog, VARIANT.asking);
    } catch (e) {
      // before Linux 6.10 a sock_ops program may not ask which process connects; it may read the task's tgid,
      // which is the pid gotel knows only in the host's PID namespace
      if (!inHostPidNamespace()) {
        throw new GotelError(`its programs could not be loaded (${e instanceof GotelError ? e.oneLine : String(e)})`,
          "needs Linux 6.10+ where gotel runs in a PID namespace of its own, and CAP_NET_ADMIN", { cause: e });
      }
      try {
        obj = load(core, opts.showVerifierLog, VARIANT.reading);
      } catch (e2) {
        throw new GotelError(`its programs could not be loaded (${e2 instanceof GotelError ? e2.oneLine : String(e2)})`, "needs CAP_NET_ADMIN", { cause: e2 });
      }
    }
    const cgroup = cgroup2Root();
    if (!cgroup) {
      obj.close();
      throw new GotelError("no cgroup v2 hierarchy is mounted", "mount one (mount -t cgroup2 none /sys/fs/cgroup)");
    }
    let skMsg: { detach(): void } | undefined;
    try {
      skMsg = attachSkMsg(obj.program("socket_traceparent_msg"), obj.map("socket_traceparent_sockets").fd);
      const sockOps = attachCgroup(obj.program("socket_traceparent_sockops"), cgroup);
      return new SocketTraceparent(obj, skMsg, sockOps, cgroup);
    } catch (e) {
      skMsg?.detach();
      obj.close();
      throw new GotelError(`its programs could not be attached (${e instanceof GotelError ? e.oneLine : String(e)})`, "needs CAP_NET_ADMIN and a cgroup v2 hierarchy", { cause: e });
    }
  }

  close(): void {
    this.sockOps.destroy();
    this.skMsg.detach();
    this.obj.close();
  }
}
