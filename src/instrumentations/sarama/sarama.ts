/** What Sarama's producer and consumer spans share: the module and the scope (their attributes: ../kafka.ts). */
export const SARAMA = "github.com/IBM/sarama";
/** named as upstream names its scopes (go.opentelemetry.io/auto/<module>): it has no Sarama instrumentation */
export const SCOPE = "go.opentelemetry.io/auto/github.com/IBM/sarama";
