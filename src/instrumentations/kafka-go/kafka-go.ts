/** What kafka-go's producer and consumer spans share: the module, the scope (their attributes: ../kafka.ts). */
export const KAFKA_GO = "github.com/segmentio/kafka-go";
/** upstream's instrumentation scope */
export const SCOPE = "go.opentelemetry.io/auto/github.com/segmentio/kafka-go";
