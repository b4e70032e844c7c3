/**
 * segmentio/kafka-go producer spans (kafka_go_producer.bpf.c beside it): one PRODUCER span per message written
 * with (*Writer).WriteMessages, per the messaging semantic conventions (v1.45.0): `send <topic>`,
 * messaging.system.name=kafka, messaging.operation.type=send, messaging.operation.name=send,
 * messaging.destination.name, kafka.message.key (when the key is text), messaging.batch.message_count
 * (a call of more than one message), error.type and status ERROR when the write failed.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import { entryAndReturns, fieldNeeds, offsetsOrigin, planProbe, type PlanResult, type ProbeSpec } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import type { SpanEventContext } from "../../probes/span-event.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { sendSpan } from "../kafka.ts";
import { KAFKA_GO, SCOPE } from "./kafka-go.ts";

export { KAFKA_GO };

export const FUNCTION = `${KAFKA_GO}.(*Writer).WriteMessages`;

export const FIELDS = {
  writer_topic: `${KAFKA_GO}.Writer.Topic`,
  message_topic: `${KAFKA_GO}.Message.Topic`,
  message_key: `${KAFKA_GO}.Message.Key`,
  message_time: `${KAFKA_GO}.Message.Time`,
} as const;

/** KAFKA_BATCH_MAX (kafka_go_producer.bpf.c): the messages of one call that get spans */
export const BATCH_MAX = 16;

export const PROGRAMS = { entry: "kafka_go_producer_entry", return: "kafka_go_producer_return" } as const;

const SPEC: ProbeSpec = {
  function: FUNCTION, absent: "it produces no Kafka messages with kafka-go", fields: FIELDS, optional: new Set(),
  modules: Object.fromEntries(Object.keys(FIELDS).map((k) => [k, KAFKA_GO])),
};

export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

export const present = (exe: GoExecutable): boolean => exe.functions().get(FUNCTION) !== undefined;

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  return planProbe(exe, SPEC, table);
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  return {
    status: "ready",
    reason: `${entryAndReturns(FUNCTION, r.plan.sites)}; one span per message (the first 16 of a call)`,
    ...offsetsOrigin(r.plan),
  };
}

/** One message's span as the kernel sent it. */
export interface ProducerEvent extends SpanEventContext {
  /** the Writer's topic, "" when each message names its own */
  writerTopic: string;
  messageTopic: string;
  key: Uint8Array;
  /** the key's length (more than key.length when it was cut) */
  keySize: number;
  /** messages in the call */
  count: number;
  /** the returned error's Go type, when the write failed */
  errorType?: string;
}

export function toSpanRecord(e: ProducerEvent): SpanRecord {
  return sendSpan({ ...e, topic: e.writerTopic || e.messageTopic }, SCOPE);
}
