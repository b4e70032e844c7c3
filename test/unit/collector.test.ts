/**
 * The real-collector harness (test/support/collector.ts): builds the test collector (scripts/build-collector.sh,
 * a no-op when up to date), sends spans to it with the OpenTelemetry JS SDK and checks that the harness returns
 * exactly those spans. No root needed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { context, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type HrTime, type Link, type SpanContext } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type TimedEvent } from "@opentelemetry/sdk-trace-base";
import { buildCollector, Collector, SPAN_KIND, STATUS_CODE, type ReceivedSpan } from "../support/collector.ts";

let collector: Collector;

beforeAll(async () => {
  await buildCollector(); // minutes on a fresh machine (module downloads), milliseconds afterwards
  collector = await Collector.start();
}, 15 * 60_000);

afterAll(async () => {
  await collector?.stop();
});

function exportSpans(url: string, spans: ReadableSpan[], timeoutMillis = 2_000): Promise<ExportResult> {
  const exporter = new OTLPTraceExporter({ url, timeoutMillis });
  return new Promise<ExportResult>((resolve) => exporter.export(spans, resolve)).finally(() => exporter.shutdown());
}

const hr = (ns: bigint): HrTime => [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];

/** A ReadableSpan built by hand, with chosen ids and nanosecond timestamps: the way gotel hands spans to the SDK. */
function readableSpan(s: {
  name: string; kind: SpanKind; traceId: string; spanId: string; parent?: SpanContext; startNs: bigint; endNs: bigint;
  attributes?: Attributes; status?: { code: SpanStatusCode; message?: string }; links?: Link[]; events?: TimedEvent[];
  resource?: Attributes; scope?: { name: string; version?: string };
}): ReadableSpan {
  const ctx: SpanContext = { traceId: s.traceId, spanId: s.spanId, traceFlags: TraceFlags.SAMPLED };
  const span: ReadableSpan = {
    name: s.name,
    kind: s.kind,
    spanContext: () => ctx,
    startTime: hr(s.startNs),
    endTime: hr(s.endNs),
    duration: hr(s.endNs - s.startNs),
    ended: true,
    status: s.status ?? { code: SpanStatusCode.UNSET },
    attributes: s.attributes ?? {},
    links: s.links ?? [],
    events: s.events ?? [],
    resource: resourceFromAttributes(s.resource ?? { "service.name": "hand-made" }),
    instrumentationScope: s.scope ?? { name: "gotel.test" },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
  if (s.parent) return { ...span, parentSpanContext: s.parent };
  return span;
}

describe("Collector harness", () => {
  test("endpoints are loopback URLs on two distinct ports", () => {
    expect(collector.grpcEndpoint).toBe(`http://127.0.0.1:${collector.grpcPort}`);
    expect(collector.grpcAddress).toBe(`127.0.0.1:${collector.grpcPort}`);
    expect(collector.httpEndpoint).toBe(`http://127.0.0.1:${collector.httpPort}`);
    expect(collector.httpTracesUrl).toBe(`http://127.0.0.1:${collector.httpPort}/v1/traces`);
    expect(collector.grpcPort).not.toBe(collector.httpPort);
    expect(collector.running).toBe(true);
    expect(collector.log()).toContain("Everything is ready");
  });

  test("spans from the SDK's tracer (OTLP http/json) come back exactly", async () => {
    collector.clear();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        "service.name": "harness-test",
        "process.pid": 4242,
        "deployment.production": false,
        "host.cpu.ratio": 0.25,
      }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: collector.httpTracesUrl }))],
    });
    const tracer = provider.getTracer("harness-scope", "1.2.3");
    const t0 = 1_700_000_000_123_456_789n; // nanoseconds: checks that no precision is lost on the way

    const server = tracer.startSpan("GET /users/{id}", {
      kind: SpanKind.SERVER,
      startTime: hr(t0),
      attributes: {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "http.server.request.duration_ratio": 1.5,
        "url.scheme.secure": true,
        "empty.string": "",
        "zero.int": 0,
        "false.bool": false,
        "tags": ["a", "b"],
        "ports": [80, 443],
      },
    });
    const client = tracer.startSpan(
      "SELECT users",
      { kind: SpanKind.CLIENT, startTime: hr(t0 + 1_000n), attributes: { "db.query.text": "SELECT * FROM users WHERE id = ?" } },
      trace.setSpan(context.active(), server),
    );
    client.addEvent("exception", { "exception.message": "boom" }, hr(t0 + 1_500n));
    client.setStatus({ code: SpanStatusCode.ERROR, message: "no rows" });
    client.end(hr(t0 + 2_000n));
    server.setStatus({ code: SpanStatusCode.OK });
    server.end(hr(t0 + 3_000n));
    await provider.forceFlush();

    const spans = await collector.waitForSpans(2);
    expect(spans).toHaveLength(2);
    const byName = (n: string): ReceivedSpan => {
      const s = spans.find((x) => x.name === n);
      if (!s) throw new Error(`no span ${n}`);
      return s;
    };
    const resource = { "service.name": "harness-test", "process.pid": 4242n, "deployment.production": false, "host.cpu.ratio": 0.25 };
    const s = byName("GET /users/{id}");
    const c = byName("SELECT users");

    expect(s.traceId).toBe(server.spanContext().traceId);
    expect(s.spanId).toBe(server.spanContext().spanId);
    expect(s.parentSpanId).toBe("");
    expect(s.kind).toBe(SPAN_KIND.SERVER);
    expect(s.startTimeUnixNano).toBe(t0);
    expect(s.endTimeUnixNano).toBe(t0 + 3_000n);
    expect(s.status).toEqual({ code: STATUS_CODE.OK });
    expect(s.attributes).toEqual({
      "http.request.method": "GET",
      "http.response.status_code": 200n, // an int attribute: bigint
      "http.server.request.duration_ratio": 1.5, // a double: number
      "url.scheme.secure": true,
      "empty.string": "",
      "zero.int": 0n,
      "false.bool": false,
      "tags": ["a", "b"],
      "ports": [80n, 443n],
    });
    expect(s.resource).toEqual(resource);
    expect(s.scope).toEqual({ name: "harness-scope", version: "1.2.3" });
    expect(s.flags & 0xff).toBe(TraceFlags.SAMPLED);

    expect(c.traceId).toBe(server.spanContext().traceId);
    expect(c.spanId).toBe(client.spanContext().spanId);
    expect(c.parentSpanId).toBe(server.spanContext().spanId);
    expect(c.kind).toBe(SPAN_KIND.CLIENT);
    expect(c.startTimeUnixNano).toBe(t0 + 1_000n);
    expect(c.endTimeUnixNano).toBe(t0 + 2_000n);
    expect(c.status).toEqual({ code: STATUS_CODE.ERROR, message: "no rows" });
    expect(c.attributes).toEqual({ "db.query.text": "SELECT * FROM users WHERE id = ?" });
    expect(c.events).toEqual([{ name: "exception", timeUnixNano: t0 + 1_500n, attributes: { "exception.message": "boom" } }]);
    expect(c.resource).toEqual(s.resource);
    await provider.shutdown();
  });

  test("hand-built ReadableSpans keep their ids, remote parent, kinds, links and timestamps", async () => {
    collector.clear();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const remoteParent: SpanContext = { traceId, spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED, isRemote: true };
    const linked: SpanContext = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED };
    const t0 = 1_750_000_000_000_000_001n;
    const resource = { "service.name": "api", "process.runtime.name": "go", "telemetry.distro.name": "gotel" };
    const scope = { name: "go.opentelemetry.io/auto/net/http", version: "0.1.0" };
    const producer = readableSpan({
      name: "orders publish", kind: SpanKind.PRODUCER, traceId, spanId: "1111111111111111", parent: remoteParent,
      startNs: t0, endNs: t0 + 999_999_999n, attributes: { "messaging.system": "kafka", "messaging.batch.message_count": 3 },
      links: [{ context: linked, attributes: { "link.kind": "follows" } }], resource, scope,
    });
    const consumer = readableSpan({
      name: "orders process", kind: SpanKind.CONSUMER, traceId, spanId: "2222222222222222",
      parent: { traceId, spanId: "1111111111111111", traceFlags: TraceFlags.SAMPLED },
      startNs: t0 + 1_000_000_000n, endNs: t0 + 1_000_000_001n, status: { code: SpanStatusCode.OK }, resource, scope,
    });
    const internal = readableSpan({
      name: "work", kind: SpanKind.INTERNAL, traceId, spanId: "3333333333333333",
      parent: { traceId, spanId: "2222222222222222", traceFlags: TraceFlags.SAMPLED },
      startNs: t0 + 1_000_000_000n, endNs: t0 + 1_000_000_000n, resource: { "service.name": "worker" }, scope: { name: "bare" },
    });
    expect((await exportSpans(collector.httpTracesUrl, [producer, consumer, internal])).code).toBe(ExportResultCode.SUCCESS);

    const spans = await collector.waitForSpans(3);
    const sorted = [...spans].sort((a, b) => a.spanId.localeCompare(b.spanId));
    expect(sorted.map((s) => [s.name, s.kind, s.traceId, s.spanId, s.parentSpanId, s.startTimeUnixNano, s.endTimeUnixNano])).toEqual([
      ["orders publish", SPAN_KIND.PRODUCER, traceId, "1111111111111111", "00f067aa0ba902b7", t0, t0 + 999_999_999n],
      ["orders process", SPAN_KIND.CONSUMER, traceId, "2222222222222222", "1111111111111111", t0 + 1_000_000_000n, t0 + 1_000_000_001n],
      ["work", SPAN_KIND.INTERNAL, traceId, "3333333333333333", "2222222222222222", t0 + 1_000_000_000n, t0 + 1_000_000_000n],
    ]);
    const [p, c, w] = sorted as [ReceivedSpan, ReceivedSpan, ReceivedSpan];
    expect(p.attributes).toEqual({ "messaging.system": "kafka", "messaging.batch.message_count": 3n });
    expect(p.links).toEqual([{ traceId: linked.traceId, spanId: linked.spanId, traceState: "", attributes: { "link.kind": "follows" } }]);
    expect(p.status).toEqual({ code: STATUS_CODE.UNSET });
    expect(p.resource).toEqual(resource);
    expect(p.scope).toEqual(scope);
    expect(p.flags & 0x300).toBe(0x300); // OTLP SpanFlags: the parent is known to be remote
    expect(c.status).toEqual({ code: STATUS_CODE.OK });
    expect(c.flags & 0x300).toBe(0x100); // a local parent
    expect(w.resource).toEqual({ "service.name": "worker" });
    expect(w.scope).toEqual({ name: "bare" });
  });

  test("OTLP http/protobuf (the SDK's protobuf serializer, posted by hand) arrives the same way", async () => {
    collector.clear();
    const span = readableSpan({
      name: "proto", kind: SpanKind.SERVER, traceId: "d".repeat(32), spanId: "e".repeat(16),
      parent: { traceId: "d".repeat(32), spanId: "f".repeat(16), traceFlags: TraceFlags.SAMPLED },
      startNs: 1_800_000_000_000_000_007n, endNs: 1_800_000_000_000_000_009n,
      attributes: { "http.response.status_code": 503, "ratio": 0.5, "ok": false }, status: { code: SpanStatusCode.ERROR },
    });
    const body = ProtobufTraceSerializer.serializeRequest([span]);
    if (!body) throw new Error("the serializer returned nothing");
    const r = await fetch(collector.httpTracesUrl, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body });
    expect(r.status).toBe(200);
    const [s] = await collector.waitForSpans(1);
    expect(s).toMatchObject({
      traceId: "d".repeat(32), spanId: "e".repeat(16), parentSpanId: "f".repeat(16), name: "proto", kind: SPAN_KIND.SERVER,
      startTimeUnixNano: 1_800_000_000_000_000_007n, endTimeUnixNano: 1_800_000_000_000_000_009n,
      attributes: { "http.response.status_code": 503n, "ratio": 0.5, "ok": false }, status: { code: STATUS_CODE.ERROR },
      resource: { "service.name": "hand-made" }, scope: { name: "gotel.test" },
    });
  });

  test("raw OTLP JSON: every AnyValue type is parsed as documented", async () => {
    collector.clear();
    const body = {
      resourceSpans: [{
        resource: { attributes: [{ key: "service.name", value: { stringValue: "raw" } }] },
        scopeSpans: [{
          scope: { name: "raw-scope" },
          spans: [{
            traceId: "0102030405060708090A0B0C0D0E0F10", // upper-case hex is accepted by the receiver
            spanId: "0102030405060708",
            name: "raw",
            startTimeUnixNano: "18446744073709551615", // max fixed64: needs bigint
            endTimeUnixNano: "18446744073709551615",
            attributes: [
              { key: "big", value: { intValue: "-9223372036854775808" } },
              { key: "bytes", value: { bytesValue: "AQL/" } },
              { key: "kv", value: { kvlistValue: { values: [{ key: "a", value: { intValue: "1" } }, { key: "b", value: { arrayValue: { values: [{ boolValue: true }, { doubleValue: 2.5 }] } } }] } } },
              { key: "nan", value: { doubleValue: "NaN" } },
              { key: "inf", value: { doubleValue: "-Infinity" } },
              { key: "empty", value: {} },
            ],
            status: { code: 2, message: "bad" },
            droppedAttributesCount: 3,
            droppedLinksCount: 1,
          }],
        }],
      }],
    };
    const r = await fetch(collector.httpTracesUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(r.status).toBe(200);
    const [s] = await collector.waitForSpans(1);
    expect(s).toEqual({
      traceId: "0102030405060708090a0b0c0d0e0f10",
      spanId: "0102030405060708",
      parentSpanId: "",
      traceState: "",
      flags: 0,
      name: "raw",
      kind: SPAN_KIND.UNSPECIFIED,
      startTimeUnixNano: 18446744073709551615n,
      endTimeUnixNano: 18446744073709551615n,
      attributes: {
        big: -9223372036854775808n,
        bytes: new Uint8Array([1, 2, 255]),
        kv: { a: 1n, b: [true, 2.5] },
        nan: NaN,
        inf: -Infinity,
        empty: null,
      },
      events: [],
      links: [],
      status: { code: STATUS_CODE.ERROR, message: "bad" },
      dropped: { attributes: 3, events: 0, links: 1 },
      resource: { "service.name": "raw" },
      scope: { name: "raw-scope" },
    });
  });

  test("waitForSpans times out with a list of what arrived", async () => {
    collector.clear();
    await exportSpans(collector.httpTracesUrl, [readableSpan({ name: "lonely", kind: SpanKind.SERVER, traceId: "a".repeat(32), spanId: "b".repeat(16), startNs: 1n, endNs: 2n })]);
    await collector.waitForSpans(1);
    const err = await collector.waitForSpans(5, 300).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toContain("received 1");
    expect(String(err)).toContain(`"lonely" server trace=${"a".repeat(32)} span=${"b".repeat(16)} parent=-`);
  });

  test("a port already in use: start fails with the collector's log", async () => {
    const { httpPort } = await Collector.freePorts();
    const err = await Collector.start({ grpcPort: collector.grpcPort, httpPort, startTimeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toContain("address already in use");
  });

  test("stop, then start again on the same ports", async () => {
    const first = await Collector.start();
    const { grpcPort, httpPort, dir } = first;
    const mk = (name: string, spanId: string) =>
      readableSpan({ name, kind: SpanKind.CLIENT, traceId: "c".repeat(32), spanId, startNs: 10n, endNs: 20n });

    expect((await exportSpans(first.httpTracesUrl, [mk("before", "0000000000000001")])).code).toBe(ExportResultCode.SUCCESS);
    await first.waitForSpans(1);
    await first.stop();
    expect(first.running).toBe(false);
    expect(await Bun.file(`${dir}/config.yaml`).exists()).toBe(false); // the temp dir is gone
    expect(first.spans().map((s) => s.name)).toEqual(["before"]); // but what arrived is kept

    // down: exports fail
    expect((await exportSpans(first.httpTracesUrl, [mk("lost", "0000000000000002")], 300)).code).toBe(ExportResultCode.FAILED);

    const second = await Collector.start({ grpcPort, httpPort });
    try {
      expect(second.grpcEndpoint).toBe(first.grpcEndpoint);
      expect(second.httpEndpoint).toBe(first.httpEndpoint);
      expect((await exportSpans(second.httpTracesUrl, [mk("after", "0000000000000003")])).code).toBe(ExportResultCode.SUCCESS);
      const spans = await second.waitForSpans(1);
      expect(spans.map((s) => s.name)).toEqual(["after"]);
    } finally {
      await second.stop();
    }
  });
});
