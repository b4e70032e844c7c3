/**
 * The export pipeline's accounting, with exporters that succeed, fail, or never answer (unit tests of pure logic:
 * the real receivers are in test/e2e/export-faults.test.ts). Every span added must end up in exactly one count.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { OTLPExporterError } from "@opentelemetry/otlp-exporter-base";
import { describeExportError } from "../../src/export/exporter.ts";
import { EXPORTS_IN_FLIGHT, ExportPipeline, type DescribedExporter, type QueueSettings } from "../../src/export/pipeline.ts";
import { formatReasons, RateLimitedWarning } from "../../src/export/warnings.ts";
import { setLogSink } from "../../src/log.ts";
import { SpanKind, SpanStatusCode, toReadableSpan } from "../../src/traces/span.ts";

const resource = resourceFromAttributes({ "service.name": "t" });

function span(i: number): ReadableSpan {
  const id = i.toString(16).padStart(16, "0");
  return toReadableSpan({
    traceId: id.padStart(32, "0"), spanId: id, name: "GET", kind: SpanKind.SERVER, startUnixNs: 1n, endUnixNs: 2n,
    attributes: {}, status: { code: SpanStatusCode.UNSET }, scope: "test",
  }, resource);
}

type Behaviour = (spans: ReadableSpan[], done: (r: ExportResult) => void) => void;

function exporter(behave: Behaviour): DescribedExporter & { calls: number } {
  const e: SpanExporter = {
    export: (spans, done) => {
      d.calls++;
      behave(spans, done);
    },
    shutdown: () => Promise.resolve(),
  };
  const d = { exporter: e, destination: "http://receiver", describeFailure: (err?: Error) => describeExportError(err, { timeoutMillis: 10_000 }), calls: 0 };
  return d;
}

const settings = (o: Partial<QueueSettings> = {}): QueueSettings => ({
  scheduledDelayMillis: 20, exportTimeoutMillis: 300, maxQueueSize: 64, maxExportBatchSize: 16, ...o,
});

let lines: string[] = [];
setLogSink((l) => lines.push(l));
afterEach(() => {
  lines = [];
});

function total(p: ExportPipeline): number {
  const s = p.stats;
  return s.exported + s.queueFull + s.exportFailed;
}

describe("export pipeline accounting", () => {
  test("a healthy receiver: every span exported, batches as soon as they are full", async () => {
    const e = exporter((_s, done) => done({ code: ExportResultCode.SUCCESS }));
    const p = new ExportPipeline(e, settings({ scheduledDelayMillis: 60_000 }));
    for (let i = 0; i < 48; i++) p.add(span(i));
    // three full batches went without waiting for the (one-minute) timer
    await Bun.sleep(10);
    expect(p.stats.exported).toBe(48);
    await p.shutdown();
    expect(p.stats).toEqual({ destination: "http://receiver", exported: 48, queueFull: 0, exportFailed: 0, failures: {} });
    expect(lines.filter((l) => l.includes(" warn "))).toEqual([]);
  });

  test("a receiver that refuses: every span counted as failed with the reason, one warning", async () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:4318"), { code: "ECONNREFUSED" });
    const e = exporter((_s, done) => setTimeout(() => done({ code: ExportResultCode.FAILED, error: refused }), 1));
    const p = new ExportPipeline(e, settings());
    for (let i = 0; i < 40; i++) p.add(span(i));
    await p.shutdown();
    expect(p.stats).toEqual({ destination: "http://receiver", exported: 0, queueFull: 0, exportFailed: 40, failures: { "connection refused": 40 } });
    const warnings = lines.filter((l) => l.includes("spans could not be exported"));
    // the first failure is reported at once, the rest at the end of the interval (or at shutdown)
    expect(warnings.length).toBe(2);
    expect(warnings[0]).toContain('reason="connection refused"');
    expect(warnings[0]).toContain("to=http://receiver");
    const reported = warnings.map((l) => Number(/spans=(\d+)/.exec(l)![1])).reduce((a, b) => a + b, 0);
    expect(reported).toBe(40);
  });

  test("a receiver that never answers: the queue fills, the rest is dropped, and what is left at stop failed", async () => {
    const e = exporter(() => { /* never answers */ });
    const p = new ExportPipeline(e, settings({ maxQueueSize: 10, maxExportBatchSize: 5, exportTimeoutMillis: 100 }));
    for (let i = 0; i < 100; i++) p.add(span(i));
    const t0 = performance.now();
    await p.shutdown();
    // bounded by OTEL_BSP_EXPORT_TIMEOUT, not by the receiver
    expect(performance.now() - t0).toBeLessThan(1000);
    const s = p.stats;
    expect(total(p)).toBe(100);
    expect(s.exported).toBe(0);
    expect(s.queueFull).toBe(85); // one batch of 5 went to the exporter, 10 waited in the queue
    expect(s.failures).toEqual({ "not sent before gotel stopped (OTEL_BSP_EXPORT_TIMEOUT)": 15 });
    const queueLines = lines.filter((l) => l.includes("the export queue is full"));
    expect(queueLines.map((l) => Number(/spans=(\d+)/.exec(l)![1])).reduce((a, b) => a + b, 0)).toBe(85);
  });

  test("a slow receiver gets several batches at once, never more than EXPORTS_IN_FLIGHT + 1", async () => {
    let waiting = 0;
    let most = 0;
    const e = exporter((_s, done) => {
      most = Math.max(most, ++waiting);
      setTimeout(() => {
        waiting--;
        done({ code: ExportResultCode.SUCCESS });
      }, 30);
    });
    const p = new ExportPipeline(e, settings({ maxQueueSize: 1000, maxExportBatchSize: 10, scheduledDelayMillis: 60_000 }));
    // 100 batches' worth, added a batch at a time as the ring buffer's drain would hand them over
    for (let i = 0; i < 1000; i++) {
      p.add(span(i));
      if (i % 10 === 9) await Bun.sleep(0);
    }
    // (a stop sends the whole queue at once: wait for the batches here, not in shutdown)
    for (let waited = 0; p.stats.exported < 1000 && waited < 5000; waited += 10) await Bun.sleep(10);
    expect(most).toBe(EXPORTS_IN_FLIGHT + 1);
    await p.shutdown();
    expect(p.stats).toEqual({ destination: "http://receiver", exported: 1000, queueFull: 0, exportFailed: 0, failures: {} });
  });

  test("a receiver that never answers holds EXPORTS_IN_FLIGHT + 1 batches and the queue, nothing more", async () => {
    const e = exporter(() => { /* never answers */ });
    const p = new ExportPipeline(e, settings({ maxQueueSize: 10, maxExportBatchSize: 5, exportTimeoutMillis: 100 }));
    for (let i = 0; i < 100; i++) {
      p.add(span(i));
      await Bun.sleep(0);
    }
    expect(e.calls).toBe(EXPORTS_IN_FLIGHT + 1);
    await p.shutdown();
    const inQueueOrSent = 5 * (EXPORTS_IN_FLIGHT + 1) + 10;
    expect(p.stats.queueFull).toBe(100 - inQueueOrSent);
    expect(p.stats.failures).toEqual({ "not sent before gotel stopped (OTEL_BSP_EXPORT_TIMEOUT)": inQueueOrSent });
  });

  test("an answer after the stop changes nothing: each span is counted once", async () => {
    let late: (() => void) | undefined;
    const e = exporter((_s, done) => (late = () => done({ code: ExportResultCode.SUCCESS })));
    const p = new ExportPipeline(e, settings({ exportTimeoutMillis: 50 }));
    for (let i = 0; i < 16; i++) p.add(span(i));
    await p.shutdown();
    late?.();
    expect(p.stats.exported).toBe(0);
    expect(p.stats.exportFailed).toBe(16);
    p.add(span(99));
    expect(total(p)).toBe(17);
  });

  test("an exporter that throws is a failed export, not a crash", async () => {
    const e = exporter(() => {
      throw new Error("serializer exploded");
    });
    const p = new ExportPipeline(e, settings());
    for (let i = 0; i < 16; i++) p.add(span(i));
    await p.shutdown();
    expect(p.stats.failures).toEqual({ "serializer exploded": 16 });
  });
});

describe("export errors in words", () => {
  const s = { timeoutMillis: 10_000 };
  test.each([
    ["refused (http)", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:4318"), { code: "ECONNREFUSED" }), "connection refused"],
    ["refused (grpc)", new Error("14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:4317"), "connection refused"],
    ["timeout (http)", new Error("Request timed out"), "timeout: no answer within 10000 ms"],
    ["timeout (grpc)", new Error("4 DEADLINE_EXCEEDED: Deadline exceeded"), "timeout: no answer within 10000 ms"],
    ["HTTP 500", new OTLPExporterError("Internal Server Error", 500, "boom"), "HTTP 500 Internal Server Error"],
    ["reset", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), "connection reset by the receiver"],
    ["too many", new Error("Concurrent export limit reached"), "too many exports already waiting for the receiver"],
  ] as const)("%s", (_name, error, words) => {
    expect(describeExportError(error, s)).toBe(words);
  });

  test("a retryable status the exporter gave up on is named by the status the receiver last sent", () => {
    const e = new OTLPExporterError("Export failed with retryable status");
    expect(describeExportError(e, s, 429)).toBe("HTTP 429, still after retries");
    expect(describeExportError(e, s)).toBe("a retryable HTTP status (429, 502, 503 or 504), still after retries");
  });
});

describe("rate-limited warnings", () => {
  test("the first loss at once, then at most one line per interval with the count since the last", () => {
    let now = 0;
    const w = new RateLimitedWarning("lost", { to: "x" }, 10_000, () => now);
    w.add(3, "refused");
    w.add(4, "refused");
    now = 5_000;
    w.add(5, "HTTP 503");
    expect(lines.length).toBe(1);
    now = 10_000;
    w.add(1, "refused");
    w.flush();
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(/warn +lost spans=3 reason=refused to=x$/);
    expect(lines[1]).toMatch(/spans=10 reason="refused: 5, HTTP 503: 5" to=x$/);
  });

  test("reasons", () => {
    expect(formatReasons({ a: 1 })).toBe("a");
    expect(formatReasons(new Map([["a", 1], ["b", 2]]))).toBe("a: 1, b: 2");
  });
});
