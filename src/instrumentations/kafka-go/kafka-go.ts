/** What kafka-go's producer and consumer spans share: the module, the scope, the messaging attributes. */
import type { Attributes } from "@opentelemetry/api";

export const KAFKA_GO = "github.com/segmentio/kafka-go";
/** upstream's instrumentation scope */
export const SCOPE = "go.opentelemetry.io/auto/github.com/segmentio/kafka-go";

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
