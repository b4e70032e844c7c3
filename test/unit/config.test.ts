import { describe, expect, test } from "bun:test";
import { ConfigError, readEnv } from "../../src/config/env.ts";

describe("environment configuration", () => {
  test("defaults", () => {
    expect(readEnv({})).toEqual({
      OTEL_LOG_LEVEL: "info", OTEL_GO_AUTO_SHOW_VERIFIER_LOG: false, OTEL_TRACES_EXPORTER: "otlp",
      OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: false, OTEL_GO_AUTO_PARSE_DB_STATEMENT: false,
      OTEL_BSP_SCHEDULE_DELAY: 5000, OTEL_BSP_EXPORT_TIMEOUT: 30000, OTEL_BSP_MAX_QUEUE_SIZE: 2048, OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 512,
      OTEL_TRACES_SAMPLER: "parentbased_always_on", OTEL_TRACES_SAMPLER_ARG: 1, OTEL_PROPAGATORS: ["tracecontext", "baggage"],
      GOTEL_UPROBE_ATTACH: "auto",
    });
  });

  test("uprobe attach mode", () => {
    expect(readEnv({ GOTEL_UPROBE_ATTACH: " Classic " }).GOTEL_UPROBE_ATTACH).toBe("classic");
    expect(readEnv({ GOTEL_UPROBE_ATTACH: "multi" }).GOTEL_UPROBE_ATTACH).toBe("multi");
    expect(() => readEnv({ GOTEL_UPROBE_ATTACH: "uretprobe" })).toThrow('GOTEL_UPROBE_ATTACH="uretprobe" is not valid: expected one of auto, classic, multi');
  });

  test("database statement switches", () => {
    const c = readEnv({ OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true", OTEL_GO_AUTO_PARSE_DB_STATEMENT: "TRUE" });
    expect([c.OTEL_GO_AUTO_INCLUDE_DB_STATEMENT, c.OTEL_GO_AUTO_PARSE_DB_STATEMENT]).toEqual([true, true]);
    expect(() => readEnv({ OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "on" })).toThrow('OTEL_GO_AUTO_INCLUDE_DB_STATEMENT="on" is not valid: expected true or false');
  });

  test("sampler, its argument and propagators", () => {
    const c = readEnv({ OTEL_TRACES_SAMPLER: " ParentBased_TraceIdRatio ", OTEL_TRACES_SAMPLER_ARG: "0.25", OTEL_PROPAGATORS: "none" });
    expect(c.OTEL_TRACES_SAMPLER).toBe("parentbased_traceidratio");
    expect(c.OTEL_TRACES_SAMPLER_ARG).toBe(0.25);
    expect(c.OTEL_PROPAGATORS).toEqual(["none"]);
    expect(() => readEnv({ OTEL_TRACES_SAMPLER: "jaeger_remote" })).toThrow(
      'OTEL_TRACES_SAMPLER="jaeger_remote" is not valid: expected one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio',
    );
    expect(() => readEnv({ OTEL_TRACES_SAMPLER_ARG: "1.5" })).toThrow('OTEL_TRACES_SAMPLER_ARG="1.5" is not valid: expected a sampling ratio from 0 to 1');
    expect(() => readEnv({ OTEL_TRACES_SAMPLER_ARG: "half" })).toThrow(ConfigError);
    expect(() => readEnv({ OTEL_PROPAGATORS: "tracecontext,b3" })).toThrow(/OTEL_PROPAGATORS="tracecontext,b3" is not valid: expected a comma-separated list of tracecontext, baggage, none/);
  });

  test("headers and resource attributes are %-decoded key=value lists; empty values count as unset", () => {
    const c = readEnv({
      OTEL_EXPORTER_OTLP_HEADERS: "api-key=a%20b, x = y",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,team=a%2Cb",
      OTEL_EXPORTER_OTLP_ENDPOINT: "",
      OTEL_GO_AUTO_TARGET_PID: "4242",
    });
    expect(c.OTEL_EXPORTER_OTLP_HEADERS).toEqual({ "api-key": "a b", x: "y" });
    expect(c.OTEL_RESOURCE_ATTRIBUTES).toEqual({ "deployment.environment": "prod", team: "a,b" });
    expect(c.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(c.OTEL_GO_AUTO_TARGET_PID).toBe(4242);
  });

  test("accepted spellings", () => {
    expect(readEnv({ OTEL_LOG_LEVEL: "DEBUG", OTEL_GO_AUTO_SHOW_VERIFIER_LOG: "True" })).toMatchObject({
      OTEL_LOG_LEVEL: "debug", OTEL_GO_AUTO_SHOW_VERIFIER_LOG: true,
    });
    expect(readEnv({ OTEL_LOG_LEVEL: "warning" }).OTEL_LOG_LEVEL).toBe("warn");
  });

  test("a bad value is one line naming the variable and what it accepts", () => {
    expect(() => readEnv({ OTEL_LOG_LEVEL: "loud" })).toThrow(ConfigError);
    expect(() => readEnv({ OTEL_LOG_LEVEL: "loud" })).toThrow('OTEL_LOG_LEVEL="loud" is not valid: expected one of debug, info, warn, error');
    expect(() => readEnv({ OTEL_GO_AUTO_SHOW_VERIFIER_LOG: "maybe" })).toThrow(
      'OTEL_GO_AUTO_SHOW_VERIFIER_LOG="maybe" is not valid: expected true or false',
    );
    const cases: [string, string, string][] = [
      ["OTEL_TRACES_EXPORTER", "zipkin", "one of otlp, console, none"],
      ["OTEL_EXPORTER_OTLP_PROTOCOL", "http", "one of http/protobuf, http/json, grpc"],
      ["OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", "an http:// or https:// URL"],
      ["OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "a timeout in milliseconds"],
      ["OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "gzip or none"],
      ["OTEL_BSP_MAX_QUEUE_SIZE", "0", "a positive number of spans"],
      ["OTEL_GO_AUTO_TARGET_PID", "-3", "a process id"],
      ["OTEL_EXPORTER_OTLP_HEADERS", "novalue", "key=value pairs separated by commas (values %-encoded); 'novalue' is not key=value"],
    ];
    for (const [name, value, accepted] of cases) {
      expect(() => readEnv({ [name]: value })).toThrow(`${name}=${JSON.stringify(value)} is not valid: expected ${accepted}`);
    }
  });
});
