/**
 * net/http server spans end to end: real Go servers, the compiled gotel attached with `run`, real requests,
 * and what a real OpenTelemetry Collector received.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { ElfFile } from "../../src/gobin/elf.ts";
import { Collector, SPAN_KIND, STATUS_CODE, useCollector, type Attributes, type ReceivedSpan } from "../support/collector.ts";
import { GOTEL } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";
import { waitFor } from "../support/kernel.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

function gotelEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100", ...extra };
}

const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
/** clock offset measurement error and ms rounding on the client side */
const SLACK_NS = 3_000_000n;

interface Sent { path: string; method: string; before: bigint; after: bigint; status: number }

async function send(base: string, method: string, path: string, extraHeaders: Record<string, string> = {}): Promise<Sent> {
  const before = nowNs();
  const r = await fetch(base + path, { method, headers: { "User-Agent": "gotel-e2e/1.0", ...extraHeaders } });
  await r.arrayBuffer();
  return { path, method, before, after: nowNs(), status: r.status };
}

function byPath(spans: ReceivedSpan[], path: string): ReceivedSpan {
  const s = spans.filter((x) => x.attributes["url.path"] === path);
  if (s.length !== 1) throw new Error(`expected one span for ${path}, got ${s.length}`);
  return s[0]!;
}

/** The resource DESIGN.md asks for, for a process of `exe` built with Go `goVersion`. */
function processResource(exe: string, pid: number, goVersion: string): Attributes {
  return {
    "service.name": basename(exe),
    "process.pid": BigInt(pid),
    "process.executable.path": exe,
    "process.runtime.name": "go",
    "process.runtime.version": `go${goVersion}`,
    "telemetry.sdk.language": "go",
    "telemetry.sdk.name": "opentelemetry",
    // the OpenTelemetry JS SDK builds and exports the spans: its version, as package.json pins it
    "telemetry.sdk.version": pkg.dependencies["@opentelemetry/sdk-trace-base"],
    "telemetry.distro.name": "gotel",
    "telemetry.distro.version": pkg.version,
  };
}

interface Target { exe: string; goVersion: string; pid: number; port: number }

/**
 * The span of one request `s` to `target`: a root SERVER span with exactly these attributes (http.route only
 * when `want.route` is given), scope and resource, inside the window the client observed.
 */
function expectServerSpan(span: ReceivedSpan, s: Sent, target: Target, want: { name: string; status: bigint; route?: string }): void {
  expect(span.name).toBe(want.name);
  expect(span.kind).toBe(SPAN_KIND.SERVER);
  expect(span.parentSpanId).toBe("");
  expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
  const { "network.peer.port": peerPort, ...rest } = span.attributes;
  expect(typeof peerPort === "bigint" && peerPort > 0n).toBe(true);
  expect(rest).toEqual({
    "http.request.method": s.method,
    "url.path": s.path,
    "url.scheme": "http",
    "http.response.status_code": want.status,
    ...(want.route !== undefined ? { "http.route": want.route } : {}),
    "network.protocol.version": "1.1",
    "server.address": "127.0.0.1",
    "server.port": BigInt(target.port),
    "network.peer.address": "127.0.0.1",
    "user_agent.original": "gotel-e2e/1.0",
  });
  expect(span.status.code).toBe(want.status >= 500n ? STATUS_CODE.ERROR : STATUS_CODE.UNSET);
  expect(span.scope.name).toBe("go.opentelemetry.io/auto/net/http");
  expect(span.resource).toEqual(processResource(target.exe, target.pid, target.goVersion));
  // inside the window the client observed, to within the clock-offset slack
  expect(span.startTimeUnixNano).toBeGreaterThanOrEqual(s.before - SLACK_NS);
  expect(span.endTimeUnixNano).toBeLessThanOrEqual(s.after + SLACK_NS);
  expect(span.endTimeUnixNano).toBeGreaterThanOrEqual(span.startTimeUnixNano);
}

describe.each([
  ["1.22.12", false], ["1.24.13", false], ["1.27.4", false],
  // stripped (-ldflags=-s -w): functions from .gopclntab, offsets from gotel's table; traced exactly the same
  ["1.22.12", true], ["1.27.4", true],
] as const)("ServeMux server built with Go %s (stripped: %p)", (goVersion, stripped) => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let gotel: Proc;
  let exe: string;

  beforeAll(async () => {
    exe = buildGoFixture("http-server", { goVersion, stripped });
    server = await startServer(exe);
    collector.clear();
    gotel = await runGotel(["--pid", String(server.proc.pid)], gotelEnv(), server.proc.pid);
  }, 300_000);
  afterAll(async () => {
    await gotel?.stop();
    await server?.proc.stop();
  });

  test("one SERVER span per request: names, attributes, status, resource, timing", async () => {
    const sent = [
      await send(server.base, "GET", "/users/42"),
      await send(server.base, "POST", "/orders"),
      await send(server.base, "GET", "/fail"),
      await send(server.base, "GET", "/healthz"),
    ];
    expect(sent.map((s) => s.status)).toEqual([200, 201, 500, 200]);
    const spans = await collector.waitForSpans(4, 10_000);
    await Bun.sleep(300);
    expect(collector.spans().length).toBe(4);

    const expected: Record<string, { name: string; status: bigint; route: string }> = {
      "/users/42": { name: "GET /users/{id}", status: 200n, route: "/users/{id}" },
      "/orders": { name: "POST /orders", status: 201n, route: "/orders" },
      "/fail": { name: "GET /fail", status: 500n, route: "/fail" },
      "/healthz": { name: "GET /healthz", status: 200n, route: "/healthz" },
    };
    const target = { exe, goVersion, pid: server.proc.pid, port: server.port };
    for (const s of sent) expectServerSpan(byPath(spans, s.path), s, target, expected[s.path]!);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(4);
  }, 60_000);

  test("handlers that do not return: a panic is an ERROR span with its exception; hijacked is no error", async () => {
    collector.clear();
    /**
     * "STATUS BODY", or "closed" when the connection closed before a response. A raw request on a new
     * connection: fetch would retry a GET whose pooled connection closed, sending the request twice.
     */
    const attempt = async (path: string): Promise<string> => {
      const raw = await new Promise<string>((resolve) => {
        let got = "";
        const sock = connect(server.port, "127.0.0.1", () => sock.end(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: close\r\n\r\n`));
        sock.on("data", (d) => (got += d.toString("latin1")));
        sock.on("close", () => resolve(got));
        sock.on("error", () => undefined);
      });
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1];
      return status ? `${status} ${raw.slice(raw.indexOf("\r\n\r\n") + 4)}` : "closed";
    };
    const before = nowNs();
    const outcomes = [];
    for (const path of ["/panic", "/panic-index", "/panic-after-header", "/recovered", "/hijack", "/users/1"]) outcomes.push(await attempt(path));
    expect(outcomes.map((o) => o.split(" ")[0])).toEqual(["closed", "closed", "202", "500", "200", "200"]);
    expect(outcomes[4]).toBe("200 hijacked");
    await collector.waitForSpans(6, 10_000);
    await Bun.sleep(300);
    expect(collector.spans().length).toBe(6);
    const spans = collector.spans();
    const panicked = (path: string, type: string, message: string, status?: bigint) => {
      const span = byPath(spans, path);
      expect(span.name).toBe(`GET ${path}`);
      expect(span.status).toEqual({ code: 2, message: `panic: ${message}` });
      expect(span.attributes["error.type"]).toBe(type);
      expect(span.attributes["http.response.status_code"]).toBe(status);
      expect(span.events.map((e) => ({ name: e.name, attributes: e.attributes }))).toEqual([
        { name: "exception", attributes: { "exception.type": type, "exception.message": message } },
      ]);
      expect(span.events[0]!.timeUnixNano).toBeGreaterThanOrEqual(span.startTimeUnixNano);
      expect(span.events[0]!.timeUnixNano).toBeLessThanOrEqual(span.endTimeUnixNano);
      expect(span.startTimeUnixNano).toBeGreaterThanOrEqual(before - SLACK_NS);
    };
    panicked("/panic", "string", "boom");
    panicked("/panic-index", "runtime.boundsError", "runtime error: index out of range [5] with length 3");
    panicked("/panic-after-header", "*errors.errorString", "late", 202n);
    // recovered inside the handler: an ordinary 500, the panic is the application's business
    const recovered = byPath(spans, "/recovered");
    expect(recovered).toMatchObject({ name: "GET /recovered", status: { code: 2 }, events: [] });
    expect(recovered.status.message).toBeUndefined();
    expect(recovered.attributes["http.response.status_code"]).toBe(500n);
    expect(recovered.attributes).not.toHaveProperty("error.type");
    // hijacked: the handler wrote its own response on the raw connection; no status code is made up
    const hijacked = byPath(spans, "/hijack");
    expect(hijacked).toMatchObject({ name: "GET /hijack", status: { code: 0 }, events: [] });
    expect(hijacked.attributes).not.toHaveProperty("http.response.status_code");
    expect(byPath(spans, "/users/1")).toMatchObject({ name: "GET /users/{id}", status: { code: 0 }, events: [], attributes: { "http.response.status_code": 200n } });
    expect(new Set(spans.map((x) => x.spanId)).size).toBe(6);
  }, 60_000);

  test("200 concurrent requests over keep-alive connections: 200 spans, none lost, none duplicated", async () => {
    collector.clear();
    const sent = await Promise.all(Array.from({ length: 200 }, (_, i) => send(server.base, "GET", `/users/${i}`)));
    expect(sent.every((s) => s.status === 200)).toBe(true);
    await collector.waitForSpans(200, 20_000);
    await Bun.sleep(500);
    const spans = collector.spans();
    expect(spans.length).toBe(200);
    expect(new Set(spans.map((s) => s.attributes["url.path"])).size).toBe(200);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(200);
    for (const s of sent) {
      const span = byPath(spans, s.path);
      expect(span.startTimeUnixNano).toBeGreaterThanOrEqual(s.before - SLACK_NS);
      expect(span.endTimeUnixNano).toBeLessThanOrEqual(s.after + SLACK_NS);
    }
  }, 60_000);

  test("user_agent.original is found in a big header map too (several buckets / map groups)", async () => {
    collector.clear();
    const many = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`X-Extra-${i}`, `v${i}`]));
    await send(server.base, "GET", "/users/many-headers", many);
    const [span] = await collector.waitForSpans(1, 10_000);
    expect(span!.attributes["user_agent.original"]).toBe("gotel-e2e/1.0");
  }, 30_000);

  test("a slow handler's span lasts as long as the handler", async () => {
    collector.clear();
    const s = await send(server.base, "GET", "/slow");
    const [span] = await collector.waitForSpans(1, 10_000);
    const ms = Number(span!.endTimeUnixNano - span!.startTimeUnixNano) / 1e6;
    expect(ms).toBeGreaterThanOrEqual(50);
    expect(ms).toBeLessThanOrEqual(Number(s.after - s.before) / 1e6 + 3);
  }, 30_000);
});

describe("framework routers on net/http", () => {
  // the router serves the request directly (test/e2e/http-routes.test.ts has them mounted and behind middleware)
  test.each([
    ["chi", "http-chi", "/items/7", "/items/{id}"],
    ["gin", "http-gin", "/users/7", "/users/:id"],
    ["gorilla/mux", "http-gorilla", "/users/7", "/users/{id}"],
  ])("%s: one SERVER span per request, named by its route; url.path is the request path", async (_framework, fixture, path, route) => {
    const goVersion = "1.27.4";
    const exe = buildGoFixture(fixture, { goVersion });
    const server = await startServer(exe);
    const gotel = await runGotel(["--pid", String(server.proc.pid)], gotelEnv(), server.proc.pid);
    try {
      collector.clear();
      const s = await send(server.base, "GET", path);
      expect(s.status).toBe(200);
      await collector.waitForSpans(1, 10_000);
      await Bun.sleep(300);
      const spans = collector.spans();
      expect(spans.length).toBe(1);
      expectServerSpan(spans[0]!, s, { exe, goVersion, pid: server.proc.pid, port: server.port }, { name: `GET ${route}`, status: 200n, route });
    } finally {
      await gotel.stop();
      await server.proc.stop();
    }
  }, 180_000);
});

describe("targets: upstream's variables and repeated --pid", () => {
  const goVersion = "1.27.4";
  const spanOrigins = (spans: ReceivedSpan[]) => spans.map((s) => [s.attributes["url.path"], s.resource["process.pid"]]).sort();

  test("OTEL_GO_AUTO_TARGET_PID: the process it names", async () => {
    const server = await startServer(buildGoFixture("http-server", { goVersion }));
    const gotel = await runGotel([], gotelEnv({ OTEL_GO_AUTO_TARGET_PID: String(server.proc.pid) }), server.proc.pid);
    try {
      expect(await gotel.waitForLine(/gotel is running /)).toEndWith(" targets=1");
      collector.clear();
      await send(server.base, "GET", "/users/env-pid");
      expect(spanOrigins(await collector.waitForSpans(1, 10_000))).toEqual([["/users/env-pid", BigInt(server.proc.pid)]]);
    } finally {
      expect(await gotel.stop()).toBe(0);
      await server.proc.stop();
    }
  }, 60_000);

  test("OTEL_GO_AUTO_TARGET_EXE: every process of that executable, also one started later", async () => {
    const exe = buildGoFixture("http-server", { goVersion });
    const first = await startServer(exe);
    const gotel = await runGotel([], gotelEnv({ OTEL_GO_AUTO_TARGET_EXE: exe }), first.proc.pid);
    const second = await startServer(exe);
    try {
      await gotel.waitForLine(new RegExp(`attached pid=${second.proc.pid} `), 2_000);
      collector.clear();
      await send(first.base, "GET", "/users/env-exe-1");
      await send(second.base, "GET", "/users/env-exe-2");
      expect(spanOrigins(await collector.waitForSpans(2, 10_000))).toEqual([
        ["/users/env-exe-1", BigInt(first.proc.pid)],
        ["/users/env-exe-2", BigInt(second.proc.pid)],
      ]);
    } finally {
      expect(await gotel.stop()).toBe(0);
      await first.proc.stop();
      await second.proc.stop();
    }
  }, 60_000);

  test("--pid twice: one gotel run traces two processes of different executables and Go versions", async () => {
    const a = await startServer(buildGoFixture("http-server", { goVersion: "1.22.12" }));
    const b = await startServer(buildGoFixture("http-server", { goVersion }));
    const gotel = await runGotel(["--pid", String(a.proc.pid), "--pid", String(b.proc.pid)], gotelEnv(), a.proc.pid);
    try {
      await gotel.waitForLine(new RegExp(`attached pid=${b.proc.pid} `));
      expect(await gotel.waitForLine(/gotel is running /)).toEndWith(" targets=2");
      collector.clear();
      await send(a.base, "GET", "/users/a");
      await send(b.base, "GET", "/users/b");
      const spans = await collector.waitForSpans(2, 10_000);
      expect(spans.map((s) => [s.name, s.attributes["url.path"], s.resource["process.pid"], s.resource["process.runtime.version"]]).sort()).toEqual([
        ["GET /users/{id}", "/users/a", BigInt(a.proc.pid), "go1.22.12"],
        ["GET /users/{id}", "/users/b", BigInt(b.proc.pid), `go${goVersion}`],
      ]);
    } finally {
      expect(await gotel.stop()).toBe(0);
      await a.proc.stop();
      await b.proc.stop();
    }
  }, 120_000);

  test("--pid wins over OTEL_GO_AUTO_TARGET_PID", async () => {
    const exe = buildGoFixture("http-server", { goVersion });
    const flagged = await startServer(exe);
    const other = await startServer(exe);
    const gotel = await runGotel(["--pid", String(flagged.proc.pid)], gotelEnv({ OTEL_GO_AUTO_TARGET_PID: String(other.proc.pid) }), flagged.proc.pid);
    try {
      // every --pid target is attached before this line
      expect(await gotel.waitForLine(/gotel is running /)).toEndWith(" targets=1");
      expect(gotel.countLines(new RegExp(`pid=${other.proc.pid} `))).toBe(0);
      collector.clear();
      await send(other.base, "GET", "/users/other");
      await send(flagged.base, "GET", "/users/flagged");
      await collector.waitForSpans(1, 10_000);
      await Bun.sleep(300);
      expect(spanOrigins(collector.spans())).toEqual([["/users/flagged", BigInt(flagged.proc.pid)]]);
    } finally {
      expect(await gotel.stop()).toBe(0);
      await flagged.proc.stop();
      await other.proc.stop();
    }
  }, 60_000);
});

describe("OTLP protocols", () => {
  test.each([
    ["http/protobuf", "http/protobuf", () => collector.httpEndpoint, "none"],
    ["http/json", "http/json", () => collector.httpEndpoint, "none"],
    ["grpc", "grpc", () => collector.grpcEndpoint, "none"],
    ["http/protobuf with gzip", "http/protobuf", () => collector.httpEndpoint, "gzip"],
    ["grpc with gzip", "grpc", () => collector.grpcEndpoint, "gzip"],
  ])("%s reaches the collector", async (_label, protocol, endpoint, compression) => {
    const server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
    const gotel = await runGotel(["--pid", String(server.proc.pid)], gotelEnv({
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint(), OTEL_EXPORTER_OTLP_COMPRESSION: compression,
      OTEL_EXPORTER_OTLP_HEADERS: "x-gotel-test=1",
    }), server.proc.pid);
    try {
      collector.clear();
      await send(server.base, "GET", `/users/${protocol.replace("/", "-")}-${compression}`);
      const [span] = await collector.waitForSpans(1, 15_000);
      expect(span!.name).toBe("GET /users/{id}");
    } finally {
      expect(await gotel.stop("SIGINT")).toBe(0);
      await server.proc.stop();
    }
  }, 60_000);
});

describe("lifecycle", () => {
  test("SIGTERM flushes every span before exiting 0", async () => {
    const server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
    // a long batch delay: only the shutdown flush can deliver these
    const gotel = await runGotel(["--pid", String(server.proc.pid)], gotelEnv({
      OTEL_BSP_SCHEDULE_DELAY: "600000",
      OTEL_SERVICE_NAME: "checkout",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=test,service.name=ignored,team=a%2Cb",
    }), server.proc.pid);
    collector.clear();
    for (let i = 0; i < 5; i++) await send(server.base, "GET", `/users/flush${i}`);
    expect(collector.spans().length).toBe(0);
    expect(await gotel.stop("SIGTERM")).toBe(0);
    const spans = await collector.waitForSpans(5, 5_000);
    expect(spans.length).toBe(5);
    // OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES, as the specification says
    expect(spans[0]!.resource).toMatchObject({ "service.name": "checkout", "deployment.environment.name": "test", team: "a,b" });
    await server.proc.stop();
  }, 60_000);

  test("--exe: processes started later and restarts are traced; exits are detached", async () => {
    const exe = buildGoFixture("http-server", { goVersion: "1.27.4" });
    const gotel = await runGotel(["--exe", exe], gotelEnv());
    try {
      collector.clear();
      const first = await startServer(exe);
      await gotel.waitForLine(new RegExp(`attached pid=${first.proc.pid} `), 2_000);
      await send(first.base, "GET", "/users/first");
      await first.proc.stop();
      await gotel.waitForLine(new RegExp(`detached pid=${first.proc.pid} `), 2_000);
      const second = await startServer(exe);
      await gotel.waitForLine(new RegExp(`attached pid=${second.proc.pid} `), 2_000);
      await send(second.base, "GET", "/users/second");
      const spans = await collector.waitForSpans(2, 10_000);
      expect(spans.map((s) => [s.attributes["url.path"], s.resource["process.pid"]]).sort()).toEqual([
        ["/users/first", BigInt(first.proc.pid)],
        ["/users/second", BigInt(second.proc.pid)],
      ]);
      await second.proc.stop();
      expect(gotel.exitCode).toBeNull(); // targets exiting never stop gotel
    } finally {
      expect(await gotel.stop()).toBe(0);
    }
  }, 60_000);

  test("--all attaches to Go processes only, including ones started later", async () => {
    const sleeper = new Proc(["/bin/sleep", "60"]);
    const gotel = await runGotel(["--all"], gotelEnv());
    try {
      collector.clear();
      const server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
      await gotel.waitForLine(new RegExp(`attached pid=${server.proc.pid} `), 2_000);
      await send(server.base, "GET", "/users/all");
      // --all traces every Go process on the machine: select this server's span by its pid
      const mine = (spans: ReceivedSpan[]) => spans.filter((s) => s.resource["process.pid"] === BigInt(server.proc.pid));
      const spans = mine(await collector.waitFor((got) => mine(got).length >= 1, "the server's span", 10_000));
      expect(spans.map((s) => s.attributes["url.path"])).toEqual(["/users/all"]);
      expect(gotel.countLines(new RegExp(`pid=${sleeper.pid} `))).toBe(0);
      await server.proc.stop();
    } finally {
      await gotel.stop();
      await sleeper.stop();
    }
  }, 60_000);

  test("the collector is down at start and comes back: spans arrive, gotel keeps running", async () => {
    const { grpcPort, httpPort } = await Collector.freePorts();
    const server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
    const gotel = await runGotel(["--pid", String(server.proc.pid)], gotelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${httpPort}` }), server.proc.pid);
    let late: Collector | undefined;
    try {
      await send(server.base, "GET", "/users/early");
      await Bun.sleep(1_000);
      late = await Collector.start({ grpcPort, httpPort });
      await send(server.base, "GET", "/users/late");
      // the early span's export failed while the collector was down; the exporter retries it within its timeout
      const spans = await late.waitFor((got) => got.length >= 2, "the early (retried) and the late span", 15_000);
      expect(spans.map((s) => s.attributes["url.path"]).sort()).toEqual(["/users/early", "/users/late"]);
      expect(gotel.exitCode).toBeNull();
    } finally {
      await gotel.stop();
      await server.proc.stop();
      await late?.stop();
    }
  }, 90_000);
});

describe("a stripped binary whose Go version gotel's table does not have", () => {
  test("the probe is skipped with a reason naming the field and the version; gotel and the target keep running", async () => {
    // the same program, claiming in its build info to be Go 1.27.9 (no such release is in the table)
    const original = readFileSync(buildGoFixture("http-server", { goVersion: "1.27.4", stripped: true }));
    const elf = ElfFile.parse(new Uint8Array(original), "http-server");
    const info = elf.section(".go.buildinfo")!;
    const patched = Buffer.from(original);
    const at = patched.subarray(info.offset, info.offset + info.size).indexOf("go1.27.4");
    expect(at).toBeGreaterThan(0);
    patched.write("go1.27.9", info.offset + at);
    const dir = mkdtempSync(join(tmpdir(), "gotel-future-"));
    const exe = join(dir, "http-server");
    writeFileSync(exe, patched, { mode: 0o755 });
    const server = await startServer(exe);
    // --exe: gotel keeps following the executable (with --pid alone it would refuse at once: nothing to trace)
    const gotel = new Proc([GOTEL, "run", "--exe", exe], gotelEnv());
    try {
      const line = await gotel.waitForLine(/net\/http server instrumentation skipped/, 20_000);
      expect(line).toContain(`pid=${server.proc.pid}`);
      expect(line).toContain('reason="no offset for net/http.Request.Method in Go 1.27.9 (amd64): Go 1.27.9 is not in gotel\'s offsets table (amd64: ');
      expect(line).toContain("the binary has no DWARF to read it from");
      expect((await fetch(server.base + "/users/1")).status).toBe(200);
      await Bun.sleep(300);
      expect(gotel.exitCode).toBeNull();
      expect(gotel.countLines(/attached pid=/)).toBe(0);
    } finally {
      expect(await gotel.stop()).toBe(0);
      await server.proc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("bad input", () => {
  test("an invalid environment value: one line, exit 1", async () => {
    const g = new Proc([GOTEL, "run", "--pid", "1"], { OTEL_EXPORTER_OTLP_PROTOCOL: "carrier-pigeon" });
    await waitFor(() => g.exitCode !== null, 10_000);
    expect(g.exitCode).toBe(1);
    expect(g.stderr).toEqual(['gotel: OTEL_EXPORTER_OTLP_PROTOCOL="carrier-pigeon" is not valid: expected one of http/protobuf, http/json, grpc']);
  });

  test("a pid that does not exist: one line, exit 1", async () => {
    // a valid pid (at most pid_max) that no process has: a number above pid_max is a usage mistake (exit 2)
    let pid = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8")) - 1;
    while (existsSync(`/proc/${pid}`)) pid--;
    const g = new Proc([GOTEL, "run", "--pid", String(pid)], gotelEnv());
    await waitFor(() => g.exitCode !== null, 10_000);
    expect(g.exitCode).toBe(1);
    expect(g.stderr.filter((l) => l.startsWith("gotel: "))).toEqual([`gotel: process ${pid} does not exist; check the pid`]);
  });

  test("a non-Go target: it is reported and skipped (--exe; --pid refuses it at once, see untraceable-pid)", async () => {
    const sleeper = new Proc(["/bin/sleep", "30"]);
    const g = new Proc([GOTEL, "run", "--exe", "/bin/sleep"], gotelEnv());
    try {
      await g.waitForLine(/not tracing a process: its executable cannot be read as a Go program/, 10_000);
    } finally {
      await g.stop();
      await sleeper.stop();
    }
  });

  test("a target that exits while attached", async () => {
    const server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
    const g = await runGotel(["--pid", String(server.proc.pid)], gotelEnv(), server.proc.pid);
    await server.proc.stop("SIGKILL");
    await g.waitForLine(new RegExp(`detached pid=${server.proc.pid} .*reason=exited`), 5_000);
    expect(await g.stop()).toBe(0);
  }, 30_000);
});
