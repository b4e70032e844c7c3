/**
 * The span exporter chosen by OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_*, built from the OpenTelemetry JS
 * exporters (we never encode OTLP ourselves). Signal-specific variables (…_TRACES_…) win over the generic
 * ones; a generic endpoint gets `/v1/traces` appended for the HTTP protocols, as the specification says.
 *
 * The gRPC exporter and @grpc/grpc-js are imported only when OTLP/gRPC is chosen: loading them took ~60 ms of
 * every start of the compiled binary.
 */
import { OTLPTraceExporter as HttpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as HttpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { CompressionAlgorithm, OTLPExporterError } from "@opentelemetry/otlp-exporter-base";
import { ConsoleSpanExporter, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import http from "node:http";
import https from "node:https";
import type { EnvConfig } from "../config/env.ts";
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

/**
 * An http(s) agent that remembers the last HTTP status the receiver answered. The exporter reports a retryable
 * status (429, 502, 503, 504) that it gave up on without the status itself; this is how the warning can name it.
 */
function statusAgent(protocol: string, seen: { status?: number }): http.Agent {
  const Agent = protocol === "https:" ? https.Agent : http.Agent;
  return new (class extends Agent {
    addRequest(req: http.ClientRequest, options: http.RequestOptions): void {
      req.once("response", (res: http.IncomingMessage) => (seen.status = res.statusCode));
      // addRequest is not in @types/node's Agent, but every http.Agent has it
      (Agent.prototype as unknown as { addRequest: (r: http.ClientRequest, o: http.RequestOptions) => void }).addRequest.call(this, req, options);
    }
  })({ keepAlive: true });
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
  const compression = s.compression === "gzip" ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE;
  const seen: { status?: number } = {};
  const described = (exporter: SpanExporter): DescribedExporter => ({
    exporter,
    destination: s.url,
    describeFailure: (e) => describeExportError(e, s, seen.status),
  });
  const common = { url: s.url, compression, timeoutMillis: s.timeoutMillis, concurrencyLimit: s.concurrencyLimit };
  const overHttp = { ...common, headers: s.headers, httpAgentOptions: (p: string) => statusAgent(p, seen) };
  switch (s.protocol) {
    case "grpc": {
      const [{ Metadata }, { OTLPTraceExporter: GrpcExporter }] = await Promise.all([import("@grpc/grpc-js"), import("@opentelemetry/exporter-trace-otlp-grpc")]);
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(s.headers)) metadata.set(k, v);
      return described(new GrpcExporter({ ...common, metadata }));
    }
    case "http/json":
      return described(new HttpJsonExporter(overHttp));
    case "http/protobuf":
      return described(new HttpProtoExporter(overHttp));
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
