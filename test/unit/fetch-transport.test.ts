import { afterEach, describe, expect, test } from "bun:test";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { OTLPExporterError } from "@opentelemetry/otlp-exporter-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { readEnv } from "../../src/config/env.ts";
import { otlpExporter, otlpSettings } from "../../src/export/exporter.ts";
import { FetchTransport, isLoopback, MAX_ANSWER_BYTES, retryAfterMs } from "../../src/export/fetch-transport.ts";
import { SpanKind, SpanStatusCode, toReadableSpan } from "../../src/traces/span.ts";
import { GOTEL_VERSION } from "../../src/version.ts";

interface Seen { headers: Headers; body: Uint8Array<ArrayBuffer> }
let server: ReturnType<typeof Bun.serve> | undefined;
afterEach(() => void server?.stop(true));

/** a receiver that answers the statuses given in turn (200 once they run out) and keeps what it was sent */
function receiver(statuses: number[] = [], retryAfter?: string): { url: string; seen: Seen[] } {
  const seen: Seen[] = [];
  server = Bun.serve({
    port: 0, hostname: "127.0.0.1",
    async fetch(req) {
      seen.push({ headers: req.headers, body: new Uint8Array(await req.arrayBuffer()) });
      const status = statuses.shift() ?? 200;
      return new Response(status === 200 ? new Uint8Array(0) : "refused", { status, headers: retryAfter !== undefined ? { "retry-after": retryAfter } : {} });
    },
  });
  return { url: `http://127.0.0.1:${server.port}/v1/traces`, seen };
}

const span = toReadableSpan({
  traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", name: "GET /users/{id}", kind: SpanKind.SERVER,
  startUnixNs: 1_765_000_000_000_000_000n, endUnixNs: 1_765_000_000_000_023_456n, attributes: { "http.request.method": "GET" },
  status: { code: SpanStatusCode.UNSET }, scope: "go.opentelemetry.io/auto/net/http",
}, resourceFromAttributes({ "service.name": "svc" }));

async function exportOne(env: Record<string, string>): Promise<ExportResult> {
  const { exporter } = await otlpExporter(otlpSettings(readEnv(env)));
  return new Promise((resolve) => exporter.export([span], resolve));
}

describe("OTLP over HTTP through fetch", () => {
  test("http/protobuf: the encoding's content type, the configured headers, gotel's user agent", async () => {
    const r = receiver();
    const result = await exportOne({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: r.url, OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer t" });
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(r.seen.length).toBe(1);
    const { headers, body } = r.seen[0]!;
    expect(headers.get("content-type")).toBe("application/x-protobuf");
    expect(headers.get("authorization")).toBe("Bearer t");
    expect(headers.get("user-agent")).toBe(`gotel/${GOTEL_VERSION}`);
    expect(headers.get("content-encoding")).toBeNull();
    // ExportTraceServiceRequest: field 1 (resource_spans), length-delimited; the span's name is in it
    expect(body[0]).toBe(0x0a);
    expect(Buffer.from(body).includes("GET /users/{id}")).toBe(true);
  });

  test("http/json with gzip: the body is the gzipped JSON request", async () => {
    const r = receiver();
    const result = await exportOne({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: r.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_EXPORTER_OTLP_COMPRESSION: "gzip" });
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    const { headers, body } = r.seen[0]!;
    expect(headers.get("content-type")).toBe("application/json");
    expect(headers.get("content-encoding")).toBe("gzip");
    const request = JSON.parse(new TextDecoder().decode(Bun.gunzipSync(body)));
    expect(request.resourceSpans[0].scopeSpans[0].spans[0].name).toBe("GET /users/{id}");
  });

  test("a retryable status is tried again after Retry-After, until the receiver takes it", async () => {
    const r = receiver([503, 429], "0");
    const t = new FetchTransport({ url: r.url, headers: {}, compression: "none" });
    expect((await t.send(new Uint8Array([1, 2, 3]), 5000)).status).toBe("success");
    expect(r.seen.length).toBe(3);
    expect(r.seen.every((s) => s.body.length === 3)).toBe(true);
  });

  test("retries stop at the export's deadline: the last answer is the result", async () => {
    const r = receiver([503, 503, 503, 503, 503, 503, 503]);
    const statuses: number[] = [];
    const t = new FetchTransport({ url: r.url, headers: {}, compression: "none", onStatus: (s) => statuses.push(s) });
    const result = await t.send(new Uint8Array([1]), 800); // the first backoff (~1 s) is past it
    expect(result.status).toBe("retryable");
    expect(r.seen.length).toBe(1);
    expect(statuses).toEqual([503]);
  });

  test("a status that is not retryable fails at once, with the status and the receiver's words", async () => {
    const r = receiver([400]);
    const result = await new FetchTransport({ url: r.url, headers: {}, compression: "none" }).send(new Uint8Array([1]), 5000);
    expect(r.seen.length).toBe(1);
    expect(result.status).toBe("failure");
    const error = result.status === "failure" ? result.error : undefined;
    expect(error).toBeInstanceOf(OTLPExporterError);
    expect((error as OTLPExporterError).code).toBe(400);
    expect((error as OTLPExporterError).data).toBe("refused");
  });

  test("a receiver on the loopback interface is reached directly, even with HTTP_PROXY set", async () => {
    const r = receiver();
    const saved = process.env.HTTP_PROXY;
    process.env.HTTP_PROXY = "http://127.0.0.1:9"; // nothing listens there: a proxied request would be refused
    try {
      expect((await new FetchTransport({ url: r.url, headers: {}, compression: "none" }).send(new Uint8Array([1]), 5000)).status).toBe("success");
    } finally {
      if (saved === undefined) delete process.env.HTTP_PROXY;
      else process.env.HTTP_PROXY = saved;
    }
    expect(r.seen.length).toBe(1);
    expect([isLoopback("http://localhost:4318/v1/traces"), isLoopback("http://[::1]:4318"), isLoopback("http://127.0.0.2:1")]).toEqual([true, true, true]);
    expect([isLoopback("http://collector:4318"), isLoopback("https://10.0.0.1"), isLoopback("http://127.example.com")]).toEqual([false, false, false]);
  });

  test("an answer longer than 4 MiB is not read further: a failure, not a retry", async () => {
    let requests = 0;
    server = Bun.serve({
      port: 0, hostname: "127.0.0.1",
      fetch: () => {
        requests++;
        // an answer that never ends
        return new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(1 << 20)) }));
      },
    });
    const result = await new FetchTransport({ url: `http://127.0.0.1:${server.port}/v1/traces`, headers: {}, compression: "none" }).send(new Uint8Array([1]), 5000);
    expect(result.status).toBe("failure");
    expect(result.status === "failure" ? result.error.message : "").toBe(`the receiver's answer is longer than ${MAX_ANSWER_BYTES} bytes`);
    expect(requests).toBe(1);
  });

  test("Retry-After in seconds or as an HTTP date", () => {
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs("0")).toBe(0);
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs("soon")).toBeUndefined();
  });
});
