/**
 * Same-host linking (bpf/include/same_host.h says how; same_host.bpf.c beside this file is the kernel's half):
 * a server span continues the client span of another traced process on this host that sent its request, found
 * through the TCP connection the two share. Nothing is written into any process, so it links services where
 * lockdown refuses bpf_probe_write_user. HTTP/1 (plaintext and TLS) from net/http clients to net/http servers.
 *
 * Loaded once, after the core object whose maps it shares: a raw tracepoint on system call entry that looks
 * only at socket reads and writes of the processes gotel traces, which `track` adds and `forget` removes.
 */
import { readEmbeddedObject } from "../ebpf/assets.ts";
import { attachBySection, type UprobeLinks } from "../ebpf/link.ts";
import { uintBytes } from "../ebpf/map.ts";
import { BpfObject } from "../ebpf/object.ts";
import { GotelError } from "../errors.ts";
import { processKeys, SHARED_MAPS } from "../probes/probe-object.ts";

/** the embedded object (same_host.bpf.c) */
export const SAME_HOST_OBJECT = "same_host";
const NAME = SAME_HOST_OBJECT;
/** a raw tracepoint on system call entry */
const PROGRAMS = ["same_host_syscall"] as const;

export class SameHostLinking {
  private constructor(private readonly obj: BpfObject, private readonly core: BpfObject, private readonly links: UprobeLinks[]) {}

  /** Loads and attaches the tracepoint program; throws a GotelError saying why it cannot (no BTF, kernel before 5.15, …). */
  static start(core: BpfObject, opts: { showVerifierLog: boolean }): SameHostLinking {
    let obj: BpfObject;
    try {
      obj = BpfObject.openAndLoad(readEmbeddedObject(NAME), { name: `${NAME}.bpf.o`, showVerifierLog: opts.showVerifierLog }, (o) => {
        const has = new Set(o.mapNames());
        o.shareMaps(core, SHARED_MAPS.filter((m) => has.has(m)));
      });
    } catch (e) {
      throw new GotelError(`its programs could not be loaded (${e instanceof GotelError ? e.oneLine : String(e)})`, "needs a kernel with BTF (/sys/kernel/btf/vmlinux)", { cause: e });
    }
    const links: UprobeLinks[] = [];
    try {
      for (const program of PROGRAMS) links.push(attachBySection(obj.program(program)));
    } catch (e) {
      for (const l of links) l.destroy();
      obj.close();
      throw new GotelError(`its programs could not be attached (${e instanceof GotelError ? e.oneLine : String(e)})`, "gotel doctor says what the kernel allows", { cause: e });
    }
    return new SameHostLinking(obj, core, links);
  }

  /** Starts looking at a traced process's sends and reads. */
  track(tgid: number): void {
    this.core.map("gotel_link_tgids").update(uintBytes(tgid, 4), uintBytes(1, 4));
  }

  /** Stops, and drops what the process left in the maps. */
  forget(tgid: number): void {
    this.core.map("gotel_link_tgids").delete(uintBytes(tgid, 4));
    for (const name of ["gotel_link_pending", "gotel_conn_reads"]) {
      const map = this.core.map(name);
      for (const k of processKeys(map, tgid)) map.delete(k);
    }
  }

  close(): void {
    for (const l of this.links.splice(0)) l.destroy();
    this.obj.close();
  }
}
