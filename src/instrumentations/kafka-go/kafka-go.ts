/** What kafka-go's producer and consumer spans share: the module, the scope (their attributes: ../kafka.ts). */
import type { FieldsProgram } from "../../offsets/fields-program.ts";

export const KAFKA_GO = "github.com/segmentio/kafka-go";
/** upstream's instrumentation scope */
export const SCOPE = "go.opentelemetry.io/auto/github.com/segmentio/kafka-go";

/** for the offsets generator: the Writer's topic; a Message's fields and headers; the Reader's group */
export const FIELDS_PROGRAM: FieldsProgram = {
  module: KAFKA_GO, since: "v0.4.11", imports: ['"context"', `"${KAFKA_GO}"`],
  body: "\t\tw := &kafka.Writer{Topic: os.Args[1]}\n\t\tsink = append(sink, w.WriteMessages(context.Background(), kafka.Message{Key: []byte(os.Args[2])}))\n" +
    "\t\tr := kafka.NewReader(kafka.ReaderConfig{GroupID: os.Args[3]})\n\t\tm, _ := r.FetchMessage(context.Background())\n\t\tsink = append(sink, r, m, m.Headers)",
};
