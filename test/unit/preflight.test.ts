/**
 * The pre-flight check of `run --pid` / `trace --pid` (src/cli/preflight.ts) against real processes: a non-Go
 * process, a gRPC-only Go server, a Go program on go-redis and kafka-go, an HTTP server, a thread's id.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { refuseUntraceable, whyNotTraceable } from "../../src/cli/preflight.ts";
import { GotelError } from "../../src/errors.ts";
import type { Proc } from "../support/processes.ts";
import { GRPC_NOTE, REDIS_KAFKA_NOTE, startUntraceableTargets, stopUntraceableTargets, type UntraceableTargets } from "../support/untraceable.ts";

let targets: UntraceableTargets | undefined;
let sleep: Proc;
let grpc: Proc;
let grpcExe: string;
let redisKafka: ReturnType<typeof Bun.spawn>;
let redisKafkaExe: string;
let http: Proc;

beforeAll(async () => {
  targets = await startUntraceableTargets("http-server");
  ({ sleep, grpc, grpcExe, redisKafka, redisKafkaExe, http } = targets);
}, 300_000);
afterAll(() => stopUntraceableTargets(targets));

const GRPC = GRPC_NOTE;

describe("whyNotTraceable", () => {
  test("a non-Go process", () => {
    expect(whyNotTraceable(sleep.pid)).toBe(`process ${sleep.pid} (${readlinkSync(`/proc/${sleep.pid}/exe`)}) is not a Go program (no Go build info)`);
  });

  test("a gRPC-only Go server names gRPC", () => {
    expect(whyNotTraceable(grpc.pid)).toBe(`process ${grpc.pid} (${grpcExe}) is a Go program in which gotel instruments nothing: ${GRPC}`);
  });

  test("a Go program on go-redis and kafka-go names both", () => {
    expect(whyNotTraceable(redisKafka.pid)).toBe(
      `process ${redisKafka.pid} (${redisKafkaExe}) is a Go program in which gotel instruments nothing: ` +
        "github.com/redis/go-redis/v9 v9.7.0: not instrumented yet (its commands make no spans), " +
        "github.com/segmentio/kafka-go v0.4.47: not instrumented yet (producing and consuming messages make no spans)",
    );
  });

  test("a thread's id is its process", () => {
    const tid = readdirSync(`/proc/${grpc.pid}/task`).map(Number).find((t) => t !== grpc.pid)!;
    expect(tid).toBeGreaterThan(0);
    expect(whyNotTraceable(tid)).toStartWith(`process ${grpc.pid} (${grpcExe}, the process of thread ${tid}) is a Go program in which gotel instruments nothing: `);
  });

  test("an HTTP server can be traced; a pid that does not exist is left to the agent", () => {
    expect(whyNotTraceable(http.pid)).toBeUndefined();
    expect(whyNotTraceable(99_999_999)).toBeUndefined();
  });
});

describe("refuseUntraceable", () => {
  const pids = (...p: number[]) => ({ pids: p, exes: [], all: false });

  test("no pid can be traced: one error naming each", () => {
    let err: unknown;
    try {
      refuseUntraceable(pids(sleep.pid, grpc.pid));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GotelError);
    const line = (err as GotelError).oneLine;
    expect(line).not.toContain("\n");
    expect(line).toStartWith(`nothing to trace: process ${sleep.pid} (`);
    expect(line).toContain(`; process ${grpc.pid} (${grpcExe}) is a Go program in which gotel instruments nothing: ${GRPC}; `);
    expect(line).toEndWith("`gotel inspect --pid N` shows what gotel instruments in a Go program");
  });

  test("one traceable pid among others: go ahead", () => {
    expect(() => refuseUntraceable(pids(sleep.pid, http.pid, grpc.pid))).not.toThrow();
  });

  test("--exe or --all: processes may come later, go ahead", () => {
    expect(() => refuseUntraceable({ pids: [grpc.pid], exes: [grpcExe], all: false })).not.toThrow();
    expect(() => refuseUntraceable({ pids: [grpc.pid], exes: [], all: true })).not.toThrow();
  });

  test("a pid it cannot tell about: go ahead (the agent says what is wrong)", () => {
    expect(() => refuseUntraceable(pids(grpc.pid, 99_999_999))).not.toThrow();
  });
});
