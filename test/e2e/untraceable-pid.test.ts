/**
 * `trace --pid` / `run --pid` of processes gotel cannot instrument (a non-Go one, a Go program on go-redis and
 * kafka-go): one line saying why, exit 1, at once — before any eBPF object is loaded. With one traceable pid
 * among them (an HTTP server, a gRPC-only server) gotel goes ahead, and the attach log names the libraries it
 * does not instrument.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { expectOneLineError, GOTEL, runCommand } from "../support/cli.ts";
import { requireRoot } from "../support/kernel.ts";
import { Proc } from "../support/processes.ts";
import { REDIS_KAFKA_NOTE, startUntraceableTargets, stopUntraceableTargets, type UntraceableTargets } from "../support/untraceable.ts";

let targets: UntraceableTargets | undefined;
let sleep: Proc;
let grpc: Proc;
let redisKafka: ReturnType<typeof Bun.spawn>;
let redisKafkaExe: string;
let http: Proc;

beforeAll(async () => {
  requireRoot();
  targets = await startUntraceableTargets("http-gin");
  ({ sleep, grpc, redisKafka, redisKafkaExe, http } = targets);
}, 300_000);
afterAll(() => stopUntraceableTargets(targets));

const REDIS_KAFKA = REDIS_KAFKA_NOTE;
const HINT = "; `gotel inspect --pid N` shows what gotel instruments in a Go program";
const ENV = { PATH: "/usr/bin:/bin", OTEL_TRACES_EXPORTER: "none" };

/** gotel's one line for the given command, its exit code and how long it took */
function refused(cmd: string[], env: Record<string, string> = ENV): { line: string; code: number; ms: number } {
  const t0 = performance.now();
  const r = runCommand([GOTEL, ...cmd], { env });
  const ms = performance.now() - t0;
  expect(r.stdout).toBe("");
  return { line: expectOneLineError(r), code: r.code, ms };
}

describe.each(["trace", "run"])("gotel %s --pid", (command) => {
  const cases: [string, () => string[], () => string][] = [
    ["a non-Go process", () => ["--pid", String(sleep.pid)],
      () => `gotel: nothing to trace: process ${sleep.pid} (${readlinkSync(`/proc/${sleep.pid}/exe`)}) is not a Go program (no Go build info)${HINT}`],
    ["a Go program on go-redis and kafka-go", () => ["--pid", String(redisKafka.pid)],
      () => `gotel: nothing to trace: process ${redisKafka.pid} (${redisKafkaExe}) is a Go program in which gotel instruments nothing: ${REDIS_KAFKA}${HINT}`],
    ["a thread of that program", () => ["--pid", String(thread(redisKafka.pid))],
      () => `gotel: nothing to trace: process ${redisKafka.pid} (${redisKafkaExe}, the process of thread ${thread(redisKafka.pid)}) is a Go program in which gotel instruments nothing: ${REDIS_KAFKA}${HINT}`],
    ["the two of them", () => ["--pid", String(sleep.pid), "--pid", String(redisKafka.pid)],
      () => `gotel: nothing to trace: process ${sleep.pid} (${readlinkSync(`/proc/${sleep.pid}/exe`)}) is not a Go program (no Go build info); ` +
        `process ${redisKafka.pid} (${redisKafkaExe}) is a Go program in which gotel instruments nothing: ${REDIS_KAFKA}${HINT}`],
  ];
  test.each(cases)("%s: one line saying why, exit 1, within a second", (_what, args, line) => {
    const r = refused([command, ...args(), ...(command === "trace" ? ["--duration", "30s"] : [])]);
    expect(r.line).toBe(line());
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(1000);
  });

  test("OTEL_GO_AUTO_TARGET_PID of the go-redis program: the same", () => {
    const r = refused([command], { ...ENV, OTEL_GO_AUTO_TARGET_PID: String(redisKafka.pid) });
    expect(r.line).toBe(`gotel: nothing to trace: process ${redisKafka.pid} (${redisKafkaExe}) is a Go program in which gotel instruments nothing: ${REDIS_KAFKA}${HINT}`);
    expect(r.code).toBe(1);
  });
});

test("run --pid of a gRPC-only server and of a gin server: both attached, gin's routes too; nothing named as not instrumented", async () => {
  const g = new Proc([GOTEL, "run", "--pid", String(grpc.pid), "--pid", String(http.pid)], ENV);
  try {
    await g.waitForLine(/gotel is running/, 20_000);
    expect(g.countLines(new RegExp(`attached pid=${grpc.pid} exe=\\S+ go=\\S+ instrumentation="gRPC server" `))).toBe(1);
    expect(g.countLines(new RegExp(`attached pid=${http.pid} `))).toBeGreaterThan(0);
    // gin's requests are traced through net/http, and their routes read from gin
    expect(g.countLines(new RegExp(`attached pid=${http.pid} exe=\\S+ go=\\S+ instrumentation="gin routes" `))).toBe(1);
    expect(g.countLines(/not instrumented pid=/)).toBe(0);
  } finally {
    expect(await g.stop()).toBe(0);
  }
}, 60_000);

test("run --exe of the go-redis program waits for processes (no pre-flight refusal) and names its libraries when it skips it", async () => {
  const g = new Proc([GOTEL, "run", "--exe", redisKafkaExe], ENV);
  try {
    const skip = await g.waitForLine(/not tracing a process: /, 20_000);
    expect(skip).toMatch(/gotel does not instrument its libraries yet pid=\d+ exe=\S+ modules="github\.com\/redis\/go-redis\/v9 v9\.7\.0"$/);
    await g.waitForLine(/gotel is running/, 20_000);
  } finally {
    expect(await g.stop()).toBe(0);
  }
}, 60_000);

/** a thread of pid other than its leader */
function thread(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).map(Number).find((t) => t !== pid)!;
}
