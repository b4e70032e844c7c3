import { describe, expect, test } from "bun:test";
import { ConfigError, readEnv } from "../../src/config/env.ts";

describe("environment configuration", () => {
  test("defaults", () => {
    expect(readEnv({})).toEqual({ OTEL_LOG_LEVEL: "info", OTEL_GO_AUTO_SHOW_VERIFIER_LOG: false });
  });

  test("accepted spellings", () => {
    expect(readEnv({ OTEL_LOG_LEVEL: "DEBUG", OTEL_GO_AUTO_SHOW_VERIFIER_LOG: "True" })).toEqual({
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
  });
});
