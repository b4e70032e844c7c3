/**
 * Same-host linking (bpf/include/same_host.h says how; same_host.bpf.c beside this file is the kernel's half):
 * a server span continues the client span of another traced process on this host that sent its request, found
 * through the TCP connection the two share. Nothing is written into any process, so it links services where
 * lockdown refuses bpf_probe_write_user. HTTP/1 (plaintext and TLS) from net/http clients to net/http servers, and
 * gRPC (grpc-go to grpc-go) by stream.
 *
 * Loaded once, after the core object whose maps it shares: a raw tracepoint on system call entry that looks
 * only at socket reads and writes of the processes gotel traces, which `track` adds and `forget` removes. The
 * same tracepoint files the spans socket insertion (socket-traceparent.ts) puts on the wire: `uses` says which
 * of the two it serves.
 */
import { readEmbeddedObject } from "../ebpf/assets.ts";
import { attachBySection, type UprobeLinks } from "../ebpf/link.ts";
import { uintBytes } from "../ebpf/map.ts";
import { kernelFields } from "../ebpf/kernel-btf.ts";
import { BpfObject } from "../ebpf/object.ts";
import { GotelError } from "../errors.ts";
import { log } from "../log.ts";
import { processKeys, useCoreMaps } from "../ebpf/shared-maps.ts";

/** An instrumentation's part in same-host linking: sends: HTTP/1 requests filed at their goroutine's next send;
 * streams: HTTP/2 and gRPC streams filed so; writers: the connection each goroutine writes (gRPC's loopy
 * writers, one connection each); reads: a server's */
export type SameHostRole = "sends" | "streams" | "writers" | "reads";

/** the embedded object (same_host.bpf.c) */
export const SAME_HOST_OBJECT = "same_host";
const NAME = SAME_HOST_OBJECT;
/** enum gotel_link_role (bpf/include/same_host.h): which of a process's socket calls are looked at */
const LINK_SENDS = 1;
const LINK_READS = 2;
const LINK_INSERTS = 4;
const LINK_STREAMS = 8;
const LINK_WRITERS = 16;

/** what the tracepoint files a client's requests for */
export interface ConnectionUses {
  /** same-host linking: server spans of this host continue them */
  link: boolean;
  /** socket insertion: their header lines go on the wire */
  insert: boolean;
}
/** a raw tracepoint on system call entry */
const PROGRAM = "same_host_syscall";

/** The kernel members the tracepoint reads (a `.rodata` offset each in same_host.bpf.c), with the size it reads:
 * from a task's fd to its socket, and the socket's two ends. */
const KERNEL_FIELDS: Readonly<Record<string, { path: string; size: number }>> = {
  k_task_files: { path: "task_struct.files", size: 8 },
  k_files_fdt: { path: "files_struct.fdt", size: 8 },
  k_fdtable_max_fds: { path: "fdtable.max_fds", size: 4 },
  k_fdtable_fd: { path: "fdtable.fd", size: 8 },
  k_file_inode: { path: "file.f_inode", size: 8 },
  k_file_private_data: { path: "file.private_data", size: 8 },
  k_inode_mode: { path: "inode.i_mode", size: 2 },
  k_socket_sk: { path: "socket.sk", size: 8 },
  k_sock_family: { path: "sock.__sk_common.skc_family", size: 2 },
  k_sock_daddr: { path: "sock.__sk_common.skc_daddr", size: 4 },
  k_sock_rcv_saddr: { path: "sock.__sk_common.skc_rcv_saddr", size: 4 },
  k_sock_v6_daddr: { path: "sock.__sk_common.skc_v6_daddr", size: 16 },
  k_sock_v6_rcv_saddr: { path: "sock.__sk_common.skc_v6_rcv_saddr", size: 16 },
  k_sock_dport: { path: "sock.__sk_common.skc_dport", size: 2 },
  k_sock_num: { path: "sock.__sk_common.skc_num", size: 2 },
};

/** KERNEL_FIELDS' offsets in the running kernel; a GotelError when one is missing or not the size read. */
function kernelOffsets(): Record<string, number> {
  const found = kernelFields(Object.values(KERNEL_FIELDS).map((f) => f.path));
  return Object.fromEntries(Object.entries(KERNEL_FIELDS).map(([constant, { path, size }]) => {
    const field = found.get(path)!;
    if (field.size !== size) throw new GotelError(`the kernel's ${path} is ${field.size} bytes, not the ${size} gotel reads`, "same-host linking does not know this kernel");
    return [constant, field.offset];
  }));
}

export class SameHostLinking {
  /** attached while at least one process is tracked: an attached sys_enter tracepoint slows every system call on
   * the host (~25 ns each here), so an agent with no target costs nothing */
  private link: UprobeLinks | undefined;
  private readonly tracked = new Set<number>();

  private constructor(private readonly obj: BpfObject, private readonly core: BpfObject, readonly uses: ConnectionUses) {}

  /**
   * Loads the tracepoint program and attaches it once to see that the kernel allows it; throws a GotelError
   * saying why it cannot (no kernel BTF, a kernel without a member it reads, …).
   */
  static start(core: BpfObject, opts: { showVerifierLog: boolean; uses: ConnectionUses }): SameHostLinking {
    const offsets = kernelOffsets();
    let obj: BpfObject;
    try {
      obj = BpfObject.openAndLoad(readEmbeddedObject(NAME), { name: `${NAME}.bpf.o`, showVerifierLog: opts.showVerifierLog }, (o) => {
        o.setConstants(offsets);
        useCoreMaps(o, core);
      });
    } catch (e) {
      throw new GotelError(`its programs could not be loaded (${e instanceof GotelError ? e.oneLine : String(e)})`, "needs a kernel with BTF (/sys/kernel/btf/vmlinux)", { cause: e });
    }
    const linking = new SameHostLinking(obj, core, opts.uses);
    try {
      linking.attach();
      linking.detach();
    } catch (e) {
      obj.close();
      throw new GotelError(`its programs could not be attached (${e instanceof GotelError ? e.oneLine : String(e)})`, "gotel doctor says what the kernel allows", { cause: e });
    }
    return linking;
  }

  /** Starts looking at a traced process's socket writes (its HTTP/1 client) or reads (its HTTP/1 server). */
  track(tgid: number, roles: ReadonlySet<SameHostRole>): void {
    const sends = roles.has("sends") ? (this.uses.link ? LINK_SENDS : 0) | (this.uses.insert ? LINK_INSERTS : 0) : 0;
    const linked = (role: SameHostRole, bit: number): number => (this.uses.link && roles.has(role) ? bit : 0);
    const flags = sends | linked("reads", LINK_READS) | linked("streams", LINK_STREAMS) | linked("writers", LINK_WRITERS);
    if (!flags) return;
    this.core.map("gotel_link_tgids").update(uintBytes(tgid, 4), uintBytes(flags, 4));
    this.tracked.add(tgid);
    if (this.link) return;
    try {
      this.attach();
    } catch (e) {
      log.warn("same-host linking could not attach its tracepoint: services on this host are not linked", { reason: e instanceof GotelError ? e.oneLine : String(e) });
    }
  }

  /** Stops, and drops what the process left in the maps. */
  forget(tgid: number): void {
    if (!this.tracked.delete(tgid)) return;
    this.core.map("gotel_link_tgids").delete(uintBytes(tgid, 4));
    for (const name of ["gotel_link_pending", "gotel_link_pending_streams", "gotel_conn_reads", "gotel_conn_writes"]) {
      const map = this.core.map(name);
      for (const k of processKeys(map, tgid)) map.delete(k);
    }
    if (this.tracked.size === 0) this.detach();
  }

  close(): void {
    this.detach();
    this.obj.close();
  }

  private attach(): void {
    this.link = attachBySection(this.obj.program(PROGRAM));
  }

  private detach(): void {
    this.link?.destroy();
    this.link = undefined;
  }
}
