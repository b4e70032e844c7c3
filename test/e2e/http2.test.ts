/**
 * HTTP/2 server spans end to end: a TLS server speaking h2 through net/http's own HTTP/2 server (bundled into
 * net/http before Go 1.27, net/http/internal/http2 from 1.27) and through golang.org/x/net's
 * (http2.ConfigureServer), over TLS and unencrypted (net/http's own h2c, Go >= 1.24), requests from a Go HTTP/2
 * client, and what a real OpenTelemetry Collector received.
 * The status code of an HTTP/2 response is read from another ResponseWriter type than HTTP/1's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SPAN_KIND, STATUS_CODE, useCollector, type Collector, type ReceivedSpan } from "../support/collector.ts";
import { GOTEL } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";
import { waitFor } from "../support/kernel.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

const env = (): Record<string, string> => ({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });

const REQUESTS = [["GET", "/users/7"], ["POST", "/orders"], ["GET", "/fail"], ["GET", "/healthz"]] as const;
const EXPECTED: Record<string, { name: string; status: bigint; route: string }> = {
  "/users/7": { name: "GET /users/{id}", status: 200n, route: "/users/{id}" },
  "/orders": { name: "POST /orders", status: 201n, route: "/orders" },
  "/fail": { name: "GET /fail", status: 500n, route: "/fail" },
  "/healthz": { name: "GET /healthz", status: 200n, route: "/healthz" },
};

/** the fixture's Go client sends the requests over one HTTP/2 connection; it prints "STATUS PROTO" per request */
async function sendAll(client: string[], base: string, clientEnv?: Record<string, string>): Promise<string[]> {
  const p = new Proc([...client, "request", ...REQUESTS.flatMap(([m, path]) => [m, base + path])], clientEnv);
  expect(await p.wait(30_000)).toBe(0);
  const lines = (): string[] => p.stdout.filter((l) => /^\d{3} /.test(l));
  await waitFor(() => lines().length >= REQUESTS.length, 2_000); // the last lines may follow the exit
  return lines();
}

function byPath(spans: ReceivedSpan[], path: string): ReceivedSpan {
  const s = spans.filter((x) => x.attributes["url.path"] === path);
  if (s.length !== 1) throw new Error(`expected one span for ${path}, got ${s.length}`);
  return s[0]!;
}

/** the fixtures' /panic handler panics with "boom": its stream is reset, its span an ERROR with the panic */
function expectPanicked(span: ReceivedSpan, name: string): void {
  expect(span).toMatchObject({ name, status: { code: STATUS_CODE.ERROR, message: "panic: boom" }, attributes: { "error.type": "string" } });
  expect(span.attributes).not.toHaveProperty("http.response.status_code");
  expect(span.events.map((e) => [e.name, e.attributes])).toEqual([["exception", { "exception.type": "string", "exception.message": "boom" }]]);
}

describe.each([
  // net/http's own HTTP/2 server: bundled (1.22) and net/http/internal/http2 (1.27); stripped: offsets from the table
  ["std", "1.22.12", false], ["std", "1.27.4", false], ["std", "1.22.12", true], ["std", "1.27.4", true],
  // golang.org/x/net's server, with its own ResponseWriter (offsets from DWARF, or the table for x/net's release)
  ["xnet", "1.22.12", false], ["xnet", "1.27.4", true],
  // unencrypted HTTP/2 with prior knowledge, served by net/http itself (Server.Protocols)
  ["h2c", "1.24.13", false],
  // ... and by x/net's h2c handler: each stream runs the application's handler directly (x/net's runHandler)
  ["xnet-h2c", "1.24.13", false], ["xnet-h2c", "1.27.4", true],
] as const)("HTTP/2 server (%s) built with Go %s (stripped: %p)", (mode, goVersion, stripped) => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let gotel: Proc;
  let exe: string;

  beforeAll(async () => {
    exe = buildGoFixture("http2-server", { goVersion, stripped });
    server = await startServer(exe, [mode]);
    gotel = await runGotel(["--pid", String(server.proc.pid)], env(), server.proc.pid);
  }, 300_000);
  afterAll(async () => {
    await gotel?.stop();
    await server?.proc.stop();
  });

  test("one SERVER span per stream, with its status code; 5xx is an error", async () => {
    collector.clear();
    const cleartext = mode === "h2c" || mode === "xnet-h2c";
    const base = cleartext ? server.base : server.base.replace("http://", "https://");
    expect(await sendAll([exe], base)).toEqual(["200 HTTP/2.0", "201 HTTP/2.0", "500 HTTP/2.0", "200 HTTP/2.0"]);
    // x/net's h2c handler serves the whole connection inside its first request, the "PRI *" preface: one more
    // span, ended when the client has gone
    const expected = mode === "xnet-h2c" ? 5 : 4;
    await collector.waitForSpans(expected, 10_000);
    await Bun.sleep(300);
    const all = collector.spans();
    expect(all.length).toBe(expected);
    const spans = all.filter((x) => x.attributes["url.path"] !== "*");
    expect(spans.length).toBe(4);
    if (mode === "xnet-h2c") {
      expect(all.find((x) => x.attributes["url.path"] === "*")).toMatchObject({ name: "HTTP", attributes: { "http.request.method": "_OTHER", "http.request.method_original": "PRI" } });
    }
    for (const [method, path] of REQUESTS) {
      const span = byPath(spans, path);
      const want = EXPECTED[path]!;
      expect(span.name).toBe(want.name);
      expect(span.kind).toBe(SPAN_KIND.SERVER);
      const { "network.peer.port": peerPort, "user_agent.original": userAgent, ...rest } = span.attributes;
      expect(typeof peerPort === "bigint" && peerPort > 0n).toBe(true);
      expect(userAgent).toBe("Go-http-client/2.0");
      expect(rest).toEqual({
        "http.request.method": method,
        "url.path": path,
        "url.scheme": cleartext ? "http" : "https",
        "http.response.status_code": want.status,
        "http.route": want.route,
        "network.protocol.version": "2",
        "server.address": "127.0.0.1",
        "server.port": BigInt(server.port),
        "network.peer.address": "127.0.0.1",
      });
      expect(span.status.code).toBe(want.status >= 500n ? STATUS_CODE.ERROR : STATUS_CODE.UNSET);
    }
  }, 60_000);

  test("a handler that panics: its stream is reset, its span is an ERROR with the panic; the connection goes on", async () => {
    collector.clear();
    const base = mode === "h2c" || mode === "xnet-h2c" ? server.base : server.base.replace("http://", "https://");
    const p = new Proc([exe, "request", "GET", `${base}/panic`, "GET", `${base}/users/8`]);
    expect(await p.wait(30_000)).toBe(1);
    await waitFor(() => p.stdout.length >= 2, 2_000);
    expect(p.stdout[0]).toMatch(/^ERR .*INTERNAL_ERROR/);
    expect(p.stdout[1]).toBe("200 HTTP/2.0");
    const streams = (): ReceivedSpan[] => collector.spans().filter((x) => x.attributes["url.path"] !== "*");
    await collector.waitFor(() => streams().length >= 2, "2 stream spans", 10_000);
    await Bun.sleep(300);
    const spans = streams();
    expect(spans.length).toBe(2);
    expectPanicked(byPath(spans, "/panic"), "GET /panic");
    expect(byPath(spans, "/users/8")).toMatchObject({ status: { code: STATUS_CODE.UNSET }, events: [], attributes: { "http.response.status_code": 200n } });
  }, 60_000);

  test("200 concurrent streams multiplexed on one connection: 200 spans, none lost, none duplicated", async () => {
    collector.clear();
    const base = mode === "h2c" || mode === "xnet-h2c" ? server.base : server.base.replace("http://", "https://");
    const p = new Proc([exe, "parallel", "200", base]);
    expect(await p.wait(60_000)).toBe(0);
    await waitFor(() => p.stdout.length > 0, 2_000);
    expect(p.stdout).toEqual(["200 x HTTP/2.0: 200"]);
    const streams = (): ReceivedSpan[] => collector.spans().filter((x) => /^\/users\/\d+$/.test(String(x.attributes["url.path"])));
    await collector.waitFor(() => streams().length >= 200, "200 stream spans", 20_000);
    await Bun.sleep(500);
    const spans = streams();
    expect(spans.length).toBe(200);
    expect(new Set(spans.map((x) => x.attributes["url.path"])).size).toBe(200);
    expect(new Set(spans.map((x) => x.spanId)).size).toBe(200);
    expect(spans.every((x) => x.attributes["http.response.status_code"] === 200n && x.attributes["network.protocol.version"] === "2")).toBe(true);
  }, 90_000);
});

describe.each(["1.19.13", "1.21.13"])("HTTP/2 server built with Go %s (runHandler's closure is func1, then func2)", (goVersion) => {
  test("streams end where they should: one span each, the panicking one an ERROR with its panic", async () => {
    const server = await startServer(buildGoFixture("h2-legacy", { goVersion }));
    const gotel = await runGotel(["--pid", String(server.proc.pid)], env(), server.proc.pid);
    try {
      collector.clear();
      const base = server.base.replace("http://", "https://");
      // the other fixture's Go HTTP/2 client, both requests on one connection
      const p = new Proc([buildGoFixture("http2-server", { goVersion: "1.27.4" }), "request", "GET", `${base}/users/7`, "GET", `${base}/panic`]);
      expect(await p.wait(30_000)).toBe(1);
      await waitFor(() => p.stdout.length >= 2, 2_000);
      expect(p.stdout[0]).toBe("202 HTTP/2.0");
      expect(p.stdout[1]).toMatch(/^ERR .*INTERNAL_ERROR/);
      await collector.waitForSpans(2, 10_000);
      await Bun.sleep(300);
      const spans = collector.spans();
      expect(spans.length).toBe(2);
      expect(byPath(spans, "/users/7")).toMatchObject({
        name: "GET", status: { code: STATUS_CODE.UNSET }, events: [],
        attributes: { "http.response.status_code": 202n, "network.protocol.version": "2", "url.scheme": "https" },
      });
      expectPanicked(byPath(spans, "/panic"), "GET");
    } finally {
      await gotel.stop();
      await server.proc.stop();
    }
  }, 120_000);
});

test("an incoming traceparent over HTTP/2 is continued, tracestate kept", async () => {
  const exe = buildGoFixture("http2-server", { goVersion: "1.27.4" });
  const server = await startServer(exe, ["std"]);
  const gotel = await runGotel(["--pid", String(server.proc.pid)], env(), server.proc.pid);
  try {
    collector.clear();
    const client = new Proc([exe, "request", "-H", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "-H", "tracestate: vendor=abc", "GET", `${server.base.replace("http://", "https://")}/users/9`]);
    expect(await client.wait(15_000)).toBe(0);
    const [span] = await collector.waitForSpans(1, 10_000);
    expect(span!).toMatchObject({ name: "GET /users/{id}", traceId: "4bf92f3577b34da6a3ce929d0e0e4736", parentSpanId: "00f067aa0ba902b7", traceState: "vendor=abc" });
    expect(span!.attributes).toMatchObject({ "http.response.status_code": 200n, "network.protocol.version": "2" });
  } finally {
    await gotel.stop();
    await server.proc.stop();
  }
}, 120_000);

test("HTTP/2 client spans: one CLIENT span per request, protocol 2, the response's status", async () => {
  const exe = buildGoFixture("http2-server", { goVersion: "1.27.4" });
  const server = await startServer(exe, ["std"]);
  try {
    collector.clear();
    const base = server.base.replace("http://", "https://");
    // the client under `gotel exec`: traced from its first instruction (the server is not traced here)
    expect(await sendAll([GOTEL, "exec", "--", exe], base, env())).toEqual(["200 HTTP/2.0", "201 HTTP/2.0", "500 HTTP/2.0", "200 HTTP/2.0"]);
    const spans = await collector.waitForSpans(4, 10_000);
    await Bun.sleep(300);
    expect(collector.spans().length).toBe(4);
    for (const [method, path] of REQUESTS) {
      const s = spans.filter((x) => x.attributes["url.full"] === base + path);
      expect(s.length).toBe(1);
      const status = EXPECTED[path]!.status;
      expect(s[0]!.name).toBe(method);
      expect(s[0]!.kind).toBe(SPAN_KIND.CLIENT);
      expect(s[0]!.attributes).toMatchObject({
        "http.request.method": method, "url.path": path, "network.protocol.version": "2", "http.response.status_code": status,
        "server.address": "127.0.0.1", "server.port": BigInt(server.port),
      });
      expect(s[0]!.status.code).toBe(status >= 400n ? STATUS_CODE.ERROR : STATUS_CODE.UNSET);
    }
  } finally {
    await server.proc.stop();
  }
}, 120_000);

// The net/http server's object is loaded for the first binary planned, here one without x/net's server; x/net's
// programs load with the others all the same (they tail-call the start and end programs every binary loads), and
// serve the x/net binary planned after it: one load of the object, x/net's streams make their spans.
describe("x/net's HTTP/2 server in a binary planned after one without it", () => {
  let plain: Awaited<ReturnType<typeof startServer>>;
  let server: Awaited<ReturnType<typeof startServer>>;
  let gotel: Proc;
  let exe: string;

  beforeAll(async () => {
    plain = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }), ["127.0.0.1:0"]);
    exe = buildGoFixture("http2-server", { goVersion: "1.27.4" });
    server = await startServer(exe, ["xnet"]);
    gotel = await runGotel(["--pid", String(plain.proc.pid), "--pid", String(server.proc.pid)], { ...env(), OTEL_LOG_LEVEL: "debug" }, server.proc.pid);
  }, 300_000);
  afterAll(async () => {
    await gotel?.stop();
    await server?.proc.stop();
    await plain?.proc.stop();
  });

  test("one object with x/net's programs among its 13; x/net's streams make their spans", async () => {
    const loads = gotel.stderr.concat(gotel.stdout).filter((l) => /loaded eBPF object object=nethttp_server\.bpf\.o/.test(l));
    expect(loads.map((l) => / programs=(\d+)/.exec(l)?.[1])).toEqual(["13"]);
    collector.clear();
    expect(await sendAll([exe], server.base.replace("http://", "https://"))).toEqual(["200 HTTP/2.0", "201 HTTP/2.0", "500 HTTP/2.0", "200 HTTP/2.0"]);
    await collector.waitForSpans(4, 10_000);
    await Bun.sleep(300);
    const spans = collector.spans().filter((s) => s.resource["process.pid"] === BigInt(server.proc.pid));
    expect(spans.map((s) => [s.name, s.attributes["http.response.status_code"]]).sort()).toEqual(
      Object.values(EXPECTED).map((e) => [e.name, e.status]).sort(),
    );
  }, 60_000);
});
