/**
 * Sarama spans end to end: a real Apache Kafka broker (test/support/kafka.ts), a Go service
 * (test/fixtures/sarama) producing from its HTTP handler through a SyncProducer (SendMessage, SendMessages) or an
 * AsyncProducer, a ConsumerGroup member marking what it processed in another process, the compiled gotel
 * attached to both, and what a real OpenTelemetry Collector received. Stripped and not, newest and oldest release.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
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

const SCOPE = "go.opentelemetry.io/auto/github.com/IBM/sarama";
const REMOTE = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" };
const TRACEPARENT = `00-${REMOTE.traceId}-${REMOTE.spanId}-01`;

/** the newest release and the oldest under each of its names, stripped and not */
const VARIANTS: [string, GoBuild & { id: string }][] = [
  ["Sarama v1.62.0, Go 1.27", { id: "n", goVersion: "1.27.4" }],
  ["Sarama v1.62.0, Go 1.27, stripped", { id: "s", goVersion: "1.27.4", stripped: true }],
  ["Sarama v1.40.1 (the oldest IBM/sarama release), Go 1.22", { id: "o", goVersion: "1.22.12", modfile: "go.oldest.mod" }],
  ["Sarama v1.40.1, Go 1.22, stripped", { id: "os", goVersion: "1.22.12", modfile: "go.oldest.mod", stripped: true }],
  // the same fixture on github.com/Shopify/sarama (its name before v1.40), through a module that names its types
  ["Sarama v1.38.1 as github.com/Shopify/sarama, Go 1.22", { id: "sh", goVersion: "1.22.12", modfile: "go.shopify.mod" }],
  ["Sarama v1.38.1 as github.com/Shopify/sarama, Go 1.22, stripped", { id: "shs", goVersion: "1.22.12", modfile: "go.shopify.mod", stripped: true }],
];

const env = () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });

function create(exe: string, ...topics: string[]): void {
  const r = Bun.spawnSync([exe, "create", kafka.address, ...topics], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`creating ${topics.join(" ")}: ${r.stderr}`);
}

describe.each(VARIANTS)("%s", (_, { id, ...build }) => {
  const stripped = build.stripped === true;
  let exe: string;
  let server: { proc: Proc; base: string };
  let gotel: Proc;
  let pid: number;
  const topic = `sarama-orders-${id}`;
  const ours = (spans: ReceivedSpan[]) => spans.filter((s) => s.resource["process.pid"] === BigInt(pid));

  beforeAll(async () => {
    exe = buildGoFixture("sarama", build);
    create(exe, topic);
    server = await startServer(exe, ["serve", kafka.address]);
    pid = server.proc.pid;
    gotel = await runGotel(["--pid", String(pid)], env());
    const attached = await gotel.waitForLine(new RegExp(`attached pid=${pid} .*instrumentation="Sarama producer"`));
    expect(attached).toContain(stripped ? "offsets=table" : "offsets=dwarf");
  }, 300_000);

  afterAll(async () => {
    await gotel?.stop();
    await server?.proc.stop();
  });

  async function produce(query: string): Promise<{ status: number; body: string; spans: ReceivedSpan[]; server: ReceivedSpan }> {
    collector.clear();
    const r = await fetch(`${server.base}/produce?${query}`);
    const body = await r.text();
    const done = (s: ReceivedSpan[]) => ours(s).some((x) => x.kind === SPAN_KIND.SERVER);
    await collector.waitFor(done, "the request's server span", 30_000);
    await Bun.sleep(300);
    const all = ours(collector.spans());
    const servers = all.filter((s) => s.kind === SPAN_KIND.SERVER);
    expect(servers.length).toBe(1);
    return { status: r.status, body, spans: all.filter((s) => s.kind === SPAN_KIND.PRODUCER), server: servers[0]! };
  }

  const keyOf = (s: ReceivedSpan) => s.attributes["kafka.message.key"];

  test("three messages in one SendMessages call from an HTTP handler: three PRODUCER spans, children of its server span", async () => {
    const { status, spans, server } = await produce(`topic=${topic}&n=3&key=order`);
    expect(status).toBe(200);
    expect(spans.map(keyOf).sort()).toEqual(["order-0", "order-1", "order-2"]);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(3);
    expect(new Set(spans.map((s) => s.attributes["kafka.offset"])).size).toBe(3);
    for (const s of spans) {
      expect(s.name).toBe(`send ${topic}`);
      expect(s.traceId).toBe(server.traceId);
      expect(s.parentSpanId).toBe(server.spanId);
      expect(s.status.code).toBe(STATUS_CODE.UNSET);
      expect(s.scope.name).toBe(SCOPE);
      const key = keyOf(s)!;
      expect(s.attributes).toEqual({
        "messaging.system.name": "kafka", "messaging.system": "kafka",
        "messaging.operation.type": "send", "messaging.operation.name": "send",
        "messaging.destination.name": topic, "messaging.destination.partition.id": "0",
        "kafka.offset": s.attributes["kafka.offset"]!, "kafka.message.key": key, "messaging.kafka.message.key": key,
        "messaging.batch.message_count": 3n,
      });
      expect(typeof s.attributes["kafka.offset"]).toBe("bigint");
      expect(s.startTimeUnixNano).toBeGreaterThanOrEqual(server.startTimeUnixNano);
      expect(s.endTimeUnixNano).toBeLessThanOrEqual(server.endTimeUnixNano);
    }
  }, 60_000);

  test("one message through SendMessage: the broker's partition and offset, no batch count", async () => {
    const before = await produce(`topic=${topic}&n=1&key=first`);
    const after = await produce(`topic=${topic}&n=1&key=second`);
    for (const { spans, server } of [before, after]) {
      expect(spans.map((s) => [s.name, keyOf(s), s.attributes["messaging.batch.message_count"], s.parentSpanId]))
        .toEqual([[`send ${topic}`, spans[0] && keyOf(spans[0]), undefined, server.spanId]]);
    }
    expect([keyOf(before.spans[0]!), keyOf(after.spans[0]!)]).toEqual(["first-0", "second-0"]);
    // the next message on the partition
    expect(after.spans[0]!.attributes["kafka.offset"]).toBe((before.spans[0]!.attributes["kafka.offset"] as bigint) + 1n);
  }, 60_000);

  test("an AsyncProducer's messages: a PRODUCER span each, acknowledged; the parent only from a traceparent the application put in", async () => {
    const plain = await produce(`topic=${topic}&n=2&key=async&mode=async`);
    expect(plain.status).toBe(200);
    expect(plain.spans.map(keyOf).sort()).toEqual(["async-0", "async-1"]);
    for (const s of plain.spans) {
      // Sarama's own goroutine: no context leads back to the handler
      expect({ parent: s.parentSpanId, name: s.name, partition: s.attributes["messaging.destination.partition.id"], batch: s.attributes["messaging.batch.message_count"] })
        .toEqual({ parent: "", name: `send ${topic}`, partition: "0", batch: undefined });
      expect(typeof s.attributes["kafka.offset"]).toBe("bigint");
    }
    const carried = await produce(`topic=${topic}&n=2&key=carried&mode=async&traceparent=${TRACEPARENT}`);
    expect(carried.spans.map((s) => [keyOf(s), s.traceId, s.parentSpanId]).sort())
      .toEqual([["carried-0", REMOTE.traceId, REMOTE.spanId], ["carried-1", REMOTE.traceId, REMOTE.spanId]]);
  }, 60_000);

  test("a SyncProducer's message carrying the application's traceparent: that context is its parent, not the handler's", async () => {
    const { spans } = await produce(`topic=${topic}&n=1&key=own&traceparent=${TRACEPARENT}`);
    expect(spans.map((s) => [keyOf(s), s.traceId, s.parentSpanId])).toEqual([["own-0", REMOTE.traceId, REMOTE.spanId]]);
  }, 60_000);

  test("messages to a topic that does not exist (no auto-creation), SendMessage, SendMessages and async: ERROR spans with each message's error's type", async () => {
    for (const [mode, n] of [["sync", 1], ["sync", 2], ["async", 1]] as const) {
      const { status, body, spans, server } = await produce(`topic=no-such-topic-${id}&n=${n}&key=x&create=0&mode=${mode}`);
      expect(status).toBe(500);
      // the Go type of the error Sarama gave the application for the (first) message: it joins its metadata errors
      const type = body.split(":")[0]!;
      expect(type).toMatch(/^\*?[a-z]+\.[A-Za-z]+$/);
      expect(spans.map((s) => s.attributes["kafka.message.key"]).sort()).toEqual(n === 1 ? ["x-0"] : ["x-0", "x-1"]);
      for (const s of spans) {
        expect(s).toMatchObject({ name: `send no-such-topic-${id}`, status: { code: STATUS_CODE.ERROR } });
        expect(s.parentSpanId).toBe(mode === "sync" ? server.spanId : "");
        // SendMessages: each span the error of its own message, read from the ProducerErrors
        expect(s.attributes["error.type"]).toBe(type);
        expect(s.attributes["kafka.offset"]).toBeUndefined();
        expect(s.attributes["messaging.batch.message_count"]).toBe(n === 1 ? undefined : 2n);
      }
    }
  }, 60_000);

  test("a consumer group member in another process: one CONSUMER span per message it marks, the producer's traceparent continued and linked", async () => {
    const flows = `sarama-flows-${id}`;
    create(exe, flows);
    for (const q of [`topic=${flows}&n=2&key=with&traceparent=${TRACEPARENT}`, `topic=${flows}&n=1&key=without`]) {
      expect((await fetch(`${server.base}/produce?${q}`)).status).toBe(200);
    }
    collector.clear();
    const group = `sarama-group-${id}`;
    const consumer = new Proc([GOTEL, "exec", "--", exe, "consume", kafka.address, flows, group, "3"], env());
    expect(await consumer.proc.exited).toBe(0);
    await Bun.sleep(100);
    // SendMessages may retry a message the just-created topic's leader refused, after the other was written: the
    // broker's order (the offsets, read in order from the one partition) is what the consumer printed
    expect([...consumer.stdout].sort()).toEqual(["with-0 value 0", "with-1 value 1", "without-0 value 0"]);
    const order = consumer.stdout.map((l) => l.split(" ")[0]!);
    expect(order[2]).toBe("without-0"); // produced by a later request
    const consumers = (s: ReceivedSpan[]) => s.filter((x) => x.kind === SPAN_KIND.CONSUMER);
    await collector.waitFor((s) => consumers(s).length >= 3, "3 consumer spans", 10_000);
    await Bun.sleep(300);
    const spans = consumers(collector.spans());
    expect(spans.length).toBe(3);
    const byKey = new Map(spans.map((s) => [keyOf(s), s]));
    for (const [i, key] of order.entries()) {
      const s = byKey.get(key)!;
      const offset = BigInt(i);
      expect(s.name).toBe(`process ${flows}`);
      expect(s.scope.name).toBe(SCOPE);
      expect(s.attributes).toEqual({
        "messaging.system.name": "kafka", "messaging.system": "kafka",
        "messaging.operation.type": "process", "messaging.operation.name": "process",
        "messaging.destination.name": flows, "messaging.destination.partition.id": "0", "kafka.offset": offset,
        "kafka.message.key": key, "messaging.kafka.message.key": key, "messaging.consumer.group.name": group,
      });
      expect(s.endTimeUnixNano).toBeGreaterThanOrEqual(s.startTimeUnixNano);
    }
    for (const key of ["with-0", "with-1"]) {
      const s = byKey.get(key)!;
      expect({ traceId: s.traceId, parent: s.parentSpanId, links: s.links.map((l) => [l.traceId, l.spanId]) })
        .toEqual({ traceId: REMOTE.traceId, parent: REMOTE.spanId, links: [[REMOTE.traceId, REMOTE.spanId]] });
    }
    expect(byKey.get("without-0")).toMatchObject({ parentSpanId: "", links: [] });
    // one after the other on one goroutine: each starts no earlier than the previous one ended
    const ordered = order.map((k) => byKey.get(k)!);
    for (let i = 1; i < ordered.length; i++) expect(ordered[i]!.startTimeUnixNano).toBeGreaterThanOrEqual(ordered[i - 1]!.endTimeUnixNano);
    expect(consumer.stderr.find((l) => / stopped /.test(l))).toContain(" dropped=0 ");
  }, 150_000);

  test("1,000 messages under load: 1,000 PRODUCER and 1,000 CONSUMER spans, none lost, none twice", async () => {
    const load = `sarama-load-${id}`;
    create(exe, load);
    // a producer of its own under gotel, 100 SendMessages calls of 10, then 200 messages through the AsyncProducer
    const producer = new Proc([GOTEL, "exec", "--", exe, "serve", kafka.address], env());
    const base = `http://${(await producer.waitForLine(/^listening /)).split(" ")[1]}`;
    collector.clear();
    const calls = Array.from({ length: 100 }, (_, i) => i);
    for (let i = 0; i < calls.length; i += 10) {
      const statuses = await Promise.all(calls.slice(i, i + 10).map(async (c) => (await fetch(`${base}/produce?topic=${load}&n=10&key=m${c}`)).status));
      expect(statuses.every((st) => st === 200)).toBe(true);
    }
    const consumer = new Proc([GOTEL, "exec", "--", exe, "consume", kafka.address, load, `sarama-load-group-${id}`, "1000"], env());
    expect(await consumer.proc.exited).toBe(0);
    await producer.stop();
    const kinds = (spans: ReceivedSpan[], kind: number) => spans.filter((s) => s.kind === kind && s.attributes["messaging.destination.name"] === load);
    await collector.waitFor((s) => kinds(s, SPAN_KIND.PRODUCER).length >= 1000 && kinds(s, SPAN_KIND.CONSUMER).length >= 1000, "1,000 of each", 30_000);
    await Bun.sleep(500);
    const all = collector.spans();
    for (const kind of [SPAN_KIND.PRODUCER, SPAN_KIND.CONSUMER]) {
      const spans = kinds(all, kind);
      expect({ kind, spans: spans.length, keys: new Set(spans.map(keyOf)).size, ids: new Set(spans.map((s) => s.spanId)).size, offsets: new Set(spans.map((s) => s.attributes["kafka.offset"])).size })
        .toEqual({ kind, spans: 1000, keys: 1000, ids: 1000, offsets: 1000 });
    }
    for (const p of [producer, consumer]) expect(p.stderr.find((l) => / stopped /.test(l))).toContain(" dropped=0 ");
  }, 180_000);

  // last: it stops the describe's gotel
  test("20 messages in one SendMessages call: the first 16 have spans, each its own offset; the other 4 are counted at stop", async () => {
    const { status, spans, server } = await produce(`topic=${topic}&n=20&key=big`);
    expect(status).toBe(200);
    expect(spans.map(keyOf).sort()).toEqual(Array.from({ length: 16 }, (_, i) => `big-${i}`).sort());
    expect(new Set(spans.map((s) => s.attributes["kafka.offset"])).size).toBe(16);
    for (const s of spans) {
      expect(s).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId, status: { code: STATUS_CODE.UNSET } });
      expect(s.attributes["messaging.batch.message_count"]).toBe(20n);
    }
    expect(await gotel.stop()).toBe(0);
    const stopped = await gotel.waitForLine(/ stopped /);
    expect(stopped).toMatch(/ dropped=4 .*dropped_reasons="message past a batch's first 16 /);
  }, 60_000);
});

test("a consumer group of two members in two processes: each message's CONSUMER span in the process that processed it, once", async () => {
  const exe = buildGoFixture("sarama", { goVersion: "1.27.4" });
  const topic = "sarama-pairs";
  const group = "sarama-pair-group";
  create(exe, `${topic}:2`);
  const members = [0, 1].map(() => new Proc([GOTEL, "exec", "--", exe, "consume", kafka.address, topic, group, "0"], env()));
  const producer = new Proc([GOTEL, "exec", "--", exe, "serve", kafka.address], env());
  try {
    const joined = await waitFor(() => {
      const r = Bun.spawnSync([exe, "members", kafka.address, group, topic], { stdout: "pipe" });
      return r.stdout.toString().trim() === "members 2 partitions 2";
    }, 30_000);
    expect(joined).toBe(true);
    const base = `http://${(await producer.waitForLine(/^listening /)).split(" ")[1]}`;
    collector.clear();
    // Sarama's default partitioner hashes the key: 20 keys land on both partitions
    expect((await fetch(`${base}/produce?topic=${topic}&n=20&key=p`)).status).toBe(200);
    for (const m of members) expect(await m.wait(60_000)).toBe(0);
    const consumerSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === SPAN_KIND.CONSUMER && s.attributes["messaging.destination.name"] === topic);
    await collector.waitFor((s) => consumerSpans(s).length >= 20, "20 consumer spans", 30_000);
    await Bun.sleep(300);
    const spans = consumerSpans(collector.spans());
    const processed = members.map((m) => m.stdout.map((l) => l.split(" ")[0]!).sort());
    expect(processed.every((keys) => keys.length > 0)).toBe(true);
    expect(processed.flat().sort()).toEqual(Array.from({ length: 20 }, (_, i) => `p-${i}`).sort());
    const byProcess = Map.groupBy(spans, (s) => s.resource["process.pid"]);
    expect(byProcess.size).toBe(2);
    const keysOf = (g: ReceivedSpan[]) => g.map((s) => String(s.attributes["kafka.message.key"])).sort();
    const first = (keys: string[]) => keys[0]!;
    expect([...byProcess.values()].map(keysOf).sort((a, b) => first(a).localeCompare(first(b))))
      .toEqual([...processed].sort((a, b) => first(a).localeCompare(first(b))));
    for (const s of spans) expect(s.attributes["messaging.consumer.group.name"]).toBe(group);
    for (const m of members) expect(m.stderr.find((l) => / stopped /.test(l))).toContain(" dropped=0 ");
    expect(spans).toHaveLength(20);
  } finally {
    for (const p of [...members, producer]) await p.stop();
  }
}, 150_000);

test("a producer killed while the broker does not answer: one unfinished PRODUCER span per message in flight, sync and async", async () => {
  const exe = buildGoFixture("sarama", { goVersion: "1.27.4" });
  const topic = "sarama-stalled";
  create(exe, topic);
  const server = await startServer(exe, ["serve", kafka.address]);
  const gotel = await runGotel(["--pid", String(server.proc.pid)], env(), server.proc.pid);
  try {
    await gotel.waitForLine(new RegExp(`attached pid=${server.proc.pid} .*instrumentation="Sarama producer"`));
    // warm: metadata and connections made, so that the calls below wait on the produce requests themselves
    expect((await fetch(`${server.base}/produce?topic=${topic}&n=1&key=warm`)).status).toBe(200);
    expect((await fetch(`${server.base}/produce?topic=${topic}&n=1&key=warm&mode=async`)).status).toBe(200);
    await Bun.sleep(500);
    collector.clear();
    process.kill(kafka.pid, "SIGSTOP");
    try {
      const pending = [
        fetch(`${server.base}/produce?topic=${topic}&n=3&key=sync`).catch(() => undefined),
        fetch(`${server.base}/produce?topic=${topic}&n=2&key=async&mode=async`).catch(() => undefined),
      ];
      await Bun.sleep(1000);
      await server.proc.stop("SIGKILL");
      await Promise.all(pending);
    } finally {
      process.kill(kafka.pid, "SIGCONT");
    }
    await gotel.waitForLine(new RegExp(`detached pid=${server.proc.pid} .*reason=exited unfinished=7$`), 10_000);
    const spans = await collector.waitFor((all) => all.length >= 7, "7 unfinished spans");
    await Bun.sleep(300);
    expect(collector.spans()).toHaveLength(7);
    const unfinished = { code: STATUS_CODE.ERROR, message: "unfinished: the process exited before the call returned" };
    const requests = spans.filter((s) => s.kind === SPAN_KIND.SERVER);
    expect(requests.map((s) => s.status)).toEqual([unfinished, unfinished]);
    const producers = spans.filter((s) => s.kind === SPAN_KIND.PRODUCER);
    expect(producers.map((s) => s.attributes["kafka.message.key"]).sort()).toEqual(["async-0", "async-1", "sync-0", "sync-1", "sync-2"]);
    expect(new Set(producers.map((s) => s.spanId)).size).toBe(5);
    const syncRequest = requests.find((r) => producers.some((p) => p.attributes["kafka.message.key"] === "sync-0" && p.parentSpanId === r.spanId));
    expect(syncRequest).toBeDefined();
    for (const s of producers) {
      const sync = String(s.attributes["kafka.message.key"]).startsWith("sync");
      expect(s).toMatchObject({ name: `send ${topic}`, status: unfinished, parentSpanId: sync ? syncRequest!.spanId : "" });
      expect(s.attributes).toMatchObject({ "error.type": "process_exited" });
      expect(s.attributes["kafka.offset"]).toBeUndefined();
    }
  } finally {
    await gotel.stop();
    await server.proc.stop("SIGKILL");
  }
}, 90_000);

test("a message sent from a gRPC handler: its PRODUCER span is the child of the call's SERVER span", async () => {
  const exe = buildGoFixture("sarama", { goVersion: "1.27.4" });
  const topic = "sarama-from-grpc";
  create(exe, topic);
  const server = new Proc([GOTEL, "exec", "--", exe, "grpc", kafka.address], env());
  try {
    const address = (await server.waitForLine(/^listening /)).split(" ")[1]!;
    collector.clear();
    for (let i = 0; i < 2; i++) {
      const call = Bun.spawnSync([exe, "check", address, topic], { stdout: "pipe", stderr: "pipe" });
      expect(`${call.stdout}${call.stderr}`.trim()).toBe("SERVING");
    }
    // gotel exec: the server is its child; its spans are the calls of this service and the messages to this topic
    const ours = (s: ReceivedSpan[]) => s.filter((x) => (x.kind === SPAN_KIND.SERVER && x.name === "grpc.health.v1.Health/Check") ||
      x.attributes["messaging.destination.name"] === topic);
    await collector.waitFor((s) => ours(s).length >= 4, "2 calls' spans", 15_000);
    await Bun.sleep(300);
    const spans = ours(collector.spans());
    const calls = spans.filter((s) => s.kind === SPAN_KIND.SERVER);
    const producers = spans.filter((s) => s.kind === SPAN_KIND.PRODUCER);
    expect(calls.map((s) => s.name)).toEqual(["grpc.health.v1.Health/Check", "grpc.health.v1.Health/Check"]);
    expect(producers.map((p) => [p.name, p.attributes["kafka.message.key"]])).toEqual([[`send ${topic}`, "grpc"], [`send ${topic}`, "grpc"]]);
    // each message under its own call
    expect(producers.map((p) => p.parentSpanId).sort()).toEqual(calls.map((c) => c.spanId).sort());
    for (const p of producers) expect(p.traceId).toBe(calls.find((c) => c.spanId === p.parentSpanId)!.traceId);
  } finally {
    await server.stop();
  }
}, 90_000);

test("an AsyncProducer message the broker refuses (Sarama's failure path gotel cannot see): swept after GOTEL_KAFKA_ACK_TIMEOUT and counted, not left in flight", async () => {
  const exe = buildGoFixture("sarama", { goVersion: "1.27.4" });
  const topic = "sarama-small";
  create(exe, `${topic}:1:300`); // the broker refuses messages over 300 bytes
  const server = await startServer(exe, ["serve", kafka.address]);
  const gotel = await runGotel(["--pid", String(server.proc.pid)], { ...env(), GOTEL_KAFKA_ACK_TIMEOUT: "1000" }, server.proc.pid);
  try {
    collector.clear();
    const fits = await fetch(`${server.base}/produce?topic=${topic}&n=1&key=fits&mode=async`);
    expect(fits.status).toBe(200);
    const big = await fetch(`${server.base}/produce?topic=${topic}&n=1&key=big&mode=async&size=1000`);
    expect(big.status).toBe(500);
    expect(await big.text()).toContain("sarama.KError: kafka server: Message was too large");
    // the sweep runs every 5 s: twice past the timeout
    await Bun.sleep(11_000);
    expect(await gotel.stop()).toBe(0);
    const stopped = await gotel.waitForLine(/ stopped /);
    expect(stopped).toMatch(/ dropped=1 .*dropped_reasons="message whose end was not seen"/);
    await Bun.sleep(300);
    const producers = collector.spans().filter((s) => s.kind === SPAN_KIND.PRODUCER && s.attributes["messaging.destination.name"] === topic);
    expect(producers.map((s) => [s.attributes["kafka.message.key"], s.status.code])).toEqual([["fits-0", STATUS_CODE.UNSET]]);
  } finally {
    await gotel.stop();
    await server.proc.stop("SIGKILL");
  }
}, 90_000);
