/**
 * kafka-go spans end to end: a real Apache Kafka broker (test/support/kafka.ts), a Go service
 * (test/fixtures/kafka-go) writing messages from its HTTP handler with (*Writer).WriteMessages, a consumer in a
 * group reading them with FetchMessage in another process, the compiled gotel attached to both, and what a real
 * OpenTelemetry Collector received. Stripped and not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type AddressInfo } from "node:net";
import { Collector, SPAN_KIND, STATUS_CODE, useCollector, type ReceivedSpan } from "../support/collector.ts";
import { buildGoFixture, type GoBuild } from "../support/go.ts";
import { startKafka, type KafkaBroker } from "../support/kafka.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";
import { GOTEL } from "../support/cli.ts";
import { waitFor } from "../support/kernel.ts";

const sharedCollector = useCollector();
let collector: Collector;
let kafka: KafkaBroker;

beforeAll(async () => {
  collector = sharedCollector();
  kafka = await startKafka();
}, 120_000);

afterAll(async () => {
  await kafka?.stop();
});

const SCOPE = "go.opentelemetry.io/auto/github.com/segmentio/kafka-go";

/** the newest release and the oldest the module proxy serves here, stripped and not */
const VARIANTS: [string, GoBuild & { id: string }][] = [
  ["kafka-go v0.4.51, Go 1.27", { id: "n", goVersion: "1.27.4" }],
  ["kafka-go v0.4.51, Go 1.27, stripped", { id: "s", goVersion: "1.27.4", stripped: true }],
  ["kafka-go v0.4.42 (the oldest release served here), Go 1.22", { id: "o", goVersion: "1.22.12", modfile: "go.oldest.mod" }],
  ["kafka-go v0.4.42, Go 1.22, stripped", { id: "os", goVersion: "1.22.12", modfile: "go.oldest.mod", stripped: true }],
];

describe.each(VARIANTS)("%s", (_, { id, ...build }) => {
  const stripped = build.stripped === true;
  let server: { proc: Proc; base: string };
  let gotel: Proc;
  let pid: number;
  const topic = `orders-${id}`;
  const ours = (spans: ReceivedSpan[]) => spans.filter((s) => s.resource["process.pid"] === BigInt(pid));

  beforeAll(async () => {
    const exe = buildGoFixture("kafka-go", build);
    const create = Bun.spawnSync([exe, "create", kafka.address, topic], { stdout: "pipe", stderr: "pipe" });
    if (create.exitCode !== 0) throw new Error(`creating ${topic}: ${create.stderr}`);
    server = await startServer(exe, ["serve", kafka.address]);
    pid = server.proc.pid;
    gotel = await runGotel(["--pid", String(pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });
    const attached = await gotel.waitForLine(new RegExp(`attached pid=${pid} .*instrumentation="kafka-go producer"`));
    expect(attached).toContain(stripped ? "offsets=table" : "offsets=dwarf");
  }, 300_000);

  afterAll(async () => {
    await gotel?.stop();
    await server?.proc.stop();
  });

  async function produce(query: string): Promise<{ status: number; spans: ReceivedSpan[]; server: ReceivedSpan }> {
    collector.clear();
    const r = await fetch(`${server.base}/produce?${query}`);
    await r.text();
    const done = (s: ReceivedSpan[]) => ours(s).some((x) => x.kind === SPAN_KIND.SERVER);
    await collector.waitFor(done, "the request's server span", 30_000);
    await Bun.sleep(300);
    const all = ours(collector.spans());
    const servers = all.filter((s) => s.kind === SPAN_KIND.SERVER);
    expect(servers.length).toBe(1);
    return { status: r.status, spans: all.filter((s) => s.kind === SPAN_KIND.PRODUCER), server: servers[0]! };
  }

  test("three messages written from an HTTP handler: three PRODUCER spans, children of its server span", async () => {
    const { status, spans, server } = await produce(`topic=${topic}&n=3&key=order`);
    expect(status).toBe(200);
    expect(spans.map((s) => s.attributes["messaging.kafka.message.key"]).sort()).toEqual(["order-0", "order-1", "order-2"]);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(3);
    for (const s of spans) {
      expect(s.name).toBe(`send ${topic}`);
      expect(s.traceId).toBe(server.traceId);
      expect(s.parentSpanId).toBe(server.spanId);
      expect(s.status.code).toBe(STATUS_CODE.UNSET);
      expect(s.scope.name).toBe(SCOPE);
      expect(s.attributes).toEqual({
        "messaging.system.name": "kafka",
        "messaging.system": "kafka",
        "kafka.message.key": s.attributes["messaging.kafka.message.key"]!,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
        "messaging.kafka.message.key": s.attributes["messaging.kafka.message.key"]!,
        "messaging.batch.message_count": 3n,
      });
      // the span lasts the write: inside the request
      expect(s.startTimeUnixNano).toBeGreaterThanOrEqual(server.startTimeUnixNano);
      expect(s.endTimeUnixNano).toBeLessThanOrEqual(server.endTimeUnixNano);
    }
  }, 60_000);

  test("one message: no batch count", async () => {
    const { spans } = await produce(`topic=${topic}&n=1&key=single`);
    expect(spans.map((s) => [s.name, s.attributes["messaging.kafka.message.key"], s.attributes["messaging.batch.message_count"]])).toEqual([
      [`send ${topic}`, "single-0", undefined],
    ]);
  }, 60_000);

  test("a write to a topic that does not exist (no auto-creation): its span is an ERROR with the error's type", async () => {
    const { status, spans, server } = await produce("topic=no-such-topic&n=1&key=x&create=0");
    expect(status).toBe(500);
    expect(spans.length).toBe(1);
    expect(spans[0]).toMatchObject({
      name: "send no-such-topic", parentSpanId: server.spanId, status: { code: STATUS_CODE.ERROR },
    });
    expect(spans[0]!.attributes["error.type"]).toBe("kafka.Error");
    expect(spans[0]!.attributes["messaging.destination.name"]).toBe("no-such-topic");
  }, 60_000);

  test("20 messages in one call: the first 16 have spans, the other 4 are counted with their reason at stop", async () => {
    const { spans } = await produce(`topic=${topic}&n=20&key=big`);
    expect(spans.map((s) => s.attributes["messaging.kafka.message.key"]).sort()).toEqual(
      Array.from({ length: 16 }, (_, i) => `big-${i}`).sort(),
    );
    for (const s of spans) expect(s.attributes["messaging.batch.message_count"]).toBe(20n);
    expect(await gotel.stop()).toBe(0);
    const stopped = await gotel.waitForLine(/ stopped /);
    expect(stopped).toMatch(/ dropped=4 .*dropped_reasons="message past a batch's first 16 /);
  }, 60_000);

  test("a consumer in a group, another process: one CONSUMER span per message, the producer's traceparent continued and linked", async () => {
    const flows = `flows-${id}`;
    const exe = buildGoFixture("kafka-go", build);
    expect(Bun.spawnSync([exe, "create", kafka.address, flows]).exitCode).toBe(0);
    const remote = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" };
    const tp = `00-${remote.traceId}-${remote.spanId}-01`;
    // the application writes the header itself (here the kernel forbids gotel to): two messages with, one without
    for (const q of [`topic=${flows}&n=2&key=with&traceparent=${tp}`, `topic=${flows}&n=1&key=without`]) {
      expect((await fetch(`${server.base}/produce?${q}`)).status).toBe(200);
    }
    collector.clear();
    const group = `group-${id}`;
    // exec: attached before the consumer's first fetch
    const consumer = new Proc([GOTEL, "exec", "--", exe, "consume", kafka.address, flows, group, "3"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    expect(await consumer.proc.exited).toBe(0);
    await Bun.sleep(100); // its output pumped
    expect(consumer.stdout).toEqual(["with-0 value 0", "with-1 value 1", "without-0 value 0"]);
    const spans = (await collector.waitFor((s) => s.filter((x) => x.kind === SPAN_KIND.CONSUMER).length >= 3, "3 consumer spans", 10_000))
      .filter((s) => s.kind === SPAN_KIND.CONSUMER);
    await Bun.sleep(300);
    expect(collector.spans().filter((s) => s.kind === SPAN_KIND.CONSUMER).length).toBe(3);
    const byKey = new Map(spans.map((s) => [s.attributes["kafka.message.key"], s]));
    for (const [key, offset] of [["with-0", 0n], ["with-1", 1n], ["without-0", 2n]] as const) {
      const s = byKey.get(key)!;
      expect(s.name).toBe(`process ${flows}`);
      expect(s.scope.name).toBe(SCOPE);
      expect(s.attributes).toEqual({
        "messaging.system.name": "kafka", "messaging.system": "kafka",
        "messaging.operation.type": "process", "messaging.operation.name": "process",
        "messaging.destination.name": flows, "messaging.destination.partition.id": "0", "kafka.offset": offset,
        "kafka.message.key": key, "messaging.kafka.message.key": key, "messaging.consumer.group.name": group,
      });
    }
    for (const key of ["with-0", "with-1"]) {
      const s = byKey.get(key)!;
      expect({ traceId: s.traceId, parent: s.parentSpanId, links: s.links.map((l) => [l.traceId, l.spanId]) })
        .toEqual({ traceId: remote.traceId, parent: remote.spanId, links: [[remote.traceId, remote.spanId]] });
    }
    expect(byKey.get("without-0")).toMatchObject({ parentSpanId: "", links: [] });
    expect(consumer.stderr.find((l) => / stopped /.test(l))).toContain(" dropped=0 ");
  }, 150_000);

  test("ReadMessage without a group: one CONSUMER span per message, no group attribute", async () => {
    const topic = `read-${id}`;
    const exe = buildGoFixture("kafka-go", build);
    expect(Bun.spawnSync([exe, "create", kafka.address, topic]).exitCode).toBe(0);
    expect((await fetch(`${server.base}/produce?topic=${topic}&n=2&key=read`)).status).toBe(200);
    collector.clear();
    const reader = new Proc([GOTEL, "exec", "--", exe, "read", kafka.address, topic, "2"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    expect(await reader.proc.exited).toBe(0);
    await Bun.sleep(100); // its output pumped
    expect(reader.stdout).toEqual(["read-0 value 0", "read-1 value 1"]);
    const mine = (all: ReceivedSpan[]) => all.filter((x) => x.kind === SPAN_KIND.CONSUMER && x.attributes["messaging.destination.name"] === topic);
    await collector.waitFor((all) => mine(all).length >= 2, "2 consumer spans", 10_000);
    await Bun.sleep(300);
    const spans = mine(collector.spans()).sort((a, b) => Number(a.attributes["kafka.offset"]) - Number(b.attributes["kafka.offset"]));
    expect(spans.map((s) => [s.name, s.attributes])).toEqual([0n, 1n].map((offset) => [`process ${topic}`, {
      "messaging.system.name": "kafka", "messaging.system": "kafka",
      "messaging.operation.type": "process", "messaging.operation.name": "process",
      "messaging.destination.name": topic, "messaging.destination.partition.id": "0", "kafka.offset": offset,
      "kafka.message.key": `read-${offset}`, "messaging.kafka.message.key": `read-${offset}`,
    }]));
    for (const s of spans) expect(s).toMatchObject({ parentSpanId: "", links: [] });
  }, 150_000);

  test("1,000 messages under load: 1,000 PRODUCER and 1,000 CONSUMER spans, none lost, none twice", async () => {
    const load = `load-${id}`;
    const exe = buildGoFixture("kafka-go", build);
    expect(Bun.spawnSync([exe, "create", kafka.address, load]).exitCode).toBe(0);
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" };
    // a producer of its own under gotel (the describe's agent stopped in the test before), 100 calls of 10 messages
    const producer = new Proc([GOTEL, "exec", "--", exe, "serve", kafka.address], env);
    const base = `http://${(await producer.waitForLine(/^listening /)).split(" ")[1]}`;
    collector.clear();
    const calls = Array.from({ length: 100 }, (_, i) => i);
    for (let i = 0; i < calls.length; i += 10) {
      const statuses = await Promise.all(calls.slice(i, i + 10).map(async (c) => (await fetch(`${base}/produce?topic=${load}&n=10&key=m${c}`)).status));
      expect(statuses.every((st) => st === 200)).toBe(true);
    }
    const consumer = new Proc([GOTEL, "exec", "--", exe, "consume", kafka.address, load, `load-group-${id}`, "1000"], env);
    expect(await consumer.proc.exited).toBe(0);
    await producer.stop();
    const kinds = (spans: ReceivedSpan[], kind: number) => spans.filter((s) => s.kind === kind && s.attributes["messaging.destination.name"] === load);
    await collector.waitFor((s) => kinds(s, SPAN_KIND.PRODUCER).length >= 1000 && kinds(s, SPAN_KIND.CONSUMER).length >= 1000, "1,000 of each", 30_000);
    await Bun.sleep(500);
    const all = collector.spans();
    for (const kind of [SPAN_KIND.PRODUCER, SPAN_KIND.CONSUMER]) {
      const spans = kinds(all, kind);
      expect({ kind, spans: spans.length, keys: new Set(spans.map((s) => s.attributes["kafka.message.key"])).size, ids: new Set(spans.map((s) => s.spanId)).size })
        .toEqual({ kind, spans: 1000, keys: 1000, ids: 1000 });
    }
    expect(new Set(kinds(all, SPAN_KIND.CONSUMER).map((s) => s.attributes["kafka.offset"])).size).toBe(1000);
    for (const p of [producer, consumer]) expect(p.stderr.find((l) => / stopped /.test(l))).toContain(" dropped=0 ");
  }, 180_000);
});

test("a consumer group of two members in two processes: each message's CONSUMER span in the process that processed it, once", async () => {
  const exe = buildGoFixture("kafka-go", { goVersion: "1.27.4" });
  const topic = "pairs";
  const group = "pair-group";
  expect(Bun.spawnSync([exe, "create", kafka.address, `${topic}:2`]).exitCode).toBe(0);
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" };
  // both members until no message came for 3 s, each under its own gotel
  const members = [0, 1].map(() => new Proc([GOTEL, "exec", "--", exe, "consume", kafka.address, topic, group, "0"], env));
  const producer = new Proc([GOTEL, "exec", "--", exe, "serve", kafka.address], env);
  try {
    // the broker's own word that both joined and split the two partitions, so that no rebalance redelivers
    const joined = await waitFor(() => {
      const r = Bun.spawnSync([exe, "members", kafka.address, group, topic], { stdout: "pipe" });
      return r.stdout.toString().trim() === "members 2 partitions 2";
    }, 30_000);
    expect(joined).toBe(true);
    const base = `http://${(await producer.waitForLine(/^listening /)).split(" ")[1]}`;
    collector.clear();
    // the Writer's round-robin balancer puts 10 on each partition
    expect((await fetch(`${base}/produce?topic=${topic}&n=20&key=p`)).status).toBe(200);
    for (const m of members) expect(await m.wait(60_000)).toBe(0);
    const consumerSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === SPAN_KIND.CONSUMER && s.attributes["messaging.destination.name"] === topic);
    await collector.waitFor((s) => consumerSpans(s).length >= 20, "20 consumer spans", 30_000);
    await Bun.sleep(300);
    const spans = consumerSpans(collector.spans());
    const processed = members.map((m) => m.stdout.map((l) => l.split(" ")[0]!).sort());
    expect(processed.map((keys) => keys.length)).toEqual([10, 10]);
    expect(processed.flat().sort()).toEqual(Array.from({ length: 20 }, (_, i) => `p-${i}`).sort());
    // by process (gotel exec runs each member as its child): the keys each member printed, from one partition each
    const byProcess = Map.groupBy(spans, (s) => s.resource["process.pid"]);
    expect(byProcess.size).toBe(2);
    const keysOf = (group: ReceivedSpan[]) => group.map((s) => String(s.attributes["kafka.message.key"])).sort();
    const first = (keys: string[]) => keys[0]!;
    expect([...byProcess.values()].map(keysOf).sort((a, b) => first(a).localeCompare(first(b))))
      .toEqual([...processed].sort((a, b) => first(a).localeCompare(first(b))));
    expect(new Set([...byProcess.values()].map((g) => new Set(g.map((s) => s.attributes["messaging.destination.partition.id"])).size))).toEqual(new Set([1]));
    for (const s of spans) expect(s.attributes["messaging.consumer.group.name"]).toBe(group);
    for (const m of members) expect(m.stderr.find((l) => / stopped /.test(l))).toContain(" dropped=0 ");
    expect(spans).toHaveLength(20);
  } finally {
    for (const p of [...members, producer]) await p.stop();
  }
}, 150_000);

test("a producer killed while its write waits on a broker that never answers: one unfinished PRODUCER span per message, under its request's", async () => {
  const silent = createServer(() => undefined); // accepts, never answers
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const exe = buildGoFixture("kafka-go", { goVersion: "1.27.4" });
  const server = await startServer(exe, ["serve", `127.0.0.1:${(silent.address() as AddressInfo).port}`]);
  const gotel = await runGotel(["--pid", String(server.proc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" }, server.proc.pid);
  try {
    await gotel.waitForLine(new RegExp(`attached pid=${server.proc.pid} .*instrumentation="kafka-go producer"`));
    collector.clear();
    const pending = fetch(`${server.base}/produce?topic=never&n=3&key=k`).catch(() => undefined);
    await Bun.sleep(1000);
    await server.proc.stop("SIGKILL");
    await pending;
    await gotel.waitForLine(new RegExp(`detached pid=${server.proc.pid} .*reason=exited unfinished=4$`), 10_000);
    const spans = await collector.waitFor((all) => all.length >= 4, "4 unfinished spans");
    await Bun.sleep(300);
    expect(collector.spans()).toHaveLength(4);
    const request = spans.find((s) => s.kind === SPAN_KIND.SERVER)!;
    const producers = spans.filter((s) => s.kind === SPAN_KIND.PRODUCER);
    const unfinished = { code: STATUS_CODE.ERROR, message: "unfinished: the process exited before the call returned" };
    expect(request).toMatchObject({ status: unfinished, attributes: { "url.path": "/produce", "error.type": "process_exited" } });
    expect(producers.map((s) => s.attributes["kafka.message.key"]).sort()).toEqual(["k-0", "k-1", "k-2"]);
    expect(new Set(producers.map((s) => s.spanId)).size).toBe(3);
    for (const s of producers) {
      expect(s).toMatchObject({ name: "send never", traceId: request.traceId, parentSpanId: request.spanId, status: unfinished });
      expect(s.attributes).toMatchObject({ "messaging.batch.message_count": 3n, "error.type": "process_exited" });
    }
  } finally {
    await gotel.stop();
    await server.proc.stop("SIGKILL");
    silent.close();
  }
}, 60_000);
