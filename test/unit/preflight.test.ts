/**
 * The pre-flight check of `run --pid` / `trace --pid` (src/cli/preflight.ts) against real processes: a non-Go
 * process, a Go program on go-redis and kafka-go, an HTTP server, a gRPC-only server, a thread's id.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { refuseUntraceable, whyNotTraceable } from "../../src/cli/preflight.ts";
import { GotelError } from "../../src/errors.ts";
import type { Proc } from "../support/processes.ts";
import { REDIS_KAFKA_NOTE, startUntraceableTargets, stopUntraceableTargets, type UntraceableTargets } from "../support/untraceable.ts";

let targets: UntraceableTargets | undefined;
let sleep: Proc;
let grpc: Proc;
let redisKafka: ReturnType<typeof Bun.spawn>;
let redisKafkaExe: string;
let http: Proc;

beforeAll(async () => {
  targets = await startUntraceableTargets("http-server");
  ({ sleep, grpc, redisKafka, redisKafkaExe, http } = targets);
}, 300_000);
afterAll(() => stopUntraceableTargets(targets));

const REDIS_KAFKA = REDIS_KAFKA_NOTE;

describe("whyNotTraceable", () => {
  test("a non-Go process", () => {
    expect(whyNotTraceable(sleep.pid)).toBe(`process ${sleep.pid} (${readlinkSync(`/proc/${sleep.pid}/exe`)}) is not a Go program (no Go build info)`);
  });

  test("a Go program on go-redis and kafka-go names go-redis (kafka-go is instrumented; this program neither writes nor reads)", () => {
    expect(whyNotTraceable(redisKafka.pid)).toBe(
      `process ${redisKafka.pid} (${redisKafkaExe}) is a Go program in which gotel instruments nothing: ` +
        "github.com/redis/go-redis/v9 v9.7.0: not instrumented yet (its commands make no spans)",
    );
  });

  test("a thread's id is its process", () => {
    const tid = readdirSync(`/proc/${redisKafka.pid}/task`).map(Number).find((t) => t !== redisKafka.pid)!;
    expect(tid).toBeGreaterThan(0);
    expect(whyNotTraceable(tid)).toBe(`process ${redisKafka.pid} (${redisKafkaExe}, the process of thread ${tid}) is a Go program in which gotel instruments nothing: ${REDIS_KAFKA}`);
  });

  test("an HTTP server and a gRPC-only server can be traced; a pid that does not exist is left to the agent", () => {
    expect(whyNotTraceable(http.pid)).toBeUndefined();
    expect(whyNotTraceable(grpc.pid)).toBeUndefined();
    expect(whyNotTraceable(99_999_999)).toBeUndefined();
  });
});

describe("refuseUntraceable", () => {
  const pids = (...p: number[]) => ({ pids: p, exes: [], all: false });

  test("no pid can be traced: one error naming each", () => {
    let err: unknown;
    try {
      refuseUntraceable(pids(sleep.pid, redisKafka.pid));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GotelError);
    const line = (err as GotelError).oneLine;
    expect(line).not.toContain("\n");
    expect(line).toStartWith(`nothing to trace: process ${sleep.pid} (`);
    expect(line).toContain(`; process ${redisKafka.pid} (${redisKafkaExe}) is a Go program in which gotel instruments nothing: ${REDIS_KAFKA}; `);
    expect(line).toEndWith("`gotel inspect --pid N` shows what gotel instruments in a Go program");
  });

  test("one traceable pid among others: go ahead", () => {
    expect(() => refuseUntraceable(pids(sleep.pid, redisKafka.pid, grpc.pid))).not.toThrow();
  });

  test("--exe or --all: processes may come later, go ahead", () => {
    expect(() => refuseUntraceable({ pids: [redisKafka.pid], exes: [redisKafkaExe], all: false })).not.toThrow();
    expect(() => refuseUntraceable({ pids: [redisKafka.pid], exes: [], all: true })).not.toThrow();
  });

  test("a pid it cannot tell about: go ahead (the agent says what is wrong)", () => {
    expect(() => refuseUntraceable(pids(redisKafka.pid, 99_999_999))).not.toThrow();
  });
});
