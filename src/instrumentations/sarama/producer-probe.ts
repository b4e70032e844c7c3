/** The loaded Sarama producer object (sarama_producer.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { uintBytes } from "../../ebpf/map.ts";
import { offsetsOrigin } from "../../probes/plan.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { bytesField, errorTypeName, i64Field, spanContextDecoder, stringField, unfinishedSpan } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import { KAFKA_LOSSES } from "../kafka.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { BATCH_MAX, plan, toSpanRecord, type ProducerEvent } from "./producer-plan.ts";

export interface ProducerLoadOptions extends LoadOptions {
  /** a live target's memory, to name error types */
  memory?: (tgid: number) => TargetMemory | undefined;
  /** how long an AsyncProducer's message may wait for its acknowledgement before its span is dropped as ended
   * unseen (GOTEL_KAFKA_ACK_TIMEOUT) */
  ackTimeoutMs: number;
}

/** the SyncProducer parts of an in-flight call that become one message's event (sarama_producer_inflight) */
interface CallLayout {
  messages: number;
  messageSize: number;
  spans: number;
  spanSize: number;
  /** in the event: */
  message: number;
  count: number;
  traceId: number;
  spanId: number;
  parentSpanId: number;
  flags: number;
  tracestateLen: number;
  parentRemote: number;
  /** in a sarama_producer_span: */
  span: { traceId: number; spanId: number; parentSpanId: number; flags: number; remote: number; tracestateLen: number };
}

export class SaramaProducerProbe extends ObjectSpanProbe {
  readonly name = "Sarama producer";
  private readonly decode: (v: DataView) => ProducerEvent & { errorTypeAddress: bigint };
  private readonly call: CallLayout;
  /** where an AsyncProducer message's start and trace flags are, in sarama_producer_async's value */
  private readonly async: { start: number; flags: number };

  private constructor(object: ProbeObject, private readonly opts: ProducerLoadOptions) {
    super(object);
    const btf = object.obj.btf();
    const event = new StructView(btf.structLayout("sarama_producer_event"));
    const inflight = new StructView(btf.structLayout("sarama_producer_inflight"));
    const span = new StructView(btf.structLayout("sarama_producer_span"));
    this.decode = eventDecoder(event);
    const async = new StructView(btf.structLayout("sarama_producer_async"));
    this.async = { start: async.offset("event.hdr.start_ns", 8), flags: async.offset("event.sc.flags", 1) };
    this.call = {
      messages: inflight.offset("messages"), messageSize: btf.structLayout("kafka_message").size,
      spans: inflight.offset("spans"), spanSize: span.layout.size,
      message: event.offset("message"), count: event.offset("count", 4), traceId: event.offset("sc.trace_id", 16),
      spanId: event.offset("sc.span_id", 8), parentSpanId: event.offset("parent_span_id", 8), flags: event.offset("sc.flags", 1),
      tracestateLen: event.offset("sc.tracestate_len", 4), parentRemote: event.offset("parent_remote", 4),
      span: {
        traceId: span.offset("trace_id", 16), spanId: span.offset("span_id", 8), parentSpanId: span.offset("parent_span_id", 8),
        flags: span.offset("flags", 1), remote: span.offset("remote", 1), tracestateLen: span.offset("tracestate_len", 4),
      },
    };
  }

  static load(opts: ProducerLoadOptions): SaramaProducerProbe {
    return new SaramaProducerProbe(ProbeObject.load("sarama_producer", opts), opts);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const r = plan(exe);
    if ("skipped" in r) return r;
    const { plan: p, programs, sync } = r.plan;
    return {
      ...offsetsOrigin(p),
      sites: siteCount(programs),
      attach: (tgid, path) => {
        const links = this.object.attach(tgid, path, p.offsets, programs);
        // a SyncProducer's call finds its parent by goroutine: the server spans of this process are kept so
        if (sync.one || sync.many) this.goroutineSpans().update(uintBytes(tgid, 4), new Uint8Array([1]));
        return links;
      },
    };
  }

  /** AsyncProducer messages older than the acknowledgement timeout: Sarama returned them as failed where gotel
   * cannot see it (returnError, inlined), or they would have ended; their places are freed. */
  sweep(nowNs: bigint): Readonly<Record<string, number>> {
    const map = this.object.obj.map("sarama_producer_async");
    const oldest = nowNs - BigInt(this.opts.ackTimeoutMs) * 1_000_000n;
    let sampled = 0;
    for (const k of [...map.keys()]) {
      const v = map.lookup(k);
      if (!v || new DataView(v.buffer, v.byteOffset).getBigUint64(this.async.start, true) >= oldest) continue;
      map.delete(k);
      if ((v[this.async.flags]! & 1) !== 0) sampled++; // an unsampled one would have made no span
    }
    return { [KAFKA_LOSSES.reasons.KAFKA_COUNTER_END_UNSEEN]: sampled };
  }

  override forget(tgid: number): void {
    this.goroutineSpans().delete(uintBytes(tgid, 4));
    super.forget(tgid);
  }

  private goroutineSpans() {
    return this.object.obj.map("gotel_goroutine_tgids");
  }

  /** Calls and messages in flight when the process exited: a SyncProducer call's messages (the first 16, each
   * with its own span), and the AsyncProducer's messages not acknowledged. */
  override unfinished(tgid: number, endNs: bigint, toUnixNs: (ns: bigint) => bigint): SpanRecord[] {
    const c = this.call;
    const calls = this.object.inflightCalls(tgid, "event", endNs).flatMap(({ event, value }) =>
      Array.from({ length: Math.min(event.getUint32(c.count, true), BATCH_MAX) }, (_, i) => {
        const e = new Uint8Array(event.buffer.slice(0));
        e.set(value.subarray(c.messages + i * c.messageSize, c.messages + (i + 1) * c.messageSize), c.message);
        const s = value.subarray(c.spans + i * c.spanSize, c.spans + (i + 1) * c.spanSize);
        e.set(s.subarray(c.span.traceId, c.span.traceId + 16), c.traceId);
        e.set(s.subarray(c.span.spanId, c.span.spanId + 8), c.spanId);
        e.set(s.subarray(c.span.parentSpanId, c.span.parentSpanId + 8), c.parentSpanId);
        e.set(s.subarray(c.span.tracestateLen, c.span.tracestateLen + 4), c.tracestateLen);
        e[c.flags] = s[c.span.flags]!;
        e[c.parentRemote] = s[c.span.remote]!;
        return e;
      }).filter((e) => (e[c.flags]! & 1) !== 0));
    const async = this.object.inflightCalls(tgid, "event", endNs, "sarama_producer_async").map(({ event }) => new Uint8Array(event.buffer));
    return [...calls, ...async].map((e) => unfinishedSpan(this.record(new DataView(e.buffer), tgid, toUnixNs)));
  }

  record(v: DataView, tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const { errorTypeAddress, ...e } = this.decode(v);
    if (errorTypeAddress !== 0n) e.errorType = errorTypeName(this.opts.memory?.(tgid), errorTypeAddress) ?? "_OTHER";
    e.startNs = toUnixNs(e.startNs);
    e.endNs = toUnixNs(e.endNs);
    return toSpanRecord(e);
  }
}

function eventDecoder(s: StructView): (v: DataView) => ProducerEvent & { errorTypeAddress: bigint } {
  const context = spanContextDecoder(s);
  const topic = stringField(s, "message.topic", "message.topic_len");
  const key = bytesField(s, "message.key", "message.key_len");
  const [keySize, count, hasResult] = [s.u32("message.key_size"), s.u32("count"), s.u32("has_result")];
  const [partition, offset] = [i64Field(s, "partition"), i64Field(s, "offset")];
  const errorType = s.u64("error_type");
  return (v) => {
    const done = hasResult(v) !== 0;
    return {
      ...context(v),
      topic: topic(v),
      key: key(v),
      keySize: keySize(v),
      count: count(v),
      partition: done ? partition(v) : undefined,
      offset: done ? offset(v) : undefined,
      errorTypeAddress: errorType(v),
    };
  };
}
