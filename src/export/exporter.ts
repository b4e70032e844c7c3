/**
 * The span exporter chosen by OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_*, built from the OpenTelemetry JS
 * exporters (we never encode OTLP ourselves). Signal-specific variables (…_TRACES_…) win over the generic
 * ones; a generic endpoint gets `/v1/traces` appended for the HTTP protocols, as the specification says.
 */
import { Metadata } from "@grpc/grpc-js";
import { OTLPTraceExporter as GrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as HttpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as HttpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { ConsoleSpanExporter, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { EnvConfig } from "../config/env.ts";

export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";

export interface OtlpSettings {
  protocol: OtlpProtocol;
  /** the full URL spans are sent to */
  url: string;
  headers: Record<string, string>;
  timeoutMillis: number;
  compression: "gzip" | "none";
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
  };
}

export function otlpExporter(s: OtlpSettings): SpanExporter {
  const compression = s.compression === "gzip" ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE;
  switch (s.protocol) {
    case "grpc": {
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(s.headers)) metadata.set(k, v);
      return new GrpcExporter({ url: s.url, metadata, compression, timeoutMillis: s.timeoutMillis });
    }
    case "http/json":
      return new HttpJsonExporter({ url: s.url, headers: s.headers, compression, timeoutMillis: s.timeoutMillis });
    case "http/protobuf":
      return new HttpProtoExporter({ url: s.url, headers: s.headers, compression, timeoutMillis: s.timeoutMillis });
  }
}

/** The exporter for OTEL_TRACES_EXPORTER, or undefined for `none`. */
export function spanExporter(env: EnvConfig): SpanExporter | undefined {
  switch (env.OTEL_TRACES_EXPORTER) {
    case "none":
      return undefined;
    case "console":
      return new ConsoleSpanExporter();
    case "otlp":
      return otlpExporter(otlpSettings(env));
  }
}
