/**
 * What the Kafka instrumentations (kafka-go/, sarama/) share: the messaging semantic conventions' (v1.45.0)
 * attributes of an operation on one message.
 */
import { SpanKind, SpanStatusCode, type Attributes } from "@opentelemetry/api";
import type { Losses } from "../probes/instrumentation.ts";
import { recordContext, type SpanEventContext } from "../probes/span-event.ts";
import type { SpanRecord } from "../traces/span.ts";

/** The Kafka instrumentations' own reasons for losing spans (kafka.h's enum kafka_counter), in the words of the
 * `stopped` line: the same for kafka-go and Sarama */
export const KAFKA_LOSSES = {
  enum: "kafka_counter",
  reasons: {
    KAFKA_COUNTER_BATCH_OVERFLOW: "message past a batch's first 16 (Sarama's acknowledged batches: 128)",
    KAFKA_COUNTER_END_UNSEEN: "message whose end was not seen",
    KAFKA_COUNTER_START_UNSEEN: "message whose processing began before attaching",
  },
} as const satisfies Losses;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The key as the conventions want it: only a key that is text, and whole */
function textKey(key: Uint8Array, size: number): string | undefined {
  if (size === 0 || key.length < size) return undefined;
  try {
    return strictUtf8.decode(key);
  } catch {
    return undefined;
  }
}

/**
 * The messaging conventions' (v1.45.0) attributes of a Kafka operation on one message: system, operation,
 * destination, key; and, as upstream writes them (deprecated in 1.45.0 for the names beside them, kept for
 * dashboards built on it), messaging.system and messaging.kafka.message.key.
 */
export function messagingAttributes(operation: "send" | "process", topic: string, key: Uint8Array, keySize: number): Attributes {
  const attributes: Attributes = {
    "messaging.system.name": "kafka",
    "messaging.system": "kafka",
    "messaging.operation.type": operation,
    "messaging.operation.name": operation,
  };
  if (topic) attributes["messaging.destination.name"] = topic;
  const text = textKey(key, keySize);
  if (text !== undefined) {
    attributes["kafka.message.key"] = text;
    attributes["messaging.kafka.message.key"] = text;
  }
  return attributes;
}

/** A message's operation as a probe saw it: what both Kafka instrumentations' events carry. */
export interface KafkaMessageEvent extends SpanEventContext {
  topic: string;
  key: Uint8Array;
  /** the key's length (more than key.length when it was cut) */
  keySize: number;
  /** the broker's: a consumed message's, a produced one's once acknowledged */
  partition?: number;
  offset?: number;
}

function placement(attributes: Attributes, e: KafkaMessageEvent): void {
  if (e.partition !== undefined) attributes["messaging.destination.partition.id"] = String(e.partition);
  if (e.offset !== undefined) attributes["kafka.offset"] = e.offset;
}

/** A PRODUCER span `send <topic>`: batch size when the call sent more than one, ERROR with the error's type. */
export function sendSpan(e: KafkaMessageEvent & { count: number; errorType?: string }, scope: string): SpanRecord {
  const attributes = messagingAttributes("send", e.topic, e.key, e.keySize);
  placement(attributes, e);
  if (e.count > 1) attributes["messaging.batch.message_count"] = e.count;
  if (e.errorType) attributes["error.type"] = e.errorType;
  return {
    ...recordContext(e),
    name: e.topic ? `send ${e.topic}` : "send",
    kind: SpanKind.PRODUCER,
    attributes,
    status: e.errorType ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.UNSET },
    scope,
  };
}

/** A consumed message as a probe saw it. */
export interface ProcessEvent extends KafkaMessageEvent {
  partition: number;
  offset: number;
  /** the consumer group, "" outside one */
  group: string;
}

/** A CONSUMER span `process <topic>`; a parent that came in the message's traceparent is also its link (the
 * conventions: process spans SHOULD link the creation context, MAY make it the parent). */
export function processSpan(e: ProcessEvent, scope: string): SpanRecord {
  const attributes = messagingAttributes("process", e.topic, e.key, e.keySize);
  placement(attributes, e);
  if (e.group) attributes["messaging.consumer.group.name"] = e.group;
  return {
    ...recordContext(e),
    name: e.topic ? `process ${e.topic}` : "process",
    kind: SpanKind.CONSUMER,
    attributes,
    status: { code: SpanStatusCode.UNSET },
    ...(e.parentIsRemote && e.parentSpanId
      ? { links: [{ traceId: e.traceId, spanId: e.parentSpanId, sampled: true, attributes: {}, droppedAttributes: 0 }] }
      : {}),
    scope,
  };
}
