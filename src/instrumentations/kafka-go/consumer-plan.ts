/**
 * segmentio/kafka-go consumer spans (kafka_go_consumer.bpf.c beside it): one CONSUMER span per message
 * (*Reader).FetchMessage (or ReadMessage) returns, covering its processing — until the goroutine fetches the
 * next one or closes the Reader. Messaging conventions v1.45.0: `process <topic>`, operation `process`,
 * messaging.destination.name, messaging.destination.partition.id, kafka.offset, kafka.message.key,
 * messaging.consumer.group.name (a Reader in a group).
 *
 * Parent and link: a message that carries a W3C `traceparent` header (its producer's span) gives the span its
 * parent — the consumer continues the producer's trace, as upstream does and as one trace per message flow reads
 * — and also a link to that context, which the conventions ask of process spans (SHOULD link the creation
 * context; MAY make it the parent). Without the header, the parent is the span on the ctx FetchMessage got.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import { entryAndReturns, fieldNeeds, offsetsOrigin, planProbe, type PlanResult, type ProbeSpec } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { processSpan, type ProcessEvent } from "../kafka.ts";
import { KAFKA_GO, SCOPE } from "./kafka-go.ts";

export const FUNCTION = `${KAFKA_GO}.(*Reader).FetchMessage`;
const CLOSE = `${KAFKA_GO}.(*Reader).Close`;

export const FIELDS = {
  message_topic: `${KAFKA_GO}.Message.Topic`,
  message_partition: `${KAFKA_GO}.Message.Partition`,
  message_offset: `${KAFKA_GO}.Message.Offset`,
  message_key: `${KAFKA_GO}.Message.Key`,
  message_headers: `${KAFKA_GO}.Message.Headers`,
  header_key: `${KAFKA_GO}/protocol.Header.Key`,
  header_value: `${KAFKA_GO}/protocol.Header.Value`,
  reader_config: `${KAFKA_GO}.Reader.config`,
  config_group_id: `${KAFKA_GO}.ReaderConfig.GroupID`,
} as const;

export const PROGRAMS = { fetch: "kafka_go_consumer_fetch", fetchReturn: "kafka_go_consumer_fetch_return", close: "kafka_go_consumer_close" } as const;

const SPEC: ProbeSpec = {
  function: FUNCTION, absent: "it consumes no Kafka messages with kafka-go", fields: FIELDS, optional: new Set(),
  modules: Object.fromEntries(Object.keys(FIELDS).map((k) => [k, KAFKA_GO])),
  extra: { [PROGRAMS.close]: CLOSE },
};

export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

export const present = (exe: GoExecutable): boolean => exe.functions().get(FUNCTION) !== undefined;

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  return planProbe(exe, SPEC, table);
}

/** Program -> sites: FetchMessage's entry and returns, Close's entry when the binary has it. */
export function consumerPrograms(p: Extract<PlanResult, { plan: unknown }>["plan"]): Record<string, number[]> {
  const close = p.extra[PROGRAMS.close];
  return {
    [PROGRAMS.fetch]: [p.sites.entry.offset],
    [PROGRAMS.fetchReturn]: p.sites.returns,
    ...(close ? { [PROGRAMS.close]: [close.offset] } : {}),
  };
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  return {
    status: "ready",
    reason: `${entryAndReturns(FUNCTION, r.plan.sites)}; a message's span lasts until the next fetch or Close`,
    ...offsetsOrigin(r.plan),
  };
}

export type ConsumerEvent = ProcessEvent;

export function toSpanRecord(e: ConsumerEvent): SpanRecord {
  return processSpan(e, SCOPE);
}
