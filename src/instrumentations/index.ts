/**
 * The one list of instrumentations. inspect, the loader (probes/probe-set.ts), the offsets generator, doctor and
 * the README's "Adding an instrumentation" read it; adding one means its folder, an entry here, and its tests.
 * The maps every object shares (ring buffer, counters, span contexts) belong to the core object
 * (bpf/core.bpf.c), loaded before these.
 */
import type { GoExecutable } from "../gobin/analyze.ts";
import type { FieldsProgram } from "../offsets/fields-program.ts";
import { modulesOf, type Instrumentation } from "../probes/instrumentation.ts";
import * as databaseSql from "./database-sql/plan.ts";
import { FIELDS_PROGRAMS as DRIVER_PROGRAMS } from "./database-sql/fields-programs.ts";
import { RouterProbe } from "./http-routes/probe.ts";
import { ROUTERS, routerFieldsProgram, routerNeeds, routerPresent, routerReadiness } from "./http-routes/routers.ts";
import * as grpcClient from "./grpc/client-plan.ts";
import { GrpcClientProbe } from "./grpc/client-probe.ts";
import { GRPC, FIELDS_PROGRAM as GRPC_PROGRAM } from "./grpc/grpc.ts";
import * as grpcServer from "./grpc/server-plan.ts";
import { GrpcServerProbe } from "./grpc/server-probe.ts";
import { DATABASE_SQL_LOSSES, DatabaseSqlProbe } from "./database-sql/probe.ts";
import * as nethttpClient from "./nethttp-client/plan.ts";
import { NethttpClientProbe } from "./nethttp-client/probe.ts";
import * as nethttpServer from "./nethttp-server/plan.ts";
import * as otelApi from "./otel-api/plan.ts";
import { FIELDS_PROGRAM as KAFKA_GO_PROGRAM } from "./kafka-go/kafka-go.ts";
import * as kafkaGoProducer from "./kafka-go/producer-plan.ts";
import { KafkaGoProducerProbe } from "./kafka-go/producer-probe.ts";
import * as kafkaGoConsumer from "./kafka-go/consumer-plan.ts";
import { KafkaGoConsumerProbe } from "./kafka-go/consumer-probe.ts";
import { OtelApiProbe } from "./otel-api/probe.ts";
import { OTEL_API_LOSSES } from "./otel-api/spans.ts";
import { KAFKA_LOSSES } from "./kafka.ts";
import * as saramaProducer from "./sarama/producer-plan.ts";
import { FIELDS_PROGRAMS as SARAMA_PROGRAMS, SARAMA, SHOPIFY_SARAMA } from "./sarama/sarama.ts";
import { SaramaProducerProbe } from "./sarama/producer-probe.ts";
import * as saramaConsumer from "./sarama/consumer-plan.ts";
import { SaramaConsumerProbe } from "./sarama/consumer-probe.ts";
import { NETHTTP_SERVER_LOSSES, NethttpServerProbe } from "./nethttp-server/probe.ts";
import { librariesNotInstrumented, type NotInstrumented } from "./not-instrumented.ts";

export { moduleList, UNINSTRUMENTED_LIBRARIES, type NotInstrumented, type UninstrumentedLibrary } from "./not-instrumented.ts";
export type { Instrumentation, Readiness } from "../probes/instrumentation.ts";
export { linksModuleOf, modulesOf } from "../probes/instrumentation.ts";

export const INSTRUMENTATIONS: readonly Instrumentation[] = [
  {
    name: "net/http server", module: "std", object: "nethttp_server", readiness: nethttpServer.readiness, present: nethttpServer.present, needs: nethttpServer.NEEDS,
    fieldsPrograms: [nethttpServer.FIELDS_PROGRAM], losses: NETHTTP_SERVER_LOSSES,
    load: (ctx) => NethttpServerProbe.load({
      ...ctx.object, memory: ctx.memory, linkStreams: ctx.linkStreams,
    }),
    sameHost: ["reads"],
  },
  {
    name: "net/http client", module: "std", object: "nethttp_client", readiness: nethttpClient.readiness, present: nethttpClient.present, needs: nethttpClient.NEEDS,
    load: (ctx) => NethttpClientProbe.load({
      ...ctx.object, memory: ctx.memory, inject: ctx.inject, fileRequests: ctx.fileRequests, linkStreams: ctx.linkStreams,
    }),
    sameHost: ["sends", "streams"],
  },
  // routes of the routers on net/http's server: no spans of their own, http.route for the server's
  ...ROUTERS.map((r): Instrumentation => ({
    name: r.name, module: r.module, object: "http_routes", readiness: routerReadiness(r), present: routerPresent(r), needs: routerNeeds(r),
    fieldsPrograms: [routerFieldsProgram(r)],
    load: (ctx) => RouterProbe.load(r, ctx.object, ctx.memory),
  })),
  {
    name: "database/sql", module: "std", object: "database_sql", readiness: databaseSql.readiness, present: databaseSql.present, needs: databaseSql.NEEDS,
    fieldsPrograms: DRIVER_PROGRAMS, losses: DATABASE_SQL_LOSSES,
    load: (ctx) => DatabaseSqlProbe.load({
      ...ctx.object, memory: ctx.memory, includeText: ctx.env.OTEL_GO_AUTO_INCLUDE_DB_STATEMENT, parse: ctx.env.OTEL_GO_AUTO_PARSE_DB_STATEMENT,
    }),
  },
  {
    name: "gRPC server", module: GRPC, object: "grpc_server", readiness: grpcServer.readiness, present: grpcServer.present, needs: grpcServer.NEEDS,
    fieldsPrograms: [GRPC_PROGRAM],
    load: (ctx) => GrpcServerProbe.load({ ...ctx.object, memory: ctx.memory }),
    sameHost: ["reads"],
  },
  {
    name: "gRPC client", module: GRPC, object: "grpc_client", readiness: grpcClient.readiness, present: grpcClient.present, needs: grpcClient.NEEDS,
    fieldsPrograms: [GRPC_PROGRAM],
    load: (ctx) => GrpcClientProbe.load({ ...ctx.object, memory: ctx.memory, inject: ctx.inject, linkStreams: ctx.linkStreams }),
    sameHost: ["streams", "writers"],
  },
  {
    name: "kafka-go producer", module: kafkaGoProducer.KAFKA_GO, object: "kafka_go_producer", losses: KAFKA_LOSSES, readiness: kafkaGoProducer.readiness,
    present: kafkaGoProducer.present, needs: kafkaGoProducer.NEEDS, fieldsPrograms: [KAFKA_GO_PROGRAM],
    load: (ctx) => KafkaGoProducerProbe.load({ ...ctx.object, memory: ctx.memory }),
  },
  {
    name: "kafka-go consumer", module: kafkaGoProducer.KAFKA_GO, object: "kafka_go_consumer", losses: KAFKA_LOSSES, readiness: kafkaGoConsumer.readiness,
    present: kafkaGoConsumer.present, needs: kafkaGoConsumer.NEEDS, fieldsPrograms: [KAFKA_GO_PROGRAM],
    load: (ctx) => KafkaGoConsumerProbe.load(ctx.object),
  },
  {
    name: "Sarama producer", module: SARAMA, formerModules: [SHOPIFY_SARAMA], object: "sarama_producer", losses: KAFKA_LOSSES, readiness: saramaProducer.readiness,
    present: saramaProducer.present, needs: saramaProducer.NEEDS, fieldsPrograms: SARAMA_PROGRAMS,
    load: (ctx) => SaramaProducerProbe.load({ ...ctx.object, memory: ctx.memory, ackTimeoutMs: ctx.env.GOTEL_KAFKA_ACK_TIMEOUT }),
  },
  {
    name: "Sarama consumer", module: SARAMA, formerModules: [SHOPIFY_SARAMA], object: "sarama_consumer", losses: KAFKA_LOSSES, readiness: saramaConsumer.readiness,
    present: saramaConsumer.present, needs: saramaConsumer.NEEDS, fieldsPrograms: SARAMA_PROGRAMS,
    load: (ctx) => SaramaConsumerProbe.load(ctx.object),
  },
  {
    name: "OpenTelemetry API", module: otelApi.OTEL, object: "otel_api", losses: OTEL_API_LOSSES, readiness: otelApi.readiness, present: otelApi.present, needs: otelApi.NEEDS,
    fieldsPrograms: [otelApi.FIELDS_PROGRAM],
    load: (ctx) => OtelApiProbe.load({ ...ctx.object, enabled: ctx.env.GOTEL_OTEL_API, writeIds: ctx.writeAllowed, memory: ctx.memory }),
  },
];

/** The programs the offsets generator builds to see third-party modules' fields, one per module. */
export function fieldsPrograms(): FieldsProgram[] {
  const byModule = new Map(INSTRUMENTATIONS.flatMap((i) => i.fieldsPrograms ?? []).map((p) => [p.module, p]));
  return [...byModule.values()];
}

/** Every field of `module` ("std" or a module path) that some instrumentation reads: what the offsets table covers. */
export function fieldsOf(module: string): string[] {
  return [...new Set(INSTRUMENTATIONS.flatMap((i) => i.needs).filter((n) => n.module === module).map((n) => n.field))];
}

/**
 * The libraries of `exe` a user would expect traced that no registered instrumentation covers
 * (not-instrumented.ts), each with what that means. `ready` says whether an instrumentation would attach (the
 * agent knows from its probes); by default its readiness is asked, only when a framework on net/http is there.
 */
export function notInstrumented(
  exe: GoExecutable,
  instrumentations: readonly Instrumentation[] = INSTRUMENTATIONS,
  ready?: (instrumentation: string) => boolean,
): NotInstrumented[] {
  return librariesNotInstrumented(exe, {
    instrumented: new Set(instrumentations.flatMap(modulesOf)),
    ready: ready ?? ((name) => instrumentations.find((i) => i.name === name)?.readiness(exe).status === "ready"),
  });
}
