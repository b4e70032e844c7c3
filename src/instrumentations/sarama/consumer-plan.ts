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
import { fieldNeeds, offsetsOrigin, planProbe, type PlanResult, type ProbeSpec } from "../../probes/plan.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { processSpan, type ProcessEvent } from "../kafka.ts";
import { SARAMA, SARAMA_MODULES, SCOPE, saramaModule, type SaramaModule } from "./sarama.ts";

/** the fetch that hands messages to a partition's channel: its return is when they could be processed */
const parseResponse = (m: SaramaModule) => `${m}.(*partitionConsumer).parseResponse`;
const markMessage = (m: SaramaModule) => `${m}.(*consumerGroupSession).MarkMessage`;
const consume = (m: SaramaModule) => `${m}.(*consumerGroupSession).consume`;

const fields = (m: SaramaModule) => ({
  message_topic: `${m}.ConsumerMessage.Topic`,
  message_partition: `${m}.ConsumerMessage.Partition`,
  message_offset: `${m}.ConsumerMessage.Offset`,
  message_key: `${m}.ConsumerMessage.Key`,
  message_headers: `${m}.ConsumerMessage.Headers`,
  header_key: `${m}.RecordHeader.Key`,
  header_value: `${m}.RecordHeader.Value`,
  session_parent: `${m}.consumerGroupSession.parent`,
  group_id: `${m}.consumerGroup.groupID`,
});

export const PROGRAMS = { fetched: "sarama_parse_response_return", consume: "sarama_consume", mark: "sarama_mark_message" } as const;

const spec = (m: SaramaModule): ProbeSpec => {
  const f = fields(m);
  return {
    function: parseResponse(m), absent: "it consumes no Kafka messages with Sarama", fields: f, optional: new Set(),
    modules: Object.fromEntries(Object.keys(f).map((k) => [k, m])),
    extra: { [PROGRAMS.mark]: markMessage(m), [PROGRAMS.consume]: consume(m) },
  };
};

export const NEEDS: readonly FieldNeed[] = SARAMA_MODULES.flatMap((m) => fieldNeeds(spec(m)));

/** a consumer group member: a Sarama consumer without a group marks nothing, so it gets no spans */
const moduleOf = (exe: GoExecutable) => saramaModule(exe, markMessage);

export const present = (exe: GoExecutable): boolean => moduleOf(exe) !== undefined;

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  const m = moduleOf(exe);
  if (!m) return { skipped: `${markMessage(SARAMA)} is not in the binary (it consumes no Kafka messages in a Sarama consumer group)`, absent: true };
  return planProbe(exe, spec(m), table);
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
  const fn = r.plan.sites.function.name;
  return {
    status: "ready",
    reason: `${fn}: ${n} return site${n === 1 ? "" : "s"}; MarkMessage: entry; a message's span ends where the handler marks it`,
    ...offsetsOrigin(r.plan),
  };
}

export type ConsumerEvent = ProcessEvent;

export function toSpanRecord(e: ConsumerEvent): SpanRecord {
  return processSpan(e, SCOPE);
}
