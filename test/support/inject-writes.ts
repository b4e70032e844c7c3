/**
 * The writes a dry-run build of an injecting object (GOTEL_INJECT_DRY_RUN, bpf/include/inject.h) sends to its
 * inject_writes ring buffer instead of the target's memory: where each would go and its bytes.
 */
import { RingBufferReader } from "../../src/ebpf/ring-buffer.ts";
import { StructView } from "../../src/ebpf/struct-view.ts";
import type { ProbeObject } from "../../src/probes/probe-object.ts";

export interface InjectWrite { addr: bigint; bytes: Uint8Array }

/** A reader of the object's dry-run writes, appending each to `into` as it is drained. */
export function injectWritesReader(object: ProbeObject, into: InjectWrite[]): RingBufferReader {
  const layout = new StructView(object.obj.btf().structLayout("inject_write"));
  const [addr, size, bytes] = [layout.u64("addr"), layout.u32("size"), layout.offset("bytes")];
  return new RingBufferReader(object.obj.map("inject_writes"), (v) => {
    into.push({ addr: addr(v), bytes: new Uint8Array(v.buffer.slice(v.byteOffset + bytes, v.byteOffset + bytes + size(v))) });
  });
}

/** HPACK literal header field without indexing, new name (RFC 7541 6.2.2): "traceparent", then the value */
export const hpackTraceparent = (value: string): number[] => [0x00, 11, ...Buffer.from("traceparent"), value.length, ...Buffer.from(value)];
