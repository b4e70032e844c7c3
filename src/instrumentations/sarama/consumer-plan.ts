/**
 * IBM/sarama consumer spans (sarama_consumer.bpf.c beside it): one CONSUMER span per message a ConsumerGroup
 * handler marks (MarkMessage), from when its goroutine could begin processing it to the mark. Messaging
 * conventions v1.45.0, as kafka-go's: `process <topic>`, messaging.destination.partition.id, kafka.offset,
 * kafka.message.key, messaging.consumer.group.name; a traceparent in the message's headers is its parent and link.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import { entryAndReturns, fieldNeeds, offsetsOrigin, planProbe, type PlanResult, type ProbeSpec } from "../../probes/plan.ts";
import type { SpanEventContext } from "../../probes/span-event.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { processSpan } from "../kafka.ts";
import { SARAMA, SCOPE } from "./sarama.ts";

/** the fetch that hands messages to a partition's channel: its return is when they could be processed */
export const FUNCTION = `${SARAMA}.(*partitionConsumer).parseResponse`;
export const MARK_MESSAGE = `${SARAMA}.(*consumerGroupSession).MarkMessage`;
const CONSUME = `${SARAMA}.(*consumerGroupSession).consume`;

export const FIELDS = {
  message_topic: `${SARAMA}.ConsumerMessage.Topic`,
  message_partition: `${SARAMA}.ConsumerMessage.Partition`,
  message_offset: `${SARAMA}.ConsumerMessage.Offset`,
  message_key: `${SARAMA}.ConsumerMessage.Key`,
  message_headers: `${SARAMA}.ConsumerMessage.Headers`,
  header_key: `${SARAMA}.RecordHeader.Key`,
  header_value: `${SARAMA}.RecordHeader.Value`,
  session_parent: `${SARAMA}.consumerGroupSession.parent`,
  group_id: `${SARAMA}.consumerGroup.groupID`,
} as const;

export const PROGRAMS = { fetched: "sarama_parse_response_return", consume: "sarama_consume", mark: "sarama_mark_message" } as const;

const SPEC: ProbeSpec = {
  function: FUNCTION, absent: "it consumes no Kafka messages with Sarama", fields: FIELDS, optional: new Set(),
  modules: Object.fromEntries(Object.keys(FIELDS).map((k) => [k, SARAMA])),
  extra: { [PROGRAMS.mark]: MARK_MESSAGE, [PROGRAMS.consume]: CONSUME },
};

export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

/** a consumer group member: a Sarama consumer without a group marks nothing, so it gets no spans */
export const present = (exe: GoExecutable): boolean => exe.functions().get(MARK_MESSAGE) !== undefined;

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  if (!present(exe)) return { skipped: `${MARK_MESSAGE} is not in the binary (it consumes no Kafka messages in a Sarama consumer group)`, absent: true };
  return planProbe(exe, SPEC, table);
}

/** Program -> sites: parseResponse's returns, MarkMessage's and consume's entries. */
export function consumerPrograms(p: Extract<PlanResult, { plan: unknown }>["plan"]): Record<string, number[]> {
  const consume = p.extra[PROGRAMS.consume];
  return {
    [PROGRAMS.fetched]: p.sites.returns,
    [PROGRAMS.mark]: [p.extra[PROGRAMS.mark]!.offset],
    ...(consume ? { [PROGRAMS.consume]: [consume.offset] } : {}),
  };
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const n = r.plan.sites.returns.length;
  return {
    status: "ready",
    reason: `${FUNCTION}: ${n} return site${n === 1 ? "" : "s"}; ${MARK_MESSAGE}: entry; a message's span ends where the handler marks it`,
    ...offsetsOrigin(r.plan),
  };
}

export interface ConsumerEvent extends SpanEventContext {
  topic: string;
  partition: number;
  offset: number;
  key: Uint8Array;
  keySize: number;
  group: string;
}

export function toSpanRecord(e: ConsumerEvent): SpanRecord {
  return processSpan(e, SCOPE);
}
