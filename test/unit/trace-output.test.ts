import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type SpanStatus } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { toReadableSpan } from "../../src/traces/span.ts";
import {
  formatDuration,
  spanToJson,
  TraceOutput,
  waterfall,
  type TraceOutputOptions,
} from "../../src/cli/trace-output.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER = "0af7651916cd43dd8448eb211c80319c";
/** 2025-11-24T16:00:00.123456789Z: more digits than a float64 holds */
const BASE = 1764000000123456789n;
const API = resourceFromAttributes({ "service.name": "api", "process.pid": 4242 });

interface SpanSpec {
  trace?: string;
  id: string;
  parent?: string;
  remoteParent?: boolean;
  name: string;
  kind?: SpanKind;
  /** µs after BASE */
  start: number;
  end: number;
  attributes?: Attributes;
  status?: SpanStatus;
  resource?: Resource;
}

function hr(ns: bigint): [number, number] {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

function span(s: SpanSpec): ReadableSpan {
  const traceId = s.trace ?? TRACE;
  const start = BASE + BigInt(s.start) * 1000n;
  const end = BASE + BigInt(s.end) * 1000n;
  return {
    name: s.name,
    kind: s.kind ?? SpanKind.INTERNAL,
    spanContext: () => ({ traceId, spanId: s.id, traceFlags: TraceFlags.SAMPLED }),
    parentSpanContext: s.parent
      ? { traceId, spanId: s.parent, traceFlags: TraceFlags.SAMPLED, isRemote: s.remoteParent === true }
      : undefined,
    startTime: hr(start),
    endTime: hr(end),
    duration: hr(end - start),
    status: s.status ?? { code: SpanStatusCode.UNSET },
    attributes: s.attributes ?? {},
    links: [],
    events: [],
    ended: true,
    resource: s.resource ?? API,
    instrumentationScope: { name: "go.opentelemetry.io/auto/net/http" },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/** A TraceOutput whose writes are collected and whose clock the test moves. */
function harness(opts: Partial<TraceOutputOptions> = {}) {
  let text = "";
  const clock = { t: 1_000 };
  const results: ExportResult[] = [];
  const out = new TraceOutput({ format: "tree", color: false, write: (t) => (text += t), now: () => clock.t, ...opts });
  return {
    out,
    clock,
    results,
    get text() {
      return text;
    },
    send: (...spans: ReadableSpan[]) => out.export(spans, (r) => results.push(r)),
  };
}

// A 3-level trace: an incoming request (remote parent), a DB call with a driver call inside, a failing outgoing call.
const request = span({
  id: "00000000000000a1",
  parent: "00f067aa0ba902b7",
  remoteParent: true,
  name: "GET /users/{id}",
  kind: SpanKind.SERVER,
  start: 0,
  end: 12_300,
  attributes: { "http.request.method": "GET", "http.route": "/users/{id}", "url.path": "/users/42", "http.response.status_code": 200 },
});
const select = span({
  id: "00000000000000b1",
  parent: "00000000000000a1",
  name: "SELECT users",
  kind: SpanKind.CLIENT,
  start: 1_000,
  end: 4_100,
  attributes: { "db.operation.name": "SELECT", "db.collection.name": "users" },
});
const query = span({ id: "00000000000000c1", parent: "00000000000000b1", name: "conn.Query", start: 1_500, end: 2_350 });
const rates = span({
  id: "00000000000000b2",
  parent: "00000000000000a1",
  name: "GET",
  kind: SpanKind.CLIENT,
  start: 6_000,
  end: 10_200,
  attributes: { "url.path": "/v1/rates", "http.response.status_code": 503, "error.type": "503" },
  status: { code: SpanStatusCode.ERROR, message: "upstream unavailable" },
});

const TREE = [
  "16:00:00.123  api  GET /users/{id}  12.3ms  4 spans  trace 4bf92f3577b34da6a3ce929d0e0e4736",
  "  GET /users/{id}   srv   12.3ms  ████████████████████████  200 /users/42",
  "  ├─ SELECT users   cli   3.10ms  ·███████················",
  "  │  └─ conn.Query  int    850µs  ··███···················",
  "  └─ GET            cli   4.20ms  ···········█████████····  503 /v1/rates ERROR: upstream unavailable",
  "",
  "",
].join("\n");

let savedTz: string | undefined;
beforeAll(() => {
  // the header shows the local time of day; pin the zone so the expected text is exact
  savedTz = process.env.TZ;
  process.env.TZ = "UTC";
});
afterAll(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

describe("jsonl", () => {
  test("one exact line per span, written as soon as it is exported", () => {
    const root = span({
      id: "00f067aa0ba902b7",
      name: "GET /users/{id}",
      kind: SpanKind.SERVER,
      start: 0,
      end: 2_000,
      attributes: { "http.response.status_code": 200, "http.route": "/users/{id}", "net.flag": true, "tags": ["a", "b"], "ports": [80, 443] },
    });
    const child = span({
      id: "00000000000000b2",
      parent: "00f067aa0ba902b7",
      name: "GET",
      kind: SpanKind.CLIENT,
      start: 500,
      end: 1_500,
      status: { code: SpanStatusCode.ERROR, message: "boom" },
    });
    const h = harness({ format: "jsonl" });
    h.send(child, root);
    expect(h.results).toEqual([{ code: ExportResultCode.SUCCESS }]);
    const resource = '"scope":{"name":"go.opentelemetry.io/auto/net/http"},"resource":{"service.name":"api","process.pid":4242}';
    expect(h.text).toBe(
      `{"traceId":"${TRACE}","spanId":"00000000000000b2","parentSpanId":"00f067aa0ba902b7","name":"GET","kind":"CLIENT",` +
        `"startTimeUnixNano":"1764000000123956789","endTimeUnixNano":"1764000000124956789","attributes":{},` +
        `"status":{"code":"ERROR","message":"boom"},${resource}}\n` +
        `{"traceId":"${TRACE}","spanId":"00f067aa0ba902b7","parentSpanId":"","name":"GET /users/{id}","kind":"SERVER",` +
        `"startTimeUnixNano":"1764000000123456789","endTimeUnixNano":"1764000000125456789",` +
        `"attributes":{"http.response.status_code":200,"http.route":"/users/{id}","net.flag":true,"tags":["a","b"],"ports":[80,443]},` +
        `"status":{"code":"UNSET"},${resource}}\n`,
    );
    for (const line of h.text.trimEnd().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
    expect(h.out.stats).toEqual({ spans: 2, traces: 1 });
  });

  test("every kind has its OTLP name", () => {
    const kinds = [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER];
    expect(kinds.map((kind) => spanToJson(span({ id: "01", name: "x", kind, start: 0, end: 1 })).kind)).toEqual([
      "INTERNAL",
      "SERVER",
      "CLIENT",
      "PRODUCER",
      "CONSUMER",
    ]);
    expect(spanToJson(span({ id: "01", name: "x", start: 0, end: 1, status: { code: SpanStatusCode.OK } })).status).toEqual({ code: "OK" });
  });

  test("a span made through the OpenTelemetry API: its events, links and its tracer's scope", () => {
    const s = {
      ...span({ id: "01", name: "work", start: 0, end: 1 }),
      events: [{ name: "exception", time: [1764000000, 5] as [number, number], attributes: { "exception.message": "boom" } }],
      links: [{ context: { traceId: TRACE, spanId: "00000000000000b2", traceFlags: 1 }, attributes: { why: "batch" } }],
      instrumentationScope: { name: "app/db", version: "v2.0.0" },
    };
    expect(spanToJson(s)).toMatchObject({
      events: [{ name: "exception", timeUnixNano: "1764000000000000005", attributes: { "exception.message": "boom" } }],
      links: [{ traceId: TRACE, spanId: "00000000000000b2", attributes: { why: "batch" } }],
      scope: { name: "app/db", version: "v2.0.0" },
    });
  });
});

describe("tree", () => {
  test("a 3-level trace, exactly, once it has settled", () => {
    const h = harness();
    h.send(query, select, rates, request); // children end first, so they usually arrive first
    expect(h.text).toBe("");
    h.clock.t += 500;
    h.send();
    expect(h.text).toBe(TREE);
  });

  test("gRPC calls show their status code; error.type is not repeated", () => {
    const h = harness();
    const grpc = (id: string, parent: string | undefined, kind: SpanKind, code: string, error: boolean) => span({
      id, ...(parent ? { parent } : {}), name: "helloworld.Greeter/SayHello", kind, start: 0, end: 2_000,
      attributes: { "rpc.method": "helloworld.Greeter/SayHello", "rpc.status_code": code, ...(code === "OK" ? {} : { "error.type": code }) },
      status: error ? { code: SpanStatusCode.ERROR, message: "no such user" } : { code: SpanStatusCode.UNSET },
    });
    h.send(grpc("00000000000000d2", "00000000000000d1", SpanKind.SERVER, "NOT_FOUND", false), grpc("00000000000000d1", undefined, SpanKind.CLIENT, "NOT_FOUND", true));
    h.clock.t += 500;
    h.send();
    expect(h.text.split("\n").slice(1, 3)).toEqual([
      "  helloworld.Greeter/SayHello     cli   2.00ms  ████████████████████████  NOT_FOUND ERROR: no such user",
      "  └─ helloworld.Greeter/SayHello  srv   2.00ms  ████████████████████████  NOT_FOUND",
    ]);
  });

  test("the waterfall of a known layout", () => {
    const ms = 1_000_000n;
    expect(waterfall(0n, 24n * ms, 0n, 24n * ms)).toBe("████████████████████████");
    expect(waterfall(6n * ms, 12n * ms, 0n, 24n * ms)).toBe("······██████············");
    // a partly covered cell is drawn; a span too short to see still gets one cell
    expect(waterfall(6n * ms + 1n, 12n * ms + 1n, 0n, 24n * ms)).toBe("······███████···········");
    expect(waterfall(10n * ms, 10n * ms, 0n, 24n * ms)).toBe("··········█·············");
    expect(waterfall(24n * ms, 24n * ms, 0n, 24n * ms)).toBe("·······················█");
    // a trace of one instant fills the bar
    expect(waterfall(5n, 5n, 5n, 5n)).toBe("████████████████████████");
    expect(waterfall(1n, 2n, 0n, 4n, 8)).toBe("··██····");
  });

  test("durations read at a glance", () => {
    expect(formatDuration(0n)).toBe("0ns");
    expect(formatDuration(999n)).toBe("999ns");
    expect(formatDuration(850_000n)).toBe("850µs");
    expect(formatDuration(20_000n)).toBe("20.0µs");
    expect(formatDuration(999_700n)).toBe("1.00ms");
    expect(formatDuration(12_345_678n)).toBe("12.3ms");
    expect(formatDuration(1_200_000_000n)).toBe("1.20s");
    expect(formatDuration(59_000_000_000n)).toBe("59.0s");
    expect(formatDuration(90_000_000_000n)).toBe("1.50m");
    expect(formatDuration(1_000_000_000_000n)).toBe("16.7m");
    expect(formatDuration(36_000_000_000_000n)).toBe("10.0h");
    expect(formatDuration(3_600_000_000_000_000n)).toBe("1000h");
  });

  test("a trace waits settleMs after its last span, and a late span restarts the wait", () => {
    const h = harness({ settleMs: 500 });
    h.send(query, select);
    h.clock.t += 2_000; // no root yet: children alone are not printed after settleMs
    h.send(request);
    h.clock.t += 499;
    h.send();
    expect(h.text).toBe("");
    h.send(rates); // arrives inside the window
    h.clock.t += 499;
    h.send();
    expect(h.text).toBe("");
    h.clock.t += 1;
    h.send();
    expect(h.text).toBe(TREE);
    h.clock.t += 10_000;
    h.send();
    expect(h.text).toBe(TREE); // printed once
  });

  test("a quiet session still prints, from a timer", async () => {
    let text = "";
    const out = new TraceOutput({ format: "tree", color: false, settleMs: 20, write: (t) => (text += t) });
    out.export([query, select, rates, request], () => {});
    expect(text).toBe("");
    await Bun.sleep(120);
    expect(text).toBe(TREE);
    await out.shutdown();
  });

  test("orphans are printed under the trace with a marker", () => {
    const h = harness();
    const lost = span({ id: "00000000000000d1", parent: "00000000000000ee", name: "cache.Get", start: 11_000, end: 11_020 });
    h.send(lost, query, select, rates, request);
    h.clock.t += 500;
    h.send();
    expect(h.text).toBe(
      TREE.replace("4 spans", "5 spans").replace(
        /\n\n$/,
        "\n  ? cache.Get       int   20.0µs  ·····················█··  missing parent 00000000000000ee\n\n",
      ),
    );
  });

  test("a trace whose root never comes is printed after orphanMs, every span marked or placed", () => {
    const h = harness({ settleMs: 500 });
    h.send(query, select);
    h.clock.t += 4_999;
    h.send();
    expect(h.text).toBe("");
    h.clock.t += 1;
    h.send();
    expect(h.text).toBe(
      [
        "16:00:00.124  api  SELECT users  3.10ms  2 spans  trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "  ? SELECT users   cli   3.10ms  ████████████████████████  missing parent 00000000000000a1",
        "    └─ conn.Query  int    850µs  ···████████·············",
        "",
        "",
      ].join("\n"),
    );
  });

  test("spans that come after their trace was printed are shown as its continuation", () => {
    const h = harness();
    h.send(query, select, rates, request);
    h.clock.t += 500;
    h.send();
    const late = span({ id: "00000000000000e1", parent: "00000000000000a1", name: "flush", start: 13_000, end: 14_000 });
    h.send(late);
    h.clock.t += 5_000;
    h.send();
    expect(h.text.slice(TREE.length).split("\n")[0]).toBe(
      "16:00:00.136  api  flush  1.00ms  1 span  trace 4bf92f3577b34da6a3ce929d0e0e4736 (continued)",
    );
    expect(h.out.stats).toEqual({ spans: 5, traces: 1 });
  });

  test("color only when asked: ANSI for errors in red", () => {
    const plain = harness();
    plain.send(query, select, rates, request);
    plain.out.shutdown();
    expect(plain.text).not.toContain("\x1b");
    const colored = harness({ color: true });
    colored.send(query, select, rates, request);
    colored.out.shutdown();
    expect(colored.text).toContain("\x1b[31mERROR: upstream unavailable\x1b[0m");
    expect(colored.text).toContain("\x1b[31m503\x1b[0m");
    expect(colored.text.replace(/\x1b\[[0-9;]*m/g, "")).toBe(plain.text);
  });

  test("lines stay within 120 columns and the target's bytes cannot drive the terminal", () => {
    const h = harness();
    const spans: ReadableSpan[] = [
      span({ id: "0000000000000001", name: "GET /" + "very-long-segment/".repeat(12), kind: SpanKind.SERVER, start: 0, end: 100 }),
    ];
    for (let i = 2; i < 40; i++) {
      spans.push(
        span({
          id: i.toString(16).padStart(16, "0"),
          parent: (i - 1).toString(16).padStart(16, "0"),
          name: `level ${i} \x1b[2J\n` + "x".repeat(i),
          start: i,
          end: 100 - i,
          attributes: { "url.path": "/a".repeat(60), "http.response.status_code": 200 },
        }),
      );
    }
    h.send(...spans);
    h.out.shutdown();
    const lines = h.text.trimEnd().split("\n");
    expect(lines).toHaveLength(40);
    for (const line of lines) expect(Array.from(line).length).toBeLessThanOrEqual(120);
    expect(h.text).not.toContain("\x1b");
    expect(lines[1]).toContain("…");
  });
});

describe("session", () => {
  test("the summary line", () => {
    const h = harness({ format: "jsonl" });
    h.send(query, select, span({ trace: OTHER, id: "0000000000000001", name: "GET", start: 0, end: 1 }));
    expect(h.out.stats).toEqual({ spans: 3, traces: 2 });
    expect(h.out.summary(7)).toBe("3 spans, 2 traces, 7 dropped");
  });

  test("shutdown prints every buffered trace, then nothing more", async () => {
    const h = harness();
    const other = span({ trace: OTHER, id: "0000000000000001", name: "GET /health", kind: SpanKind.SERVER, start: 0, end: 50 });
    h.send(query, select, rates, request, other);
    expect(h.text).toBe("");
    await h.out.shutdown();
    expect(h.text).toBe(
      TREE +
        [
          "16:00:00.123  api  GET /health  50.0µs  1 span  trace 0af7651916cd43dd8448eb211c80319c",
          "  GET /health  srv   50.0µs  ████████████████████████",
          "",
          "",
        ].join("\n"),
    );
    const before = h.text;
    h.send(other);
    expect(h.results.at(-1)?.code).toBe(ExportResultCode.FAILED);
    await h.out.forceFlush();
    await h.out.shutdown();
    expect(h.text).toBe(before);
  });

  test("forceFlush prints what is buffered and stays open", async () => {
    const h = harness();
    h.send(query, select);
    await h.out.forceFlush();
    expect(h.text).toContain("SELECT users");
    h.send(request);
    expect(h.results.every((r) => r.code === ExportResultCode.SUCCESS)).toBe(true);
  });

  test("at most 10,000 spans are held: beyond that the oldest trace is printed early", () => {
    const h = harness();
    const traceId = (i: number) => i.toString(16).padStart(32, "0");
    // 100 unrooted traces of 100 spans: none would print on its own for a while
    for (let t = 0; t < 100; t++) {
      const batch: ReadableSpan[] = [];
      for (let s = 0; s < 100; s++) {
        batch.push(span({ trace: traceId(t + 1), id: (t * 100 + s + 1).toString(16).padStart(16, "0"), parent: "ffffffffffffffff", name: `op${s}`, start: s, end: s + 1 }));
      }
      h.send(...batch);
    }
    expect(h.text).toBe("");
    h.send(span({ trace: traceId(101), id: "00000000000fffff", name: "GET", start: 0, end: 1 }));
    const headers = h.text.split("\n").filter((l) => l.includes(" trace "));
    expect(headers).toHaveLength(1);
    expect(headers[0]).toEndWith(`100 spans  trace ${traceId(1)}`);
    expect(h.out.stats).toEqual({ spans: 10_001, traces: 101 });
    h.out.shutdown();
  });

  test("a failing write is reported to the processor, not thrown", () => {
    const out = new TraceOutput({
      format: "jsonl",
      color: false,
      write: () => {
        throw new Error("EPIPE");
      },
    });
    const results: ExportResult[] = [];
    out.export([request], (r) => results.push(r));
    expect(results[0]?.code).toBe(ExportResultCode.FAILED);
    expect(results[0]?.error?.message).toBe("EPIPE");
  });
});

test("a span's trace state (kept from an incoming tracestate) is exported and printed", () => {
  const r = toReadableSpan({
    traceId: TRACE, spanId: "00f067aa0ba902b7", parentSpanId: "a7c6422e4d5d34b7", parentIsRemote: true, traceState: "vendor=abc,x=y",
    name: "GET", kind: SpanKind.SERVER, startUnixNs: 1n, endUnixNs: 2n, attributes: {}, status: { code: SpanStatusCode.UNSET }, scope: "s",
  }, API);
  expect(r.spanContext().traceState?.serialize()).toBe("vendor=abc,x=y");
  expect(r.parentSpanContext).toMatchObject({ spanId: "a7c6422e4d5d34b7", isRemote: true });
  expect(spanToJson(r)).toMatchObject({ parentSpanId: "a7c6422e4d5d34b7", traceState: "vendor=abc,x=y" });
  expect(spanToJson(span({ id: "01", name: "x", start: 0, end: 1 }))).not.toHaveProperty("traceState");
});
