/** The loaded kafka-go producer object (kafka_go_producer.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { offsetsOrigin } from "../../probes/plan.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { bytesField, errorTypeName, spanContextDecoder, stringField, unfinishedSpan } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { BATCH_MAX, PROGRAMS, plan, toSpanRecord, type ProducerEvent } from "./producer-plan.ts";

export interface ProducerLoadOptions extends LoadOptions {
  /** a live target's memory, to name error types */
  memory?: (tgid: number) => TargetMemory | undefined;
}

type RawEvent = ProducerEvent & { errorTypeAddress: bigint };

export class KafkaGoProducerProbe extends ObjectSpanProbe {
  readonly name = "kafka-go producer";
  private readonly decode: (v: DataView) => RawEvent;

  /** where an in-flight call keeps its messages, and where they and the span ID go in its event */
  private readonly inflight: { messages: number; size: number; message: number; count: number; spanId: number };

  private constructor(object: ProbeObject, private readonly opts: ProducerLoadOptions) {
    super(object);
    const btf = object.obj.btf();
    const event = new StructView(btf.structLayout("kafka_go_producer_event"));
    this.decode = eventDecoder(event);
    this.inflight = {
      messages: new StructView(btf.structLayout("kafka_go_producer_inflight")).offset("messages"),
      size: btf.structLayout("kafka_message").size,
      message: event.offset("message"), count: event.offset("count"), spanId: event.offset("sc.span_id"),
    };
  }

  static load(opts: ProducerLoadOptions): KafkaGoProducerProbe {
    return new KafkaGoProducerProbe(ProbeObject.load("kafka_go_producer", opts), opts);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const r = plan(exe);
    if ("skipped" in r) return r;
    const p = r.plan;
    const programs = { [PROGRAMS.entry]: [p.sites.entry.offset], [PROGRAMS.return]: p.sites.returns };
    return { ...offsetsOrigin(p), sites: siteCount(programs), attach: (tgid, path) => this.object.attach(tgid, path, p.offsets, programs) };
  }

  /** A call in flight when its process exited: one unfinished span per message it was writing, as its return
   * would have sent (the first 16, each with a span ID of its own). */
  override unfinished(tgid: number, endNs: bigint, toUnixNs: (ns: bigint) => bigint): SpanRecord[] {
    const { messages, size, message, count, spanId } = this.inflight;
    return this.object.inflightCalls(tgid, "event", endNs).flatMap(({ event, value }) =>
      Array.from({ length: Math.min(event.getUint32(count, true), BATCH_MAX) }, (_, i) => {
        const e = new Uint8Array(event.buffer.slice(0));
        e.set(value.subarray(messages + i * size, messages + (i + 1) * size), message);
        if (i > 0) e.set(crypto.getRandomValues(new Uint8Array(8)), spanId);
        return unfinishedSpan(this.record(new DataView(e.buffer), tgid, toUnixNs));
      }));
  }

  record(v: DataView, tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const e = this.decode(v);
    if (e.errorTypeAddress !== 0n) e.errorType = errorTypeName(this.opts.memory?.(tgid), e.errorTypeAddress) ?? "_OTHER";
    e.startNs = toUnixNs(e.startNs);
    e.endNs = toUnixNs(e.endNs);
    return toSpanRecord(e);
  }
}

function eventDecoder(s: StructView): (v: DataView) => RawEvent {
  const context = spanContextDecoder(s);
  const writerTopic = stringField(s, "topic", "topic_len");
  const messageTopic = stringField(s, "message.topic", "message.topic_len");
  const key = bytesField(s, "message.key", "message.key_len");
  const [keySize, count] = [s.u32("message.key_size"), s.u32("count")];
  const errorType = s.u64("error_type");
  return (v) => ({
    ...context(v),
    writerTopic: writerTopic(v),
    messageTopic: messageTopic(v),
    key: key(v),
    keySize: keySize(v),
    count: count(v),
    errorTypeAddress: errorType(v),
  });
}
