/**
 * Environment variables -> validated settings, with the names and meanings of the OpenTelemetry
 * specification and of upstream (OpenTelemetry Go Automatic Instrumentation). Every problem is reported as
 * one line naming the variable and what it accepts.
 */
import * as v from "valibot";
import { GotelError } from "../errors.ts";
import { LOG_LEVELS, type LogLevel } from "../log.ts";
import { SAMPLERS } from "../traces/sampling.ts";

export class ConfigError extends GotelError {
  /** secret: the value may hold credentials (headers): the message names the variable but does not repeat it */
  constructor(readonly variable: string, value: string, accepted: string, secret = false) {
    super(`${secret ? variable : `${variable}=${JSON.stringify(value)}`} is not valid: expected ${accepted}`);
    this.name = "ConfigError";
  }
}

const trimmed = v.pipe(v.string(), v.trim());

const boolean = v.pipe(
  trimmed,
  v.toLowerCase(),
  v.picklist(["true", "false", "1", "0", "yes", "no", ""]),
  v.transform((s) => s === "true" || s === "1" || s === "yes"),
);

/** upstream accepts OTEL_LOG_LEVEL in any case; "warning" and "none" are common spellings too */
const logLevel = v.pipe(
  trimmed,
  v.toLowerCase(),
  v.transform((s) => (s === "warning" ? "warn" : s === "" ? "info" : s)),
  v.picklist([...LOG_LEVELS, "none"]),
  v.transform((s): LogLevel => (s === "none" ? "error" : s)),
);

/** A whole number from 1 to max, written in decimal digits only (no sign, exponent or fraction). */
const positiveInt = (max: number) => v.pipe(trimmed, v.regex(/^\d+$/), v.transform(Number), v.integer(), v.minValue(1), v.maxValue(max));
/** JavaScript timers (setTimeout) hold a signed 32-bit number of milliseconds; a longer delay fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * Queue and batch sizes: 2^24 (16,777,216) spans. A queued span is a ReadableSpan of roughly 1 KiB or more in
 * the JS heap, so a queue this long already holds gigabytes; anything larger is a typo, not a setting this
 * process could honour.
 */
const MAX_SPANS = 2 ** 24;
/** Linux pids are at most PID_MAX_LIMIT, 2^22 on 64-bit kernels (kernel.pid_max cannot be set higher). */
export const MAX_PID = 2 ** 22;
const milliseconds = positiveInt(MAX_TIMER_MS);
const spans = positiveInt(MAX_SPANS);

const exporter = v.pipe(trimmed, v.toLowerCase(), v.transform((s) => s || "otlp"), v.picklist(["otlp", "console", "none"]));
const protocol = v.pipe(trimmed, v.toLowerCase(), v.picklist(["http/protobuf", "http/json", "grpc"]));
const compression = v.pipe(trimmed, v.toLowerCase(), v.picklist(["gzip", "none"]));
const url = v.pipe(trimmed, v.url(), v.regex(/^https?:\/\//));

/** RFC 9110 token characters (tchar): what an HTTP header name is made of. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** C0 controls and DEL (CR, LF and NUL among them): they would split or end an HTTP header line. */
const CONTROL = /[\u0000-\u001f\u007f]/;

function describeControl(s: string): string {
  const c = CONTROL.exec(s)![0].charCodeAt(0);
  const name = c === 13 ? "CR" : c === 10 ? "LF" : c === 0 ? "NUL" : c === 9 ? "TAB" : c === 127 ? "DEL" : "a control character";
  return `${name} (U+${c.toString(16).toUpperCase().padStart(4, "0")})`;
}

/**
 * `key1=value1,key2=value2`, values percent-encoded (W3C Baggage octets), as the spec defines for headers and
 * resource attributes. Decoded values may not hold control characters. httpHeaders: keys must be HTTP tokens
 * and values Latin-1 (what an HTTP/1 header line can carry), and the messages never repeat a value (they are
 * often credentials); resource attribute keys are not HTTP names (`deployment.environment`, any text) and
 * are only required to be non-empty and free of control characters.
 */
const keyValueList = (httpHeaders: boolean) => v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const out: Record<string, string> = {};
    let n = 0;
    for (const item of dataset.value.split(",")) {
      if (item.trim() === "") continue;
      n++;
      const eq = item.indexOf("=");
      const key = eq > 0 ? item.slice(0, eq).trim() : "";
      const fail = (message: string) => {
        addIssue({ message });
        return NEVER;
      };
      if (!key) return fail(httpHeaders ? `item ${n} is not key=value` : `'${item.trim()}' is not key=value`);
      if (httpHeaders && !HTTP_TOKEN.test(key)) {
        return fail(`${JSON.stringify(key)} is not an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~ only)`);
      }
      if (CONTROL.test(key)) return fail(`key ${JSON.stringify(key)} contains ${describeControl(key)}`);
      let value: string;
      try {
        value = decodeURIComponent(item.slice(eq + 1).trim());
      } catch {
        return fail(httpHeaders ? `the value of '${key}' has a bad %-escape` : `'${item.trim()}' has a bad %-escape`);
      }
      if (CONTROL.test(value)) return fail(`the value of '${key}' contains ${describeControl(value)} once %-decoded`);
      if (httpHeaders && /[^\u0000-\u00ff]/.test(value)) {
        return fail(`the value of '${key}' contains characters beyond U+00FF, which an HTTP header cannot carry`);
      }
      out[key] = value;
    }
    return out;
  }),
);

const sampler = v.pipe(trimmed, v.toLowerCase(), v.picklist(SAMPLERS));
const ratio = v.pipe(trimmed, v.transform(Number), v.number(), v.minValue(0), v.maxValue(1));
/** gotel propagates W3C trace context; baggage is accepted (it is upstream's default) but not carried yet */
const PROPAGATORS = ["tracecontext", "baggage", "none"] as const;
const propagators = v.pipe(
  trimmed,
  v.toLowerCase(),
  v.transform((s) => s.split(",").map((p) => p.trim()).filter(Boolean)),
  v.array(v.picklist(PROPAGATORS)),
);

const pid = v.pipe(trimmed, v.regex(/^[1-9]\d*$/), v.transform(Number), v.maxValue(MAX_PID));
/** how uprobes attach: `auto` uses uprobe.multi where the kernel has it (6.6+); `classic` is what older kernels get */
const ATTACH = ["auto", "classic", "multi"] as const;
const attach = v.pipe(trimmed, v.toLowerCase(), v.picklist(ATTACH));

interface Spec<S extends v.GenericSchema<string, unknown>, F extends string | undefined = string | undefined> {
  schema: S;
  accepted: string;
  fallback: F;
  /** the value may hold credentials: errors do not repeat it */
  secret?: boolean;
}

function spec<S extends v.GenericSchema<string, unknown>>(schema: S, accepted: string): Spec<S, undefined>;
function spec<S extends v.GenericSchema<string, unknown>>(schema: S, accepted: string, fallback: string): Spec<S, string>;
function spec<S extends v.GenericSchema<string, unknown>>(schema: S, accepted: string, fallback?: string): Spec<S> {
  return { schema, accepted, fallback };
}

const HEADERS = "header=value pairs separated by commas (values %-encoded)";

const variables = {
  OTEL_LOG_LEVEL: spec(logLevel, "one of debug, info, warn, error", "info"),
  OTEL_GO_AUTO_SHOW_VERIFIER_LOG: spec(boolean, "true or false", "false"),
  OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: spec(boolean, "true or false", "false"),
  OTEL_GO_AUTO_PARSE_DB_STATEMENT: spec(boolean, "true or false", "false"),
  OTEL_GO_AUTO_TARGET_EXE: spec(trimmed, "the path of an executable"),
  OTEL_GO_AUTO_TARGET_PID: spec(pid, `a process id from 1 to ${MAX_PID}`),
  GOTEL_UPROBE_ATTACH: spec(attach, `one of ${ATTACH.join(", ")}`, "auto"),
  GOTEL_SAME_HOST_LINKING: spec(boolean, "true or false", "true"),
  GOTEL_SOCKET_TRACEPARENT: spec(boolean, "true or false", "true"),
  GOTEL_WRITE_TRACEPARENT: spec(boolean, "true or false", "true"),
  GOTEL_OTEL_API: spec(boolean, "true or false", "true"),
  GOTEL_KAFKA_ACK_TIMEOUT: spec(milliseconds, `a time in milliseconds from 1 to ${MAX_TIMER_MS}`, "300000"),
  OTEL_SERVICE_NAME: spec(trimmed, "a service name"),
  OTEL_RESOURCE_ATTRIBUTES: spec(keyValueList(false), "key=value pairs separated by commas (values %-encoded)"),
  OTEL_TRACES_EXPORTER: spec(exporter, "one of otlp, console, none", "otlp"),
  OTEL_EXPORTER_OTLP_PROTOCOL: spec(protocol, "one of http/protobuf, http/json, grpc"),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: spec(protocol, "one of http/protobuf, http/json, grpc"),
  OTEL_EXPORTER_OTLP_ENDPOINT: spec(url, "an http:// or https:// URL"),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: spec(url, "an http:// or https:// URL"),
  OTEL_EXPORTER_OTLP_HEADERS: { ...spec(keyValueList(true), HEADERS), secret: true },
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: { ...spec(keyValueList(true), HEADERS), secret: true },
  OTEL_EXPORTER_OTLP_TIMEOUT: spec(milliseconds, `a timeout in milliseconds from 1 to ${MAX_TIMER_MS}`),
  OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: spec(milliseconds, `a timeout in milliseconds from 1 to ${MAX_TIMER_MS}`),
  OTEL_EXPORTER_OTLP_COMPRESSION: spec(compression, "gzip or none"),
  OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: spec(compression, "gzip or none"),
  OTEL_TRACES_SAMPLER: spec(sampler, `one of ${SAMPLERS.join(", ")}`, "parentbased_always_on"),
  OTEL_TRACES_SAMPLER_ARG: spec(ratio, "a sampling ratio from 0 to 1", "1"),
  OTEL_PROPAGATORS: spec(propagators, `a comma-separated list of ${PROPAGATORS.join(", ")} (gotel propagates W3C tracecontext)`, "tracecontext,baggage"),
  OTEL_BSP_SCHEDULE_DELAY: spec(milliseconds, `a delay in milliseconds from 1 to ${MAX_TIMER_MS}`, "5000"),
  OTEL_BSP_EXPORT_TIMEOUT: spec(milliseconds, `a timeout in milliseconds from 1 to ${MAX_TIMER_MS}`, "30000"),
  OTEL_BSP_MAX_QUEUE_SIZE: spec(spans, `a number of spans from 1 to ${MAX_SPANS}`, "16384"),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spec(spans, `a number of spans from 1 to ${MAX_SPANS}`, "512"),
} as const;

type Variables = typeof variables;
type Value<K extends keyof Variables> = v.InferOutput<Variables[K]["schema"]>;
/** Variables with a fallback are always set; the others are undefined when absent or empty. */
type WithFallback = { [K in keyof Variables]: Variables[K]["fallback"] extends string ? K : never }[keyof Variables];
export type EnvConfig = { [K in WithFallback]: Value<K> } & { [K in Exclude<keyof Variables, WithFallback>]?: Value<K> };

export function readEnv(env: Record<string, string | undefined> = process.env): EnvConfig {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(variables) as [keyof Variables, Spec<v.GenericSchema<string, unknown>>][]) {
    const given = env[name];
    const raw = given === undefined || given.trim() === "" ? s.fallback : given;
    if (raw === undefined) continue;
    const parsed = v.safeParse(s.schema, raw);
    if (!parsed.success) {
      const detail = parsed.issues.find((i) => i.type === "raw_transform")?.message;
      throw new ConfigError(name, raw, detail ? `${s.accepted}; ${detail}` : s.accepted, s.secret === true);
    }
    out[name] = parsed.output;
  }
  return out as EnvConfig;
}
