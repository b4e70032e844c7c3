/**
 * What Sarama's producer and consumer share: the module (under its two names), the scope (their attributes:
 * ../kafka.ts). Sarama moved from github.com/Shopify/sarama (to v1.38.1) to github.com/IBM/sarama (from v1.40.0)
 * without changing the code gotel reads: the plans are the same under either path.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { FieldsProgram } from "../../offsets/fields-program.ts";

export const SARAMA = "github.com/IBM/sarama";
export const SHOPIFY_SARAMA = "github.com/Shopify/sarama";
export const SARAMA_MODULES = [SARAMA, SHOPIFY_SARAMA] as const;
export type SaramaModule = (typeof SARAMA_MODULES)[number];

/** one scope for both names, named as upstream names its scopes (go.opentelemetry.io/auto/<module>): upstream has
 * no Sarama instrumentation */
export const SCOPE = "go.opentelemetry.io/auto/github.com/IBM/sarama";

/** The name under which the binary has Sarama's function `fn(module)`, if any. */
export function saramaModule(exe: GoExecutable, fn: (module: SaramaModule) => string): SaramaModule | undefined {
  return SARAMA_MODULES.find((m) => exe.functions().get(fn(m)) !== undefined);
}

/** for the offsets generator, under its name since v1.40 and the one before: its messages, headers and producer
 * errors; a consumer group session's group (its session type is linked only where Consume is called) */
export const FIELDS_PROGRAMS: readonly FieldsProgram[] = ([[SARAMA, "v1.40.0"], [SHOPIFY_SARAMA, "v1.37.0"]] as const).map(([module, since]) => ({
  module, since, imports: ['"context"', `"${module}"`],
  body: "\t\tp, _ := sarama.NewSyncProducer([]string{os.Args[1]}, nil)\n\t\t_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: os.Args[2]})\n" +
    "\t\tg, _ := sarama.NewConsumerGroup([]string{os.Args[1]}, os.Args[3], nil)\n\t\tsink = append(sink, g.Consume(context.Background(), os.Args[4:], nil))\n" +
    "\t\tsink = append(sink, p, err, g, &sarama.ProducerError{}, &sarama.ConsumerMessage{}, sarama.RecordHeader{})",
}));
