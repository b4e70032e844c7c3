/**
 * IBM/sarama producer spans (sarama_producer.bpf.c beside it): one PRODUCER span per message, per the messaging
 * semantic conventions (v1.45.0) as kafka-go's: `send <topic>`, and once the broker acknowledged it
 * messaging.destination.partition.id and kafka.offset. A SyncProducer's from its SendMessage(s) call's entry to
 * its return; an AsyncProducer's from Sarama's partitioning of it to its acknowledgement (or the error there).
 */
import type { GoExecutable, ProbeSites } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import { entryAndReturns, fieldNeeds, offsetsOrigin, planProbe, type ProbePlan, type ProbeSpec } from "../../probes/plan.ts";
import type { SpanEventContext } from "../../probes/span-event.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { sendSpan } from "../kafka.ts";
import { SARAMA, SARAMA_MODULES, SCOPE, saramaModule, type SaramaModule } from "./sarama.ts";

/** every producer's messages pass here once (the AsyncProducer's, the SyncProducer's too: they are told apart) */
const partitionMessage = (m: SaramaModule) => `${m}.(*topicProducer).partitionMessage`;
const returnSuccesses = (m: SaramaModule) => `${m}.(*asyncProducer).returnSuccesses`;
const sendMessage = (m: SaramaModule) => `${m}.(*syncProducer).SendMessage`;
const sendMessages = (m: SaramaModule) => `${m}.(*syncProducer).SendMessages`;

const fields = (m: SaramaModule) => ({
  message_topic: `${m}.ProducerMessage.Topic`,
  message_key: `${m}.ProducerMessage.Key`,
  message_headers: `${m}.ProducerMessage.Headers`,
  message_offset: `${m}.ProducerMessage.Offset`,
  message_partition: `${m}.ProducerMessage.Partition`,
  message_expectation: `${m}.ProducerMessage.expectation`,
  header_key: `${m}.RecordHeader.Key`,
  header_value: `${m}.RecordHeader.Value`,
  error_msg: `${m}.ProducerError.Msg`,
  error_err: `${m}.ProducerError.Err`,
});

/** SARAMA_BATCH_MAX (sarama_producer.bpf.c): the messages of one SendMessages call that get spans */
export const BATCH_MAX = 16;

export const PROGRAMS = {
  partition: "sarama_partition_message", partitionReturn: "sarama_partition_message_return", successes: "sarama_return_successes",
  send: "sarama_send_message", sendReturn: "sarama_send_message_return", sendMany: "sarama_send_messages", sendManyReturn: "sarama_send_messages_return",
} as const;

const spec = (m: SaramaModule): ProbeSpec => {
  const f = fields(m);
  return {
    function: partitionMessage(m), absent: "it produces no Kafka messages with Sarama", fields: f, optional: new Set(),
    modules: Object.fromEntries(Object.keys(f).map((k) => [k, m])),
    extra: { [PROGRAMS.successes]: returnSuccesses(m) },
  };
};

export const NEEDS: readonly FieldNeed[] = SARAMA_MODULES.flatMap((m) => fieldNeeds(spec(m)));

const moduleOf = (exe: GoExecutable) => saramaModule(exe, partitionMessage);

export const present = (exe: GoExecutable): boolean => moduleOf(exe) !== undefined;

export interface ProducerPlan {
  module: SaramaModule;
  plan: ProbePlan;
  /** SendMessage and SendMessages, when the binary has them (a program that only uses the AsyncProducer has not) */
  sync: { one?: ProbeSites; many?: ProbeSites };
  /** program -> sites */
  programs: Record<string, number[]>;
}

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): { plan: ProducerPlan } | { skipped: string; absent?: true } {
  const m = moduleOf(exe);
  if (!m) return { skipped: `${partitionMessage(SARAMA)} is not in the binary (it produces no Kafka messages with Sarama)`, absent: true };
  const r = planProbe(exe, spec(m), table);
  if ("skipped" in r) return r;
  const successes = r.plan.extra[PROGRAMS.successes];
  if (!successes) return { skipped: `${returnSuccesses(m)} is not in the binary (inlined?): an AsyncProducer's messages would never end` };
  const sync = { one: exe.probeSites(sendMessage(m)), many: exe.probeSites(sendMessages(m)) };
  const programs: Record<string, number[]> = {
    [PROGRAMS.partition]: [r.plan.sites.entry.offset],
    [PROGRAMS.partitionReturn]: r.plan.sites.returns,
    [PROGRAMS.successes]: [successes.offset],
    ...(sync.one ? { [PROGRAMS.send]: [sync.one.entry.offset], [PROGRAMS.sendReturn]: sync.one.returns } : {}),
    ...(sync.many ? { [PROGRAMS.sendMany]: [sync.many.entry.offset], [PROGRAMS.sendManyReturn]: sync.many.returns } : {}),
  };
  return { plan: { module: m, plan: r.plan, sync, programs } };
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const { sync, plan: p, module: m } = r.plan;
  const parts = [
    ...(sync.one ? [entryAndReturns(sendMessage(m), sync.one)] : []),
    ...(sync.many ? [entryAndReturns(sendMessages(m), sync.many)] : []),
    entryAndReturns(partitionMessage(m), p.sites),
    `${returnSuccesses(m)}: entry`,
  ];
  return { status: "ready", reason: `${parts.join("; ")}; one span per message (the first 16 of a SendMessages call)`, ...offsetsOrigin(p) };
}

/** One message's span as the kernel sent it. */
export interface ProducerEvent extends SpanEventContext {
  topic: string;
  key: Uint8Array;
  keySize: number;
  /** messages of the SendMessages call (1 for SendMessage, 0 for an AsyncProducer's message) */
  count: number;
  partition?: number;
  offset?: number;
  errorType?: string;
}

export function toSpanRecord(e: ProducerEvent): SpanRecord {
  return sendSpan(e, SCOPE);
}
