import { describe, expect, test } from "bun:test";
import { ConfigError, readEnv } from "../../src/config/env.ts";

describe("environment configuration", () => {
  test("defaults", () => {
    expect(readEnv({})).toEqual({
      OTEL_LOG_LEVEL: "info", OTEL_GO_AUTO_SHOW_VERIFIER_LOG: false, OTEL_TRACES_EXPORTER: "otlp",
      OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: false, OTEL_GO_AUTO_PARSE_DB_STATEMENT: false,
      OTEL_BSP_SCHEDULE_DELAY: 5000, OTEL_BSP_EXPORT_TIMEOUT: 30000, OTEL_BSP_MAX_QUEUE_SIZE: 16384, OTEL_BSP_MAX_EXPORT_BATCH_SIZE: 512,
      OTEL_TRACES_SAMPLER: "parentbased_always_on", OTEL_TRACES_SAMPLER_ARG: 1, OTEL_PROPAGATORS: ["tracecontext", "baggage"],
      GOTEL_UPROBE_ATTACH: "auto", GOTEL_SAME_HOST_LINKING: true, GOTEL_SOCKET_TRACEPARENT: true, GOTEL_WRITE_TRACEPARENT: true,
      GOTEL_OTEL_API: true, GOTEL_KAFKA_ACK_TIMEOUT: 300000,
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
      ["OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "a timeout in milliseconds from 1 to 2147483647"],
      ["OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "gzip or none"],
      ["OTEL_BSP_MAX_QUEUE_SIZE", "0", "a number of spans from 1 to 16777216"],
      ["OTEL_GO_AUTO_TARGET_PID", "-3", "a process id from 1 to 4194304"],
    ];
    for (const [name, value, accepted] of cases) {
      expect(() => readEnv({ [name]: value })).toThrow(`${name}=${JSON.stringify(value)} is not valid: expected ${accepted}`);
    }
  });
});

/** variable, value, the whole message (null: accepted) */
type Case = [string, string, string | null];

function expectCases(cases: Case[]): void {
  for (const [name, value, message] of cases) {
    const attempt = () => readEnv({ [name]: value });
    if (message === null) {
      expect(attempt).not.toThrow();
      continue;
    }
    let thrown: unknown;
    try {
      attempt();
    } catch (e) {
      thrown = e;
    }
    expect(thrown, `${name}=${JSON.stringify(value)}`).toBeInstanceOf(ConfigError);
    const e = thrown as ConfigError;
    expect(e.variable).toBe(name);
    expect(e.oneLine).toBe(message);
    expect(e.oneLine).not.toMatch(/[\r\n]/);
  }
}

const HEADERS = "header=value pairs separated by commas (values %-encoded)";
const RESOURCE = "key=value pairs separated by commas (values %-encoded)";

describe("OTLP headers: W3C-baggage-style lists of HTTP header fields", () => {
  test("valid lists are %-decoded", () => {
    expect(readEnv({ OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Bearer%20abc%3D%3D,x-scope_orgid=t1 , ,dd-api-key=k" }).OTEL_EXPORTER_OTLP_HEADERS)
      .toEqual({ Authorization: "Bearer abc==", "x-scope_orgid": "t1", "dd-api-key": "k" });
    expect(readEnv({ OTEL_EXPORTER_OTLP_TRACES_HEADERS: "k=caf%C3%A9,e=" }).OTEL_EXPORTER_OTLP_TRACES_HEADERS).toEqual({ k: "café", e: "" });
  });

  for (const name of ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"]) {
    test(`${name}: a bad list is one line naming the variable, without repeating the value (it may be a credential)`, () => {
      const bad = (detail: string) => `${name} is not valid: expected ${HEADERS}; ${detail}`;
      expectCases([
        [name, "a b=c", bad(`"a b" is not an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~ only)`)],
        [name, "a=x\r\nX-Evil: 1", bad("the value of 'a' contains CR (U+000D) once %-decoded")],
        [name, "a=x\nX-Evil: 1", bad("the value of 'a' contains LF (U+000A) once %-decoded")],
        [name, "a=%0d%0aX-Evil:1", bad("the value of 'a' contains CR (U+000D) once %-decoded")],
        [name, "a=%0aX-Evil:1", bad("the value of 'a' contains LF (U+000A) once %-decoded")],
        [name, "a=x%00y", bad("the value of 'a' contains NUL (U+0000) once %-decoded")],
        [name, "a=x%7f", bad("the value of 'a' contains DEL (U+007F) once %-decoded")],
        [name, "a=x%1b[31m", bad("the value of 'a' contains a control character (U+001B) once %-decoded")],
        [name, "a=x%09y", bad("the value of 'a' contains TAB (U+0009) once %-decoded")],
        [name, "a=%E2%82%AC", bad("the value of 'a' contains characters beyond U+00FF, which an HTTP header cannot carry")],
        [name, "a=%zz", bad("the value of 'a' has a bad %-escape")],
        [name, "api-key=s3cret,novalue", bad("item 2 is not key=value")],
        [name, "=v", bad("item 1 is not key=value")],
        [name, "a:b=c", bad(`"a:b" is not an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~ only)`)],
        [name, "\u00e9t\u00e9=1", bad(`"\u00e9t\u00e9" is not an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~ only)`)],
        [name, "a=b", null],
        [name, "x-a.b_c~!#$&'*+^`|=%20v%20", null],
      ]);
      expect(() => readEnv({ [name]: "api-key=s3cret,a b=c" })).not.toThrow(/s3cret/);
    });
  }
});

describe("resource attributes: lenient keys, no control characters", () => {
  test("keys are any text, values %-decoded", () => {
    expect(readEnv({ OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,team name=a%2Cb,k=%E2%82%AC" }).OTEL_RESOURCE_ATTRIBUTES)
      .toEqual({ "deployment.environment": "prod", "team name": "a,b", k: "€" });
  });
  test("bad lists", () => {
    const bad = (value: string, detail: string): Case =>
      ["OTEL_RESOURCE_ATTRIBUTES", value, `OTEL_RESOURCE_ATTRIBUTES=${JSON.stringify(value)} is not valid: expected ${RESOURCE}; ${detail}`];
    expectCases([
      bad("a=b,novalue", "'novalue' is not key=value"),
      bad("a=%0d%0aX", "the value of 'a' contains CR (U+000D) once %-decoded"),
      bad("a=x\u0000", "the value of 'a' contains NUL (U+0000) once %-decoded"),
      bad("a\u0007=x", `key "a\\u0007" contains a control character (U+0007)`),
      bad("a=%E2", "'a=%E2' has a bad %-escape"),
    ]);
  });
});

describe("numbers the SDK can honour", () => {
  const MS = "2147483647";
  const timers = ["OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"];
  const sizes = ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"];
  test("timers: 1 to 2^31-1 ms (a JS timer is a signed 32-bit count of ms; a longer one fires at once)", () => {
    for (const name of timers) {
      const kind = name === "OTEL_BSP_SCHEDULE_DELAY" ? "a delay" : "a timeout";
      const bad = (value: string): Case => [name, value, `${name}=${JSON.stringify(value)} is not valid: expected ${kind} in milliseconds from 1 to ${MS}`];
      expectCases([
        bad("3000000000"), bad("2147483648"), bad("0"), bad("-1"), bad("1.5"), bad("1e3"), bad("Infinity"), bad("NaN"), bad("10s"),
        bad("99999999999999999999999"), bad("0x10"),
        [name, MS, null], [name, "1", null], [name, " 250 ", null],
      ]);
      expect(readEnv({ [name]: MS })[name as "OTEL_BSP_SCHEDULE_DELAY"]).toBe(2147483647);
    }
  });
  test("queue and batch sizes: 1 to 2^24 spans", () => {
    for (const name of sizes) {
      const bad = (value: string): Case => [name, value, `${name}=${JSON.stringify(value)} is not valid: expected a number of spans from 1 to 16777216`];
      expectCases([
        bad("99999999999"), bad("16777217"), bad("0"), bad("-5"), bad("2.5"), bad("1e6"), bad("lots"),
        [name, "16777216", null], [name, "65536", null],
      ]);
    }
  });
  test("target pid: 1 to 2^22 (Linux's PID_MAX_LIMIT)", () => {
    const bad = (value: string): Case => ["OTEL_GO_AUTO_TARGET_PID", value, `OTEL_GO_AUTO_TARGET_PID=${JSON.stringify(value)} is not valid: expected a process id from 1 to 4194304`];
    expectCases([bad("99999999999999999999"), bad("4194305"), bad("0"), bad("-5"), bad("1.0"), ["OTEL_GO_AUTO_TARGET_PID", "4194304", null]]);
  });
});
