/**
 * Processes gotel cannot instrument, and ones it can, for the tests of `--pid` pre-flight refusals: a non-Go
 * process and a Go program on go-redis (not instrumented yet) and kafka-go (never used); an HTTP server and a gRPC-only
 * server (traced).
 */
import { buildGoFixture } from "./go.ts";
import { Proc, startServer } from "./processes.ts";

export interface UntraceableTargets {
  sleep: Proc;
  /** traceable: a gRPC-only server */
  grpc: Proc;
  grpcExe: string;
  /** runs until its stdin closes */
  redisKafka: ReturnType<typeof Bun.spawn>;
  redisKafkaExe: string;
  /** the traceable one */
  http: Proc;
}

/** kafka-go is instrumented, but the program neither writes nor reads messages: only go-redis is named */
export const REDIS_KAFKA_NOTE = "github.com/redis/go-redis/v9 v9.7.0: not instrumented yet (its commands make no spans)";

export async function startUntraceableTargets(httpFixture: string): Promise<UntraceableTargets> {
  const grpcExe = buildGoFixture("grpc-server");
  const redisKafkaExe = buildGoFixture("redis-kafka");
  const sleep = new Proc(["sleep", "600"]);
  const grpc = (await startServer(grpcExe)).proc;
  const http = (await startServer(buildGoFixture(httpFixture))).proc;
  const redisKafka = Bun.spawn([redisKafkaExe], { stdin: "pipe", stdout: "ignore" });
  await Bun.sleep(100);
  return { sleep, grpc, grpcExe, redisKafka, redisKafkaExe, http };
}

export async function stopUntraceableTargets(t: UntraceableTargets | undefined): Promise<void> {
  if (!t) return;
  t.redisKafka.kill();
  await Promise.all([t.sleep.stop(), t.grpc.stop(), t.http.stop()]);
}
