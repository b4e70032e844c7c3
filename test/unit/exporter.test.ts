import { describe, expect, test } from "bun:test";
import { readEnv } from "../../src/config/env.ts";
import { otlpSettings, spanExporter } from "../../src/export/exporter.ts";

const settings = (env: Record<string, string>) => otlpSettings(readEnv(env));

describe("OTLP exporter settings from the environment", () => {
  test("defaults: http/protobuf to localhost:4318/v1/traces, 10 s, no compression", () => {
    expect(settings({})).toEqual({ protocol: "http/protobuf", url: "http://localhost:4318/v1/traces", headers: {}, timeoutMillis: 10_000, compression: "none", concurrencyLimit: 37 });
    expect(settings({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }).url).toBe("http://localhost:4317");
  });

  test("a generic endpoint gets /v1/traces for HTTP, not for grpc; a signal endpoint is used as is", () => {
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" }).url).toBe("http://c:4318/v1/traces");
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }).url).toBe("http://c:4317");
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://t/custom" }).url).toBe("https://t/custom");
  });

  test("signal-specific variables win; headers merge", () => {
    expect(settings({
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TIMEOUT: "5000", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "2500",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip", OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "none",
      OTEL_EXPORTER_OTLP_HEADERS: "a=1,b=2", OTEL_EXPORTER_OTLP_TRACES_HEADERS: "b=3",
    })).toEqual({ protocol: "http/json", url: "http://localhost:4318/v1/traces", headers: { a: "1", b: "3" }, timeoutMillis: 2500, compression: "none", concurrencyLimit: 37 });
  });

  test("OTEL_TRACES_EXPORTER picks the exporter", async () => {
    expect(await spanExporter(readEnv({ OTEL_TRACES_EXPORTER: "none" }))).toBeUndefined();
    expect((await spanExporter(readEnv({ OTEL_TRACES_EXPORTER: "console" })))?.exporter.constructor.name).toBe("ConsoleSpanExporter");
    // over HTTP the library's exporter with our fetch transport (test/unit/fetch-transport.test.ts), gRPC the library's own
    expect((await spanExporter(readEnv({})))?.exporter.constructor.name).toBe("OTLPExporterBase");
    expect((await spanExporter(readEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })))?.exporter.constructor.name).toBe("OTLPTraceExporter");
  });
});
