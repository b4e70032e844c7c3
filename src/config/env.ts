/**
 * Environment variables -> validated settings. Every problem is reported as one line naming the variable and
 * what it accepts. Later issues add the OTEL_* exporter, sampler and target variables here.
 */
import * as v from "valibot";
import { GotelError } from "../errors.ts";
import { LOG_LEVELS, type LogLevel } from "../log.ts";

export class ConfigError extends GotelError {
  constructor(readonly variable: string, value: string, accepted: string) {
    super(`${variable}=${JSON.stringify(value)} is not valid: expected ${accepted}`);
    this.name = "ConfigError";
  }
}

const boolean = v.pipe(
  v.string(),
  v.trim(),
  v.toLowerCase(),
  v.picklist(["true", "false", "1", "0", "yes", "no", ""]),
  v.transform((s) => s === "true" || s === "1" || s === "yes"),
);

/** upstream accepts OTEL_LOG_LEVEL in any case; "warning" and "none" are common spellings too */
const logLevel = v.pipe(
  v.string(),
  v.trim(),
  v.toLowerCase(),
  v.transform((s) => (s === "warning" ? "warn" : s === "" ? "info" : s)),
  v.picklist([...LOG_LEVELS, "none"]),
  v.transform((s): LogLevel => (s === "none" ? "error" : s)),
);

const variables = {
  OTEL_LOG_LEVEL: { schema: logLevel, accepted: "one of debug, info, warn, error", fallback: "info" },
  OTEL_GO_AUTO_SHOW_VERIFIER_LOG: { schema: boolean, accepted: "true or false", fallback: "false" },
} as const;

type Variables = typeof variables;
export type EnvConfig = { [K in keyof Variables]: v.InferOutput<Variables[K]["schema"]> };

export function readEnv(env: Record<string, string | undefined> = process.env): EnvConfig {
  const out: Partial<Record<keyof Variables, unknown>> = {};
  for (const [name, spec] of Object.entries(variables) as [keyof Variables, Variables[keyof Variables]][]) {
    const raw = env[name] ?? spec.fallback;
    const parsed = v.safeParse(spec.schema, raw);
    if (!parsed.success) throw new ConfigError(name, raw, spec.accepted);
    out[name] = parsed.output;
  }
  return out as EnvConfig;
}
