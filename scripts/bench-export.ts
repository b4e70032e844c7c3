/**
 * gotel's CPU per span from a decoded span to the wire, without a kernel or a target: server spans shaped like
 * the net/http server's (10 attributes) are made at a steady rate in bursts every 20 ms, as the ring buffer's
 * drain hands them over, and go through the agent's own path (SpanRecord -> ReadableSpan -> ExportPipeline ->
 * the OTLP exporter) to a receiver in another process that answers 200 and counts what it got. Prints this
 * process's CPU µs per span for each stage added in turn, so the cost of each is the difference:
 *
 *   record        making the SpanRecords (what decoding produces)
 *   readable      + the conversion to the SDK's ReadableSpan
 *   queued        + the BatchSpanProcessor, with an exporter that answers at once
 *   serialized    + the OTLP protobuf serialization, nothing sent
 *   http/protobuf + sending it over HTTP (the default) — and the same for http/json
 *
 *   bun scripts/bench-export.ts [spans per second] [seconds]
 */
import { ExportResultCode } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { otlpExporter, type OtlpProtocol } from "../src/export/exporter.ts";
import { ExportPipeline, type DescribedExporter } from "../src/export/pipeline.ts";
import { processResource } from "../src/traces/resource.ts";
import { SpanKind, SpanStatusCode, toReadableSpan, type SpanRecord } from "../src/traces/span.ts";

const RATE = Number(process.argv[2] ?? 20_000);
const SECONDS = Number(process.argv[3] ?? 5);
const TICK_MS = 20;
const QUEUE = { scheduledDelayMillis: 5000, exportTimeoutMillis: 30_000, maxQueueSize: 2048, maxExportBatchSize: 512 };

const resource = processResource({ pid: 4242, executablePath: "/usr/local/bin/server", goVersion: "go1.26.0" });

let seq = 0;
function hex(n: number, digits: number): string {
  return (n >>> 0).toString(16).padStart(8, "0").repeat(digits / 8);
}
function serverRecord(): SpanRecord {
  const i = seq++;
  const start = 1_765_000_000_000_000_000n + BigInt(i) * 50_000n;
  return {
    traceId: hex(i * 2654435761, 32), spanId: hex(i * 40503 + 1, 16), name: "GET /users/{id}", kind: SpanKind.SERVER,
    startUnixNs: start, endUnixNs: start + 23_456n,
    attributes: {
      "http.request.method": "GET", "url.path": `/users/${i % 1000}`, "url.scheme": "http", "network.protocol.version": "1.1",
      "http.response.status_code": 200, "user_agent.original": "wrk", "http.route": "/users/{id}",
      "server.address": "127.0.0.1", "server.port": 8080, "network.peer.address": "127.0.0.1", "network.peer.port": 40000 + (i % 16),
    },
    status: { code: SpanStatusCode.UNSET }, scope: "go.opentelemetry.io/auto/net/http",
  };
}

/** A receiver in its own process (its CPU is not ours): answers 200 with an empty response, counts spans by bytes. */
async function startSink(): Promise<{ url: string; stop: () => void }> {
  const code = `const s = Bun.serve({ port: 0, hostname: "127.0.0.1", async fetch(r) { await r.arrayBuffer();
    return new Response(new Uint8Array(0), { headers: { "content-type": r.headers.get("content-type") ?? "application/x-protobuf" } }); } });
    console.log(s.port);`;
  const p = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "inherit" });
  const reader = p.stdout.getReader();
  const { value } = await reader.read();
  const port = Number(new TextDecoder().decode(value).trim());
  return { url: `http://127.0.0.1:${port}/v1/traces`, stop: () => p.kill() };
}

type Stage = "record" | "readable" | "queued" | "serialized" | OtlpProtocol;

async function exporterFor(stage: Stage, url: string): Promise<DescribedExporter | undefined> {
  const answered = (serialize: boolean): SpanExporter => ({
    export: (spans: ReadableSpan[], done) => {
      if (serialize) ProtobufTraceSerializer.serializeRequest(spans);
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => {},
  });
  switch (stage) {
    case "record":
    case "readable":
      return undefined;
    case "queued":
    case "serialized":
      return { exporter: answered(stage === "serialized"), destination: stage, describeFailure: () => "failed" };
    default:
      return otlpExporter({ protocol: stage, url, headers: {}, timeoutMillis: 10_000, compression: "none", concurrencyLimit: 10 });
  }
}

async function run(stage: Stage, url: string): Promise<{ usPerSpan: number; exported: number; spans: number }> {
  const target = await exporterFor(stage, url);
  const pipeline = target ? new ExportPipeline(target, QUEUE) : undefined;
  const perTick = Math.round((RATE * TICK_MS) / 1000);
  const ticks = Math.round((SECONDS * 1000) / TICK_MS);
  let sink: unknown;
  Bun.gc(true);
  const before = process.cpuUsage();
  const started = performance.now();
  for (let t = 0; t < ticks; t++) {
    for (let i = 0; i < perTick; i++) {
      const r = serverRecord();
      if (stage === "record") sink = r;
      else if (!pipeline) sink = toReadableSpan(r, resource);
      else pipeline.add(toReadableSpan(r, resource));
    }
    const next = started + (t + 1) * TICK_MS;
    await Bun.sleep(Math.max(0, next - performance.now()));
  }
  await pipeline?.shutdown();
  const used = process.cpuUsage(before);
  void sink;
  const spans = perTick * ticks;
  return { usPerSpan: (used.user + used.system) / spans, exported: pipeline?.stats.exported ?? spans, spans };
}

const sink = await startSink();
try {
  console.log(`${RATE} spans/s for ${SECONDS} s in bursts every ${TICK_MS} ms; CPU µs per span of this process`);
  for (const stage of ["record", "readable", "queued", "serialized", "http/protobuf", "http/json"] as Stage[]) {
    const r = await run(stage, sink.url);
    const lost = r.spans - r.exported;
    console.log(`${stage.padEnd(14)} ${r.usPerSpan.toFixed(2).padStart(6)} µs/span${lost ? `   (${lost} of ${r.spans} not exported)` : ""}`);
  }
} finally {
  sink.stop();
}
