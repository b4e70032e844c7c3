/**
 * The core object (bpf/core.bpf.c): the maps every instrumentation shares — the ring buffer, the counters, the
 * span contexts under Go context pointers — loaded before any instrumentation, which all reuse them. It has no
 * programs; user space reads the ring buffer and the counters from it, and their layouts from its BTF.
 */
import { readEmbeddedObject } from "../ebpf/assets.ts";
import { BpfObject } from "../ebpf/object.ts";
import { processKeys } from "../ebpf/shared-maps.ts";

const NAME = "core";

export class CoreObject {
  private constructor(readonly obj: BpfObject) {}

  static load(opts: { showVerifierLog: boolean; bytes?: Uint8Array }): CoreObject {
    return new CoreObject(BpfObject.openAndLoad(opts.bytes ?? readEmbeddedObject(NAME), { name: `${NAME}.bpf.o`, showVerifierLog: opts.showVerifierLog }, () => {}));
  }

  /** Drops the span contexts a gone process left (keyed by tgid and context pointer). */
  forget(tgid: number): void {
    const map = this.obj.map("gotel_spans_by_ctx");
    for (const k of processKeys(map, tgid)) map.delete(k);
  }

  close(): void {
    this.obj.close();
  }
}
