/** The loaded Sarama consumer object (sarama_consumer.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import { offsetsOrigin } from "../../probes/plan.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { bytesField, i64Field, spanContextDecoder, stringField } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { consumerPrograms, plan, toSpanRecord, type ConsumerEvent } from "./consumer-plan.ts";

export class SaramaConsumerProbe extends ObjectSpanProbe {
  readonly name = "Sarama consumer";
  private readonly decode: (v: DataView) => ConsumerEvent;

  private constructor(object: ProbeObject) {
    super(object);
    this.decode = eventDecoder(new StructView(object.obj.btf().structLayout("sarama_consumer_event")));
  }

  static load(opts: LoadOptions): SaramaConsumerProbe {
    return new SaramaConsumerProbe(ProbeObject.load("sarama_consumer", opts));
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const r = plan(exe);
    if ("skipped" in r) return r;
    const programs = consumerPrograms(r.plan);
    return { ...offsetsOrigin(r.plan), sites: siteCount(programs), attach: (tgid, path) => this.object.attach(tgid, path, r.plan.offsets, programs) };
  }

  /** its spans are sent when they end: nothing is in flight */
  override unfinished(): SpanRecord[] {
    return [];
  }

  record(v: DataView, _tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const e = this.decode(v);
    e.startNs = toUnixNs(e.startNs);
    e.endNs = toUnixNs(e.endNs);
    return toSpanRecord(e);
  }
}

function eventDecoder(s: StructView): (v: DataView) => ConsumerEvent {
  const context = spanContextDecoder(s);
  const [topic, group] = [stringField(s, "message.topic", "message.topic_len"), stringField(s, "group", "group_len")];
  const [partition, offset] = [i64Field(s, "partition"), i64Field(s, "offset")];
  const [key, keySize] = [bytesField(s, "message.key", "message.key_len"), s.u32("message.key_size")];
  return (v) => ({
    ...context(v),
    topic: topic(v),
    partition: partition(v),
    offset: offset(v),
    key: key(v),
    keySize: keySize(v),
    group: group(v),
  });
}
