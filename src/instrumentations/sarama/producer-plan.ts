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
import { SARAMA, SCOPE } from "./sarama.ts";

export { SARAMA };

/** every producer's messages pass here once (the AsyncProducer's, the SyncProducer's too: they are told apart) */
export const FUNCTION = `${SARAMA}.(*topicProducer).partitionMessage`;
const SUCCESSES = `${SARAMA}.(*asyncProducer).returnSuccesses`;
export const SEND_MESSAGE = `${SARAMA}.(*syncProducer).SendMessage`;
export const SEND_MESSAGES = `${SARAMA}.(*syncProducer).SendMessages`;

export const FIELDS = {
  message_topic: `${SARAMA}.ProducerMessage.Topic`,
  message_key: `${SARAMA}.ProducerMessage.Key`,
  message_headers: `${SARAMA}.ProducerMessage.Headers`,
  message_offset: `${SARAMA}.ProducerMessage.Offset`,
  message_partition: `${SARAMA}.ProducerMessage.Partition`,
  message_expectation: `${SARAMA}.ProducerMessage.expectation`,
  header_key: `${SARAMA}.RecordHeader.Key`,
  header_value: `${SARAMA}.RecordHeader.Value`,
  error_msg: `${SARAMA}.ProducerError.Msg`,
  error_err: `${SARAMA}.ProducerError.Err`,
} as const;

/** SARAMA_BATCH_MAX (sarama_producer.bpf.c): the messages of one SendMessages call that get spans */
export const BATCH_MAX = 16;

export const PROGRAMS = {
  partition: "sarama_partition_message", partitionReturn: "sarama_partition_message_return", successes: "sarama_return_successes",
  send: "sarama_send_message", sendReturn: "sarama_send_message_return", sendMany: "sarama_send_messages", sendManyReturn: "sarama_send_messages_return",
} as const;

const SPEC: ProbeSpec = {
  function: FUNCTION, absent: "it produces no Kafka messages with Sarama", fields: FIELDS, optional: new Set(),
  modules: Object.fromEntries(Object.keys(FIELDS).map((k) => [k, SARAMA])),
  extra: { [PROGRAMS.successes]: SUCCESSES },
};

export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

export const present = (exe: GoExecutable): boolean => exe.functions().get(FUNCTION) !== undefined;

export interface ProducerPlan {
  plan: ProbePlan;
  /** SendMessage and SendMessages, when the binary has them (a program that only uses the AsyncProducer has not) */
  sync: { one?: ProbeSites; many?: ProbeSites };
  /** program -> sites */
  programs: Record<string, number[]>;
}

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): { plan: ProducerPlan } | { skipped: string; absent?: true } {
  const r = planProbe(exe, SPEC, table);
  if ("skipped" in r) return r;
  const successes = r.plan.extra[PROGRAMS.successes];
  if (!successes) return { skipped: `${SUCCESSES} is not in the binary (inlined?): an AsyncProducer's messages would never end` };
  const sync = { one: exe.probeSites(SEND_MESSAGE), many: exe.probeSites(SEND_MESSAGES) };
  const programs: Record<string, number[]> = {
    [PROGRAMS.partition]: [r.plan.sites.entry.offset],
    [PROGRAMS.partitionReturn]: r.plan.sites.returns,
    [PROGRAMS.successes]: [successes.offset],
    ...(sync.one ? { [PROGRAMS.send]: [sync.one.entry.offset], [PROGRAMS.sendReturn]: sync.one.returns } : {}),
    ...(sync.many ? { [PROGRAMS.sendMany]: [sync.many.entry.offset], [PROGRAMS.sendManyReturn]: sync.many.returns } : {}),
  };
  return { plan: { plan: r.plan, sync, programs } };
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const { sync, plan: p } = r.plan;
  const parts = [
    ...(sync.one ? [entryAndReturns(SEND_MESSAGE, sync.one)] : []),
    ...(sync.many ? [entryAndReturns(SEND_MESSAGES, sync.many)] : []),
    entryAndReturns(FUNCTION, p.sites),
    `${SUCCESSES}: entry`,
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
