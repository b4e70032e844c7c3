/**
 * A real OpenTelemetry Collector for end-to-end tests: starts build/otelcol/otelcol-gotel-test (built by
 * scripts/build-collector.sh from test/collector/builder-config.yaml) on free loopback ports, with the OTLP
 * receiver (gRPC, HTTP protobuf and HTTP JSON) feeding the file exporter (OTLP JSON lines) and the debug
 * exporter (one log line per batch), and parses what the file exporter wrote.
 *
 *   const collector = await Collector.start();
 *   // point the exporter at collector.httpEndpoint (http/protobuf, http/json) or collector.grpcEndpoint (grpc)
 *   const spans = await collector.waitForSpans(2);
 *   await collector.stop();
 *
 * Value types (chosen so that a test can tell an int attribute from a double one, as the semantic conventions
 * demand, e.g. `http.response.status_code` must be an int):
 *   - OTLP intValue (int64, a string in OTLP JSON)  -> bigint     e.g. `200n`
 *   - doubleValue                                   -> number     (NaN and ±Infinity included)
 *   - stringValue / boolValue                       -> string / boolean
 *   - bytesValue (base64 in JSON)                   -> Uint8Array
 *   - arrayValue                                    -> AttributeValue[]
 *   - kvlistValue                                   -> { [key]: AttributeValue }
 *   - an empty AnyValue                             -> null
 *   - timestamps (fixed64 nanoseconds)              -> bigint
 *   - trace/span ids                                -> lowercase hex ("" when absent, e.g. a root's parentSpanId)
 *   - kind and status code                          -> the OTLP enum numbers (see SPAN_KIND, STATUS_CODE; note that
 *     OTLP's kind numbers are the JS API's SpanKind + 1)
 */
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "bun:test";
import { ROOT } from "./go.ts";
import { freePort, portAccepts } from "./ports.ts";
import { requireRoot } from "./kernel.ts";

export const COLLECTOR_BINARY = join(ROOT, "build/otelcol/otelcol-gotel-test");
const BUILD_SCRIPT = join(ROOT, "scripts/build-collector.sh");

/** OTLP `Span.SpanKind` numbers (the JS API's SpanKind is these minus one). */
export const SPAN_KIND = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
/** OTLP `Status.StatusCode` numbers (the same as the JS API's SpanStatusCode). */
export const STATUS_CODE = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export type AttributeValue =
  | string
  | number
  | boolean
  | bigint
  | Uint8Array
  | null
  | AttributeValue[]
  | { [key: string]: AttributeValue };
export type Attributes = Record<string, AttributeValue>;

export interface ReceivedEvent { name: string; timeUnixNano: bigint; attributes: Attributes }
export interface ReceivedLink { traceId: string; spanId: string; traceState: string; attributes: Attributes }

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span */
  parentSpanId: string;
  traceState: string;
  /** W3C trace flags in the low 8 bits; bits 8-9 say whether the parent is remote (OTLP SpanFlags) */
  flags: number;
  name: string;
  /** OTLP enum: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer (SPAN_KIND) */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  events: ReceivedEvent[];
  links: ReceivedLink[];
  /** code: 0 unset, 1 ok, 2 error (STATUS_CODE); message only when non-empty */
  status: { code: number; message?: string };
  /** what limits left out: droppedAttributesCount, droppedEventsCount, droppedLinksCount */
  dropped: { attributes: number; events: number; links: number };
  resource: Attributes;
  /** version and schemaUrl (the scope spans') only when non-empty */
  scope: { name: string; version?: string; schemaUrl?: string };
}

// ---- OTLP JSON (ExportTraceServiceRequest / TracesData) -> ReceivedSpan[] ----------------------------------------

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function objectAt(o: Json, key: string): Json {
  const v = o[key];
  return isObject(v) ? v : {};
}
function arrayAt(o: Json, key: string): unknown[] {
  const v = o[key];
  return Array.isArray(v) ? v : [];
}
function stringAt(o: Json, key: string): string {
  const v = o[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new Error(`OTLP JSON: "${key}" is not a string: ${JSON.stringify(v)}`);
  return v;
}
function numberAt(o: Json, key: string): number {
  const v = o[key];
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
  throw new Error(`OTLP JSON: "${key}" is not a number: ${JSON.stringify(v)}`);
}
/** int64/fixed64 values are strings in OTLP JSON (numbers are accepted too). */
function bigintOf(v: unknown, what: string): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  throw new Error(`OTLP JSON: ${what} is not an integer: ${JSON.stringify(v)}`);
}
function doubleOf(v: unknown): number {
  if (typeof v === "number") return v;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  if (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v))) return Number(v);
  throw new Error(`OTLP JSON: doubleValue is not a number: ${JSON.stringify(v)}`);
}
/** ids are hex in OTLP JSON; normalised to lower case */
function idAt(o: Json, key: string, hexLength: number): string {
  const v = stringAt(o, key).toLowerCase();
  if (v !== "" && !new RegExp(`^[0-9a-f]{${hexLength}}$`).test(v)) {
    throw new Error(`OTLP JSON: "${key}" is not ${hexLength} hex digits: ${JSON.stringify(v)}`);
  }
  return v;
}

/** One OTLP JSON AnyValue, typed as described at the top of this file. */
export function parseAnyValue(v: unknown): AttributeValue {
  if (!isObject(v)) return null;
  if ("stringValue" in v) return typeof v.stringValue === "string" ? v.stringValue : String(v.stringValue ?? "");
  if ("boolValue" in v) return v.boolValue === true;
  if ("intValue" in v) return bigintOf(v.intValue, "intValue");
  if ("doubleValue" in v) return doubleOf(v.doubleValue);
  if ("bytesValue" in v) return new Uint8Array(Buffer.from(typeof v.bytesValue === "string" ? v.bytesValue : "", "base64"));
  if ("arrayValue" in v) return arrayAt(isObject(v.arrayValue) ? v.arrayValue : {}, "values").map(parseAnyValue);
  if ("kvlistValue" in v) return parseKeyValues(arrayAt(isObject(v.kvlistValue) ? v.kvlistValue : {}, "values"));
  return null;
}

/** A list of OTLP JSON KeyValue ({ key, value: AnyValue }) as a plain record. */
export function parseKeyValues(list: unknown[]): Attributes {
  const out: Attributes = {};
  for (const kv of list) {
    if (!isObject(kv)) continue;
    out[stringAt(kv, "key")] = parseAnyValue(kv.value);
  }
  return out;
}

/** Every span of one OTLP JSON ExportTraceServiceRequest (the same shape as TracesData). */
export function parseOtlpTracesJson(request: unknown): ReceivedSpan[] {
  if (!isObject(request)) throw new Error("OTLP JSON: the request is not an object");
  const spans: ReceivedSpan[] = [];
  for (const rs of arrayAt(request, "resourceSpans")) {
    if (!isObject(rs)) continue;
    const resource = parseKeyValues(arrayAt(objectAt(rs, "resource"), "attributes"));
    for (const ss of arrayAt(rs, "scopeSpans")) {
      if (!isObject(ss)) continue;
      const scopeJson = objectAt(ss, "scope");
      const scope: ReceivedSpan["scope"] = { name: stringAt(scopeJson, "name") };
      const version = stringAt(scopeJson, "version");
      if (version !== "") scope.version = version;
      const schemaUrl = stringAt(ss, "schemaUrl");
      if (schemaUrl !== "") scope.schemaUrl = schemaUrl;
      for (const s of arrayAt(ss, "spans")) {
        if (!isObject(s)) continue;
        const statusJson = objectAt(s, "status");
        const status: ReceivedSpan["status"] = { code: numberAt(statusJson, "code") };
        const message = stringAt(statusJson, "message");
        if (message !== "") status.message = message;
        spans.push({
          traceId: idAt(s, "traceId", 32),
          spanId: idAt(s, "spanId", 16),
          parentSpanId: idAt(s, "parentSpanId", 16),
          traceState: stringAt(s, "traceState"),
          flags: numberAt(s, "flags"),
          name: stringAt(s, "name"),
          kind: numberAt(s, "kind"),
          startTimeUnixNano: bigintOf(s.startTimeUnixNano, "startTimeUnixNano"),
          endTimeUnixNano: bigintOf(s.endTimeUnixNano, "endTimeUnixNano"),
          attributes: parseKeyValues(arrayAt(s, "attributes")),
          events: arrayAt(s, "events").filter(isObject).map((e) => ({
            name: stringAt(e, "name"),
            timeUnixNano: bigintOf(e.timeUnixNano, "timeUnixNano"),
            attributes: parseKeyValues(arrayAt(e, "attributes")),
          })),
          links: arrayAt(s, "links").filter(isObject).map((l) => ({
            traceId: idAt(l, "traceId", 32),
            spanId: idAt(l, "spanId", 16),
            traceState: stringAt(l, "traceState"),
            attributes: parseKeyValues(arrayAt(l, "attributes")),
          })),
          status,
          dropped: { attributes: numberAt(s, "droppedAttributesCount"), events: numberAt(s, "droppedEventsCount"), links: numberAt(s, "droppedLinksCount") },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

/** One line per span, for error messages: name, kind, ids, parent. */
export function describeSpans(spans: readonly ReceivedSpan[]): string {
  if (spans.length === 0) return "  (none)";
  const kinds = ["unspecified", "internal", "server", "client", "producer", "consumer"];
  return spans
    .map((s) => `  - ${JSON.stringify(s.name)} ${kinds[s.kind] ?? s.kind} trace=${s.traceId} span=${s.spanId} parent=${s.parentSpanId || "-"}` +
      ` status=${s.status.code} service=${String(s.resource["service.name"] ?? "?")}`)
    .join("\n");
}

// ---- building and ports ----------------------------------------------------------------------------------------

let building: Promise<string> | undefined;

/**
 * Runs scripts/build-collector.sh (a no-op taking a few ms when the binary is up to date; the first build on a
 * fresh machine downloads the collector's modules and takes minutes) once per test process.
 */
export function buildCollector(): Promise<string> {
  building ??= (async () => {
    const p = Bun.spawn(["bash", BUILD_SCRIPT], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code !== 0) {
      building = undefined;
      throw new Error(`scripts/build-collector.sh failed (exit ${code}):\n${out}${err}`);
    }
    return COLLECTOR_BINARY;
  })();
  return building;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- the collector process ---------------------------------------------------------------------------------------

export interface CollectorOptions {
  /** OTLP gRPC port on 127.0.0.1; default: a free one. Pass the previous collector's port to come back on it. */
  grpcPort?: number;
  /** OTLP HTTP port on 127.0.0.1; default: a free one */
  httpPort?: number;
  /** how long to wait for the collector to be ready; default 20 s */
  startTimeoutMs?: number;
  /** the debug exporter's verbosity in the collector's log (see log()); default "basic": one line per batch */
  debugVerbosity?: "basic" | "normal" | "detailed";
}

/** Collectors still running: killed when the test process exits, in case a test forgot stop(). */
const live = new Set<Collector>();
let exitHookInstalled = false;

const READY_LINE = "Everything is ready";
const LOG_LIMIT = 4 << 20;

export class Collector {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** for OTEL_EXPORTER_OTLP_ENDPOINT with protocol grpc: "http://127.0.0.1:PORT" (plain text) */
  readonly grpcEndpoint: string;
  /** "127.0.0.1:PORT", for clients that want host:port */
  readonly grpcAddress: string;
  /** for OTEL_EXPORTER_OTLP_ENDPOINT with http/protobuf or http/json: "http://127.0.0.1:PORT" */
  readonly httpEndpoint: string;
  /** httpEndpoint + "/v1/traces" (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or a JS exporter's url) */
  readonly httpTracesUrl: string;
  /** the temp dir with config.yaml and traces.jsonl; removed by stop() */
  readonly dir: string;

  private readonly tracesFile: string;
  private readonly proc: ReturnType<typeof Bun.spawn>;
  private logText = "";
  private received: ReceivedSpan[] = [];
  private consumed = 0;
  private exitCode: number | null = null;
  private stopped = false;

  private constructor(dir: string, grpcPort: number, httpPort: number, proc: ReturnType<typeof Bun.spawn>) {
    this.dir = dir;
    this.tracesFile = join(dir, "traces.jsonl");
    this.grpcPort = grpcPort;
    this.httpPort = httpPort;
    this.grpcAddress = `127.0.0.1:${grpcPort}`;
    this.grpcEndpoint = `http://127.0.0.1:${grpcPort}`;
    this.httpEndpoint = `http://127.0.0.1:${httpPort}`;
    this.httpTracesUrl = `${this.httpEndpoint}/v1/traces`;
    this.proc = proc;
    void proc.exited.then((code) => { this.exitCode = code; live.delete(this); });
    for (const stream of [proc.stdout, proc.stderr]) {
      if (stream instanceof ReadableStream) void this.drain(stream);
    }
  }

  /** the collector's process id (the benchmarks read its CPU time) */
  get pid(): number {
    return this.proc.pid;
  }

  /** Two distinct free loopback ports, e.g. to start gotel before any collector listens on them. */
  static async freePorts(): Promise<{ grpcPort: number; httpPort: number }> {
    const grpcPort = await freePort();
    let httpPort = await freePort();
    while (httpPort === grpcPort) httpPort = await freePort();
    return { grpcPort, httpPort };
  }

  /**
   * Builds the collector if needed (scripts/build-collector.sh), writes its config into a new temp dir, starts it
   * and waits until it logged that it is ready and both ports accept connections. Throws with the collector's
   * log when it exits or is not ready within startTimeoutMs.
   */
  static async start(opts: CollectorOptions = {}): Promise<Collector> {
    const binary = await buildCollector();
    const ports = opts.grpcPort !== undefined && opts.httpPort !== undefined
      ? { grpcPort: opts.grpcPort, httpPort: opts.httpPort }
      : await Collector.freePorts();
    const grpcPort = opts.grpcPort ?? ports.grpcPort;
    const httpPort = opts.httpPort ?? ports.httpPort;
    if (grpcPort === httpPort) throw new Error(`Collector.start: grpcPort and httpPort are both ${grpcPort}`);

    const dir = mkdtempSync(join(tmpdir(), "gotel-otelcol-"));
    const config = {
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: `127.0.0.1:${grpcPort}` },
            http: { endpoint: `127.0.0.1:${httpPort}` },
          },
        },
      },
      exporters: {
        file: { path: join(dir, "traces.jsonl"), format: "json", flush_interval: "50ms" },
        debug: { verbosity: opts.debugVerbosity ?? "basic" },
      },
      service: {
        // no internal metrics: they would listen on :8888 and collide between parallel collectors
        telemetry: { logs: { level: "info" }, metrics: { level: "none" } },
        pipelines: { traces: { receivers: ["otlp"], exporters: ["file", "debug"] } },
      },
    };
    // JSON is YAML: the collector's file provider reads it as is.
    const configFile = join(dir, "config.yaml");
    writeFileSync(configFile, JSON.stringify(config, null, 2) + "\n");

    const proc = Bun.spawn([binary, `--config=${configFile}`], { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const c = new Collector(dir, grpcPort, httpPort, proc);
    live.add(c);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => { for (const l of live) l.proc.kill("SIGKILL"); });
    }

    const timeoutMs = opts.startTimeoutMs ?? 20_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (c.exitCode !== null) {
        await sleep(50); // let the log drain
        const log = c.log();
        c.cleanUp();
        throw new Error(`the collector exited with code ${c.exitCode} while starting (gRPC ${grpcPort}, HTTP ${httpPort}); its log:\n${log}`);
      }
      if (c.logText.includes(READY_LINE) && (await portAccepts(grpcPort)) && (await portAccepts(httpPort))) return c;
      if (Date.now() > deadline) {
        const log = c.log();
        await c.stop();
        throw new Error(`the collector was not ready within ${timeoutMs} ms (gRPC ${grpcPort}, HTTP ${httpPort}); its log:\n${log}`);
      }
      await sleep(50);
    }
  }

  /** true while the process runs */
  get running(): boolean {
    return this.exitCode === null;
  }

  /** The collector's stdout and stderr so far (its own log and the debug exporter's lines). */
  log(): string {
    return this.logText;
  }

  /** Every span received so far (kept after stop()), in arrival order. */
  spans(): ReceivedSpan[] {
    this.ingest();
    return [...this.received];
  }

  /** Forgets the spans received so far: later spans() and waitForSpans() count from here. */
  clear(): void {
    this.ingest();
    this.received = [];
  }

  /** Polls until at least n spans arrived; throws, listing what did arrive, after timeoutMs (default 10 s). */
  async waitForSpans(n: number, timeoutMs = 10_000): Promise<ReceivedSpan[]> {
    return this.waitFor((spans) => spans.length >= n, `at least ${n} span(s)`, timeoutMs);
  }

  /** Polls until `done(spans)` holds; throws, listing what did arrive, after timeoutMs (default 10 s). */
  async waitFor(done: (spans: ReceivedSpan[]) => boolean, what = "the expected spans", timeoutMs = 10_000): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const spans = this.spans();
      if (done(spans)) return spans;
      if (this.exitCode !== null && !this.stopped) {
        throw new Error(`the collector exited (code ${this.exitCode}) while waiting for ${what}; received ${spans.length}:\n` +
          `${describeSpans(spans)}\nits log:\n${this.logTail()}`);
      }
      if (Date.now() > deadline || this.stopped) {
        throw new Error(`waited ${timeoutMs} ms for ${what}; received ${spans.length}:\n${describeSpans(spans)}\n` +
          `collector log (last lines):\n${this.logTail()}`);
      }
      await sleep(50);
    }
  }

  /**
   * SIGTERM (SIGKILL after 10 s), wait for the exit, read the spans it flushed on shutdown, remove the temp dir.
   * spans() and log() keep working. Idempotent. To come back on the same ports:
   * `Collector.start({ grpcPort: c.grpcPort, httpPort: c.httpPort })`.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.exitCode === null) {
      this.proc.kill("SIGTERM");
      const exited = await Promise.race([this.proc.exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!exited) {
        this.proc.kill("SIGKILL");
        await this.proc.exited;
      }
    }
    await sleep(20); // the log streams end after the exit
    this.ingest();
    this.cleanUp();
  }

  // ---- internals ----

  private cleanUp(): void {
    this.stopped = true;
    live.delete(this);
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }

  private logTail(lines = 40): string {
    return this.logText.trimEnd().split("\n").slice(-lines).join("\n");
  }

  private async drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        this.logText += decoder.decode(chunk, { stream: true });
        if (this.logText.length > LOG_LIMIT) this.logText = this.logText.slice(-LOG_LIMIT / 2);
      }
    } catch {
      // the stream errors only when the process is gone; nothing to add
    }
  }

  /** Parses the complete lines the file exporter appended since the last call. */
  private ingest(): void {
    if (!existsSync(this.tracesFile)) return;
    const fd = openSync(this.tracesFile, "r");
    let chunk: Buffer;
    try {
      const size = fstatSync(fd).size;
      if (size <= this.consumed) return;
      chunk = Buffer.alloc(size - this.consumed);
      let got = 0;
      while (got < chunk.length) {
        const n = readSync(fd, chunk, got, chunk.length - got, this.consumed + got);
        if (n === 0) break;
        got += n;
      }
      chunk = chunk.subarray(0, got);
    } finally {
      closeSync(fd);
    }
    const end = chunk.lastIndexOf(0x0a); // a line may be half-written: the rest comes with the next flush
    if (end < 0) return;
    this.consumed += end + 1;
    for (const line of chunk.subarray(0, end).toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      let request: unknown;
      try {
        request = JSON.parse(line);
      } catch (e) {
        throw new Error(`the file exporter wrote a line that is not JSON (${String(e)}): ${line.slice(0, 300)}`);
      }
      this.received.push(...parseOtlpTracesJson(request));
    }
  }
}

/**
 * For an e2e test file: checks root, starts one collector before the file's tests and stops it after.
 * Returns a getter, since the collector exists only once beforeAll ran.
 */
export function useCollector(): () => Collector {
  let collector: Collector | undefined;
  beforeAll(async () => {
    requireRoot();
    collector = await Collector.start();
  }, 900_000);
  afterAll(async () => {
    await collector?.stop();
  });
  return () => {
    if (!collector) throw new Error("the collector is not running (beforeAll failed?)");
    return collector;
  };
}
