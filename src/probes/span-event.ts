/**
 * Decoding the parts every span event shares (bpf/include/trace_context.h): the header's times, the span
 * context (IDs, flags, tracestate: the event's last member, sent only up to the tracestate's length), the
 * parent; and the field readers the probes' own decoders are made of. Layouts come from the object's BTF.
 */
import { SpanStatusCode } from "@opentelemetry/api";
import type { StructView } from "../ebpf/struct-view.ts";
import type { TargetMemory } from "../gobin/runtime-types.ts";
import type { SpanRecord } from "../traces/span.ts";

export interface SpanEventContext {
  traceId: string;
  spanId: string;
  /** absent for a root span */
  parentSpanId?: string;
  parentIsRemote: boolean;
  traceState?: string;
  /** kernel CLOCK_MONOTONIC ns */
  startNs: bigint;
  endNs: bigint;
}

/** one decoder for every event string: bytes that are not UTF-8 become U+FFFD */
export const utf8 = new TextDecoder("utf-8", { fatal: false });

/** "00".."ff": IDs are converted for every span, and toString(16).padStart was a quarter of the decoding */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

export function hexBytes(v: DataView, off: number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += HEX[v.getUint8(off + i)]!;
  return s;
}

/** A char array and its length member; the record may be shorter than the struct (a cut tracestate). */
export function stringField(s: StructView, field: string, lenField: string): (v: DataView) => string {
  const off = s.offset(field);
  const cap = s.layout.fields.get(field)?.size ?? 0;
  const len = s.u32(lenField);
  return (v) => {
    const n = Math.max(0, Math.min(len(v), cap, v.byteLength - off));
    return utf8.decode(new Uint8Array(v.buffer, v.byteOffset + off, n));
  };
}

export function i64Field(s: StructView, field: string): (v: DataView) => number {
  const o = s.offset(field, 8);
  return (v) => Number(v.getBigInt64(o, true));
}

export function spanContextDecoder(s: StructView): (v: DataView) => SpanEventContext {
  const traceId = s.offset("sc.trace_id", 16);
  const spanId = s.offset("sc.span_id", 8);
  const parent = s.offset("parent_span_id", 8);
  const remote = s.layout.fields.has("parent_remote") ? s.u32("parent_remote") : () => 0;
  const traceState = stringField(s, "sc.tracestate", "sc.tracestate_len");
  const start = s.u64("hdr.start_ns");
  const end = s.u64("hdr.end_ns");
  return (v) => {
    const parentSpanId = v.getBigUint64(parent, true) === 0n ? undefined : hexBytes(v, parent, 8);
    const ts = traceState(v);
    return {
      traceId: hexBytes(v, traceId, 16),
      spanId: hexBytes(v, spanId, 8),
      ...(parentSpanId ? { parentSpanId } : {}),
      parentIsRemote: parentSpanId !== undefined && remote(v) !== 0,
      ...(ts ? { traceState: ts } : {}),
      startNs: start(v),
      endNs: end(v),
    };
  };
}

/** A SpanRecord's IDs, parent, tracestate and times from the event's context (times already wall-clock). */
export function recordContext(e: SpanEventContext): Pick<SpanRecord, "traceId" | "spanId" | "parentSpanId" | "parentIsRemote" | "traceState" | "startUnixNs" | "endUnixNs"> {
  return {
    traceId: e.traceId,
    spanId: e.spanId,
    ...(e.parentSpanId ? { parentSpanId: e.parentSpanId, parentIsRemote: e.parentIsRemote } : {}),
    ...(e.traceState ? { traceState: e.traceState } : {}),
    startUnixNs: e.startNs,
    endUnixNs: e.endNs,
  };
}

/** error.type of an event's error: the name of its Go type, "_OTHER" when that cannot be read, none without one. */
export function errorTypeName(memory: TargetMemory | undefined, address: bigint): string | undefined {
  if (address === 0n) return undefined;
  return (address <= BigInt(Number.MAX_SAFE_INTEGER) ? memory?.typeName(Number(address)) : undefined) ?? "_OTHER";
}

/** The name of an interface value's dynamic type, from its itab (abi.ITab.Type at +8); undefined when unreadable. */
export function itabTypeName(memory: TargetMemory | undefined, itab: bigint): string | undefined {
  if (!memory || itab === 0n || itab > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const t = memory.read(Number(itab) + 8, 8);
  if (!t || t.length < 8) return undefined;
  const type = new DataView(t.buffer, t.byteOffset, 8).getBigUint64(0, true);
  return type === 0n || type > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : memory.typeName(Number(type));
}

/**
 * A span whose call was still in flight when its process exited (killed, crashed, or exiting with requests
 * running): ERROR, error.type `process_exited`; it ends when gotel saw the process gone.
 */
export function unfinishedSpan(r: SpanRecord): SpanRecord {
  return {
    ...r,
    attributes: { ...r.attributes, "error.type": "process_exited" },
    status: { code: SpanStatusCode.ERROR, message: "unfinished: the process exited before the call returned" },
  };
}
