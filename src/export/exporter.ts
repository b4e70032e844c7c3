/**
 * The span exporter chosen by OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_*, built from the OpenTelemetry JS
 * exporters (we never encode OTLP ourselves). Signal-specific variables (…_TRACES_…) win over the generic
 * ones; a generic endpoint gets `/v1/traces` appended for the HTTP protocols, as the specification says.
 *
 * The gRPC exporter and @grpc/grpc-js are imported only when OTLP/gRPC is chosen: loading them took ~60 ms of
 * every start of the compiled binary. Over HTTP the OpenTelemetry JS exporter serializes and keeps its queue of
 * exports and its metrics, and Bun's fetch sends (fetch-transport.ts says why).
 */
import { CompressionAlgorithm, createOtlpNetworkExportDelegate, OTLPExporterBase, OTLPExporterError } from "@opentelemetry/otlp-exporter-base";
import { createOtlpHttpExporterMetrics } from "@opentelemetry/otlp-exporter-base/node-http";
import { JsonTraceSerializer, ProtobufTraceSerializer, TraceExporterMetricsHelper } from "@opentelemetry/otlp-transformer";
import { ConsoleSpanExporter, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { EnvConfig } from "../config/env.ts";
import { FetchTransport } from "./fetch-transport.ts";
import { EXPORTS_IN_FLIGHT, type DescribedExporter } from "./pipeline.ts";

export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";

export interface OtlpSettings {
  protocol: OtlpProtocol;
  /** the full URL spans are sent to */
  url: string;
  headers: Record<string, string>;
  timeoutMillis: number;
  compression: "gzip" | "none";
  /**
   * Exports the exporter lets wait for the receiver at once; above it an export fails at once. A stop flushes the
   * whole queue in parallel batches while up to EXPORTS_IN_FLIGHT + 1 are still out, so this is the queue's number
   * of batches plus those (the SDK's default, 30, is less than a full default queue).
   */
  concurrencyLimit: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** the exporter's otel.component.type in its own metrics, as the OpenTelemetry JS OTLP/HTTP span exporters name it */
const HTTP_SPAN_EXPORTER = "otlp_http_span_exporter";

/** What the OTLP exporter will do, resolved from the environment (pure, so it can be tested and logged). */
export function otlpSettings(env: EnvConfig): OtlpSettings {
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf";
  const grpc = protocol === "grpc";
  let url: string;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  else if (env.OTEL_EXPORTER_OTLP_ENDPOINT) url = grpc ? env.OTEL_EXPORTER_OTLP_ENDPOINT : `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, "")}/v1/traces`;
  else url = grpc ? "http://localhost:4317" : "http://localhost:4318/v1/traces";
  return {
    protocol,
    url,
    headers: { ...env.OTEL_EXPORTER_OTLP_HEADERS, ...env.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    timeoutMillis: env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT ?? DEFAULT_TIMEOUT_MS,
    compression: env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION ?? env.OTEL_EXPORTER_OTLP_COMPRESSION ?? "none",
    concurrencyLimit: Math.ceil(env.OTEL_BSP_MAX_QUEUE_SIZE / Math.min(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, env.OTEL_BSP_MAX_QUEUE_SIZE)) + EXPORTS_IN_FLIGHT + 1,
  };
}

/** A failed export's error, in words: what the receiver (or the network) did. */
export function describeExportError(error: Error | undefined, s: Pick<OtlpSettings, "timeoutMillis">, lastStatus?: number): string {
  if (!error) return "export failed";
  const code = (error as { code?: unknown }).code;
  const message = error.message ?? "";
  if (code === "ECONNREFUSED" || /ECONNREFUSED/.test(message)) return "connection refused";
  if (code === "ECONNRESET" || /ECONNRESET|socket hang up/i.test(message)) return "connection reset by the receiver";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /ENOTFOUND|EAI_AGAIN/.test(message)) return "receiver's host name not found";
  if (/timed? ?out|DEADLINE_EXCEEDED|^Timeout$/i.test(message)) return `timeout: no answer within ${s.timeoutMillis} ms`;
  if (error instanceof OTLPExporterError && typeof code === "number") return `HTTP ${code}${message ? ` ${message}` : ""}`;
  if (/retryable status/.test(message)) return lastStatus ? `HTTP ${lastStatus}, still after retries` : "a retryable HTTP status (429, 502, 503 or 504), still after retries";
  if (/Concurrent export limit/.test(message)) return "too many exports already waiting for the receiver";
  return message.split("\n")[0]!.slice(0, 160) || error.name;
}

export async function otlpExporter(s: OtlpSettings): Promise<DescribedExporter> {
  const seen: { status?: number } = {};
  const described = (exporter: SpanExporter): DescribedExporter => ({
    exporter,
    destination: s.url,
    describeFailure: (e) => describeExportError(e, s, seen.status),
  });
  const overHttp = (contentType: string, serializer: typeof ProtobufTraceSerializer | typeof JsonTraceSerializer): SpanExporter => {
    const transport = new FetchTransport({
      url: s.url, headers: { ...s.headers, "Content-Type": contentType }, compression: s.compression, onStatus: (status) => (seen.status = status),
    });
    const metrics = createOtlpHttpExporterMetrics<ReadableSpan[]>(HTTP_SPAN_EXPORTER, TraceExporterMetricsHelper, s.url, undefined);
    const delegate = createOtlpNetworkExportDelegate({ compression: s.compression, timeoutMillis: s.timeoutMillis, concurrencyLimit: s.concurrencyLimit }, serializer, metrics, transport);
    return new OTLPExporterBase(delegate);
  };
  switch (s.protocol) {
    case "grpc": {
      const [{ Metadata }, { OTLPTraceExporter: GrpcExporter }] = await Promise.all([import("@grpc/grpc-js"), import("@opentelemetry/exporter-trace-otlp-grpc")]);
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(s.headers)) metadata.set(k, v);
      const compression = s.compression === "gzip" ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE;
      return described(new GrpcExporter({ url: s.url, compression, timeoutMillis: s.timeoutMillis, concurrencyLimit: s.concurrencyLimit, metadata }));
    }
    case "http/json":
      return described(overHttp("application/json", JsonTraceSerializer));
    case "http/protobuf":
      return described(overHttp("application/x-protobuf", ProtobufTraceSerializer));
  }
}

/** The exporter for OTEL_TRACES_EXPORTER, or undefined for `none`. */
export async function spanExporter(env: EnvConfig): Promise<DescribedExporter | undefined> {
  switch (env.OTEL_TRACES_EXPORTER) {
    case "none":
      return undefined;
    case "console":
      return { exporter: new ConsoleSpanExporter(), destination: "console", describeFailure: (e) => e?.message ?? "export failed" };
    case "otlp":
      return otlpExporter(otlpSettings(env));
  }
}
