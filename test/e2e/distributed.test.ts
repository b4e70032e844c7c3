/**
 * Distributed traces end to end: real Go services calling each other (test/fixtures/http-chain: a client
 * program -> service A -> service B), the compiled gotel attached to all of them with `run`, and what a real
 * OpenTelemetry Collector received. Parents inside a process (handler goroutine, worker goroutine, fan-out
 * with a derived context, errgroup), incoming traceparent/tracestate, context.Background(), the application's own
 * traceparent, and — where the kernel allows bpf_probe_write_user — the traceparent gotel writes on the wire.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Collector, SPAN_KIND, STATUS_CODE, useCollector, type ReceivedSpan } from "../support/collector.ts";
import { INJECTION, LINKED, ON_THE_WIRE, pidOf, randomHex, SAME_HOST, startChain, stopChain, type Chain } from "../support/chain.ts";
import { buildGoFixture } from "../support/go.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

const OLDEST = "1.19.13";
const NEWEST = "1.27.4";


/** What B answered: the traceparent and tracestate values it received, and whether the body arrived intact. */
interface BSaw { traceparent: string[] | null; tracestate: string[] | null; bodyOk: boolean; id: string }

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { headers });
  return { status: r.status, body: await r.text() };
}

// `classic`: one uprobe per site, as on kernels before 6.6 (no uprobe.multi), where most fleets still are
describe.each([[OLDEST, "auto"], [NEWEST, "auto"], [NEWEST, "classic"]])("services built with Go %s (uprobe attach: %s)", (goVersion, attach) => {
  let chain: Chain;
  beforeAll(async () => {
    chain = await startChain(collector, goVersion, { GOTEL_UPROBE_ATTACH: attach });
    const running = await chain.gotel.waitForLine(/gotel is running/, 5_000);
    expect(running).toMatch(attach === "classic" ? /attach=classic/ : /attach=(multi|classic)/);
  }, 300_000);
  afterAll(() => stopChain(chain));

  /** The spans of one request to A: A's server span, its client spans, B's server spans. */
  async function spansOf(aServerPath: string, clients: number, traceId?: string) {
    const spans = await collector.waitFor((all) => {
      const server = all.find((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.SERVER && s.attributes["url.path"] === aServerPath &&
        (traceId === undefined || s.traceId === traceId));
      return server !== undefined && all.filter((s) => pidOf(s) === chain.b.proc.pid).length >= clients &&
        all.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.CLIENT).length >= clients;
    }, `the spans of ${aServerPath}`);
    const aServer = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.SERVER);
    const aClients = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.CLIENT);
    const bServer = spans.filter((s) => pidOf(s) === chain.b.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect(aServer).toHaveLength(1);
    expect(aClients).toHaveLength(clients);
    expect(bServer).toHaveLength(clients);
    expect(spans).toHaveLength(1 + 2 * clients); // nothing else, nothing twice
    return { aServer: aServer[0]!, aClients, bServer };
  }

  /** A's client span to B, and B's server span for it (matched by the id B echoes in its url). */
  function expectCallToB(aServer: ReceivedSpan, aClient: ReceivedSpan, bServer: ReceivedSpan, saw: BSaw) {
    expect(aClient.name).toBe("POST");
    expect(aClient.traceId).toBe(aServer.traceId);
    expect(aClient.parentSpanId).toBe(aServer.spanId);
    expect(aClient.attributes).toEqual({
      "http.request.method": "POST",
      "url.full": `${chain.b.base}/work?id=${saw.id}`,
      "url.path": "/work",
      "server.address": "127.0.0.1",
      "server.port": BigInt(chain.b.port),
      "http.response.status_code": 200n,
      "network.protocol.version": "1.1",
    });
    expect(aClient.status.code).toBe(STATUS_CODE.UNSET);
    expect(aClient.startTimeUnixNano).toBeGreaterThanOrEqual(aServer.startTimeUnixNano);
    expect(aClient.endTimeUnixNano).toBeLessThanOrEqual(aServer.endTimeUnixNano);
    expect(saw.bodyOk).toBe(true);
    // on the wire where gotel may write it or insert it into the socket's bytes; B continues A's client span
    // either way where they are linked
    expect(saw.traceparent).toEqual(ON_THE_WIRE ? [`00-${aClient.traceId}-${aClient.spanId}-01`] : null);
    if (LINKED) {
      expect(bServer.traceId).toBe(aClient.traceId);
      expect(bServer.parentSpanId).toBe(aClient.spanId);
      expect(bServer.flags & 0x300).toBe(0x300); // OTLP: the parent is remote
      expect(bServer.traceState).toBe(aClient.traceState);
    } else {
      expect(bServer.parentSpanId).toBe("");
      expect(bServer.traceId).not.toBe(aClient.traceId);
    }
  }

  test("an incoming traceparent and tracestate are continued; the call to B made on the handler goroutine is the server span's child", async () => {
    collector.clear();
    const traceId = randomHex(16);
    const parent = randomHex(8);
    const r = await get(`${chain.a.base}/inline?id=inline-1`, { traceparent: `00-${traceId}-${parent}-01`, tracestate: "vendor=abc,other=x:y" });
    expect(r.status).toBe(200);
    const saw = JSON.parse(r.body) as BSaw;
    const { aServer, aClients, bServer } = await spansOf("/inline", 1, traceId);
    expect(aServer.traceId).toBe(traceId);
    expect(aServer.parentSpanId).toBe(parent);
    expect(aServer.flags & 0x300).toBe(0x300); // OTLP: the parent is remote
    expect(aServer.traceState).toBe("vendor=abc,other=x:y");
    expect(aClients[0]!.traceState).toBe("vendor=abc,other=x:y");
    expectCallToB(aServer, aClients[0]!, bServer[0]!, saw);
    if (ON_THE_WIRE) expect(saw.tracestate).toEqual(["vendor=abc,other=x:y"]);
  });

  test("a tracestate longer than 512 bytes loses whole members from its end, for the server span and the call to B", async () => {
    collector.clear();
    const traceId = randomHex(16);
    // 20 members of 29-31 bytes (fewer than the 32 W3C allows, which OpenTelemetry JS enforces on export)
    const tracestate = Array.from({ length: 20 }, (_, i) => `v${String(i).padStart(2, "0")}=${"x".repeat(25 + (i % 3))}`).join(",");
    expect(tracestate.length).toBeGreaterThan(512);
    const kept = tracestate.slice(0, tracestate.lastIndexOf(",", 511));
    expect(kept.length).toBeGreaterThan(480);
    const r = await get(`${chain.a.base}/inline?id=long-ts`, { traceparent: `00-${traceId}-${randomHex(8)}-01`, tracestate });
    expect(r.status).toBe(200);
    const saw = JSON.parse(r.body) as BSaw;
    const { aServer, aClients } = await spansOf("/inline", 1, traceId);
    expect(aServer.traceState).toBe(kept);
    expect(aClients[0]!.traceState).toBe(kept);
    if (ON_THE_WIRE) expect(saw.tracestate).toEqual([kept]);
  });

  test("a call made from a worker goroutine with the request's context is the server span's child", async () => {
    collector.clear();
    const r = await get(`${chain.a.base}/worker?id=worker-1`);
    expect(r.status).toBe(200);
    const { aServer, aClients, bServer } = await spansOf("/worker", 1);
    expect(aServer.parentSpanId).toBe("");
    expectCallToB(aServer, aClients[0]!, bServer[0]!, JSON.parse(r.body) as BSaw);
  });

  test("two calls from two goroutines with a derived context (WithTimeout) are both children", async () => {
    collector.clear();
    const r = await get(`${chain.a.base}/fanout?id=fan`);
    expect(r.status).toBe(200);
    const saw = JSON.parse(r.body) as BSaw[];
    const { aServer, aClients, bServer } = await spansOf("/fanout", 2);
    for (const s of saw) {
      const client = aClients.find((c) => c.attributes["url.full"] === `${chain.b.base}/work?id=${s.id}`)!;
      const server = LINKED ? bServer.find((b) => b.parentSpanId === client.spanId)! : bServer[0]!;
      expectCallToB(aServer, client, server, s);
    }
  });

  test("three calls from the goroutines of an errgroup.WithContext(r.Context()) are all children", async () => {
    collector.clear();
    const r = await get(`${chain.a.base}/errgroup?id=eg`);
    expect(r.status).toBe(200);
    const saw = JSON.parse(r.body) as BSaw[];
    expect(saw.map((s) => s.id).sort()).toEqual(["eg-0", "eg-1", "eg-2"]);
    const { aServer, aClients, bServer } = await spansOf("/errgroup", 3);
    expect(aServer.parentSpanId).toBe("");
    for (const s of saw) {
      const client = aClients.find((c) => c.attributes["url.full"] === `${chain.b.base}/work?id=${s.id}`)!;
      const server = LINKED ? bServer.find((b) => b.parentSpanId === client.spanId)! : bServer[0]!;
      expectCallToB(aServer, client, server, s);
    }
  });

  test("a call made with context.Background() starts a new trace", async () => {
    collector.clear();
    const r = await get(`${chain.a.base}/background?id=bg`);
    expect(r.status).toBe(200);
    const { aServer, aClients } = await spansOf("/background", 1);
    expect(aClients[0]!.parentSpanId).toBe("");
    expect(aClients[0]!.traceId).not.toBe(aServer.traceId);
  });

  test("the application's own traceparent is the only one on the wire, and B continues it", async () => {
    collector.clear();
    const traceId = randomHex(16);
    const parent = randomHex(8);
    const own = `00-${traceId}-${parent}-01`;
    const r = await get(`${chain.a.base}/own?id=own&tp=${own}`);
    expect(r.status).toBe(200);
    const saw = JSON.parse(r.body) as BSaw;
    expect(saw.traceparent).toEqual([own]);
    const { aServer, aClients, bServer } = await spansOf("/own", 1);
    expect(aClients[0]!.parentSpanId).toBe(aServer.spanId);
    expect(bServer[0]!.traceId).toBe(traceId);
    expect(bServer[0]!.parentSpanId).toBe(parent);
  });

  test("a call the transport fails is an ERROR span with the error's Go type; a 404 from B is an ERROR with error.type 404", async () => {
    collector.clear();
    expect((await get(`${chain.a.base}/dead`)).status).toBe(502);
    expect((await get(`${chain.a.base}/missing`)).status).toBe(404);
    const spans = await collector.waitFor((all) => all.length >= 5, "the spans of /dead and /missing");
    const clients = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.CLIENT);
    const dead = clients.find((s) => s.attributes["server.port"] === 1n)!;
    expect(dead.status.code).toBe(STATUS_CODE.ERROR);
    expect(dead.attributes["error.type"]).toBe("*net.OpError");
    expect(dead.attributes["http.response.status_code"]).toBeUndefined();
    expect(dead.attributes["url.full"]).toBe("http://127.0.0.1:1/work?id=dead");
    const missing = clients.find((s) => s.attributes["url.path"] === "/nothing")!;
    expect(missing.name).toBe("GET");
    expect(missing.status.code).toBe(STATUS_CODE.ERROR);
    expect(missing.attributes["error.type"]).toBe("404");
    expect(missing.attributes["http.response.status_code"]).toBe(404n);
    expect(missing.attributes["url.full"]).toBe(`${chain.b.base}/nothing?x=1#part%202`); // the fragment, escaped as Go does
    // a server answering 4xx is not in error (only 5xx is)
    const aServer = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect(aServer.map((s) => [s.attributes["url.path"], s.status.code]).sort()).toEqual([["/dead", STATUS_CODE.ERROR], ["/missing", STATUS_CODE.UNSET]]);
  });

  test("a traced Go client program -> A -> B: one span per hop per request, parents as far as the kernel allows", async () => {
    collector.clear();
    const dir = mkdtempSync(join(tmpdir(), "gotel-chain-"));
    const go = join(dir, "go");
    try {
      const client = new Proc([chain.exe, "client", `${chain.a.base}/inline?id=c`, "20", "4", go]);
      await chain.gotel.waitForLine(new RegExp(`attached pid=${client.pid} .*net/http client`), 20_000);
      writeFileSync(go, "");
      expect(await client.wait(30_000)).toBe(0);
      expect(client.stdout).toContain("ok 20");
      const spans = await collector.waitFor((all) => all.filter((s) => pidOf(s) === chain.b.proc.pid).length >= 20, "20 requests through B");
      const clientSpans = spans.filter((s) => pidOf(s) === client.pid);
      const aServer = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.SERVER);
      const aClient = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.CLIENT);
      const bServer = spans.filter((s) => pidOf(s) === chain.b.proc.pid);
      for (const set of [clientSpans, aServer, aClient, bServer]) expect(set).toHaveLength(20);
      expect(new Set(clientSpans.map((s) => s.attributes["url.full"]))).toEqual(
        new Set(Array.from({ length: 20 }, (_, i) => `${chain.a.base}/inline?id=c&i=${i + 1}`)));
      for (const c of clientSpans) {
        expect(c.kind).toBe(SPAN_KIND.CLIENT);
        expect(c.parentSpanId).toBe("");
        expect(c.attributes["http.response.status_code"]).toBe(200n);
      }
      const serverById = new Map(aServer.map((s) => [s.spanId, s]));
      for (const c of aClient) expect(serverById.get(c.parentSpanId)?.traceId).toBe(c.traceId);
      if (LINKED) {
        // one trace per request: client -> A server -> A client -> B server
        const clientById = new Map(clientSpans.map((s) => [s.spanId, s]));
        for (const s of aServer) expect(clientById.get(s.parentSpanId)?.traceId).toBe(s.traceId);
        const aClientById = new Map(aClient.map((s) => [s.spanId, s]));
        for (const s of bServer) expect(aClientById.get(s.parentSpanId)?.traceId).toBe(s.traceId);
        expect(new Set(spans.map((s) => s.traceId)).size).toBe(20);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

test("a request net/http retries on a new connection after the server closed the idle one is one span, ended by its answer", async () => {
  // B answers 404 on a kept-alive connection, then closes that connection when the next request arrives on it
  // without answering: net/http retries the GET on a new connection, whose answer ends the one span (roundTrip
  // checks each attempt's error at the probed JE; only the last attempt's nil error ends it there)
  const answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  let requests = 0;
  const requestsOn = new Map<object, number>();
  const b = createServer((socket) => {
    socket.on("data", (chunk) => {
      for (let i = chunk.indexOf("\r\n\r\n"); i >= 0; i = chunk.indexOf("\r\n\r\n", i + 4)) {
        requests++;
        const n = (requestsOn.get(socket) ?? 0) + 1;
        requestsOn.set(socket, n);
        if (n === 2) socket.destroy();
        else socket.write(answer);
      }
    });
  });
  await new Promise<void>((resolve) => b.listen(0, "127.0.0.1", resolve));
  const port = (b.address() as AddressInfo).port;
  const a = await startServer(buildGoFixture("http-chain", { goVersion: NEWEST }), ["frontend", "127.0.0.1:0", `http://127.0.0.1:${port}`]);
  const gotel = await runGotel(["--pid", String(a.proc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" }, a.proc.pid);
  try {
    collector.clear();
    expect((await get(`${a.base}/missing`)).status).toBe(404);
    expect((await get(`${a.base}/missing`)).status).toBe(404);
    expect(requests).toBe(3); // the second call's first attempt, refused, and its retry
    const spans = await collector.waitFor((all) => all.filter((s) => pidOf(s) === a.proc.pid).length >= 4, "2 server and 2 client spans");
    await Bun.sleep(300);
    const mine = spans.filter((s) => pidOf(s) === a.proc.pid);
    const servers = mine.filter((s) => s.kind === SPAN_KIND.SERVER);
    const clients = mine.filter((s) => s.kind === SPAN_KIND.CLIENT);
    expect([servers.length, clients.length]).toEqual([2, 2]);
    for (const c of clients) {
      expect(c).toMatchObject({ name: "GET", status: { code: STATUS_CODE.ERROR }, attributes: { "error.type": "404", "http.response.status_code": 404n } });
      expect(servers.some((s) => s.spanId === c.parentSpanId && s.traceId === c.traceId)).toBe(true);
    }
  } finally {
    await gotel.stop();
    await a.proc.stop();
    b.close();
  }
}, 60_000);

test("a call still waiting for its answer when its process is killed: it and its request are reported unfinished", async () => {
  // B accepts the connection and never answers
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const port = (silent.address() as AddressInfo).port;
  const a = await startServer(buildGoFixture("http-chain", { goVersion: NEWEST }), ["frontend", "127.0.0.1:0", `http://127.0.0.1:${port}`]);
  const gotel = await runGotel(["--pid", String(a.proc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" }, a.proc.pid);
  try {
    collector.clear();
    const pending = fetch(`${a.base}/inline?id=7`).catch(() => undefined);
    await Bun.sleep(500);
    await a.proc.stop("SIGKILL");
    await pending;
    await gotel.waitForLine(new RegExp(`detached pid=${a.proc.pid} .*reason=exited unfinished=2$`), 10_000);
    const spans = await collector.waitFor((all) => all.length >= 2, "2 unfinished spans");
    expect(spans).toHaveLength(2);
    const server = spans.find((s) => s.kind === SPAN_KIND.SERVER)!;
    const client = spans.find((s) => s.kind === SPAN_KIND.CLIENT)!;
    const unfinished = { code: STATUS_CODE.ERROR, message: "unfinished: the process exited before the call returned" };
    expect(server).toMatchObject({ status: unfinished, attributes: { "url.path": "/inline", "error.type": "process_exited" } });
    expect(client).toMatchObject({
      name: "POST", traceId: server.traceId, parentSpanId: server.spanId, status: unfinished,
      attributes: { "url.full": `http://127.0.0.1:${port}/work?id=7`, "error.type": "process_exited" },
    });
    for (const s of spans) expect(s.attributes).not.toHaveProperty("http.response.status_code");
  } finally {
    await gotel.stop();
    silent.close();
  }
}, 60_000);

test("HTTP/1 over TLS on this host: B's server span continues A's client span, linked or written as the kernel allows", async () => {
  const exe = buildGoFixture("http-chain", { goVersion: NEWEST });
  const b = await startServer(exe, ["backend-tls", "127.0.0.1:0"]);
  const bURL = b.base.replace("http://", "https://");
  const a = await startServer(exe, ["frontend", "127.0.0.1:0", bURL]);
  const gotel = await runGotel(["--pid", String(a.proc.pid), "--pid", String(b.proc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });
  try {
    await gotel.waitForLine(new RegExp(`attached pid=${b.proc.pid} .*net/http server`), 20_000);
    collector.clear();
    for (let i = 0; i < 5; i++) {
      const r = await get(`${a.base}/inline?id=tls-${i}`);
      expect(r.status).toBe(200);
      const saw = JSON.parse(r.body) as BSaw & { proto: string };
      expect(saw.proto).toBe("HTTP/1.1");
      expect(saw.bodyOk).toBe(true);
    }
    const spans = await collector.waitFor((all) => all.filter((s) => pidOf(s) === b.proc.pid).length >= 5 && all.length >= 15, "5 requests through B over TLS");
    const aClients = spans.filter((s) => pidOf(s) === a.proc.pid && s.kind === SPAN_KIND.CLIENT);
    const bServer = spans.filter((s) => pidOf(s) === b.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect([aClients.length, bServer.length, spans.length]).toEqual([5, 5, 15]);
    for (const s of bServer) expect(s.attributes["url.scheme"]).toBe("https");
    const clientById = new Map(aClients.map((c) => [c.spanId, c]));
    if (LINKED) {
      for (const s of bServer) expect(clientById.get(s.parentSpanId)?.traceId).toBe(s.traceId);
      expect(new Set(bServer.map((s) => s.parentSpanId)).size).toBe(5);
    } else {
      for (const s of bServer) expect(s.parentSpanId).toBe("");
    }
  } finally {
    await gotel.stop();
    await a.proc.stop();
    await b.proc.stop();
  }
}, 60_000);

test("the connection tracepoint starts with the first traced client: none for a server alone; a server attached before its client is linked", async () => {
  const server = await startServer(buildGoFixture("http-server", { goVersion: NEWEST }), ["127.0.0.1:0"]);
  const exe = buildGoFixture("http-chain", { goVersion: NEWEST });
  const a = await startServer(exe, ["frontend", "127.0.0.1:0", server.base]);
  // socket insertion off: only the tracepoint can link the server's spans to A's
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100", GOTEL_SOCKET_TRACEPARENT: "false" };
  const alone = await runGotel(["--pid", String(server.proc.pid)], env);
  try {
    await alone.waitForLine(/gotel is running/, 20_000);
    expect(alone.countLines(/same-host linking is on|socket insertion is on/)).toBe(0);
  } finally {
    await alone.stop();
  }
  // the server is planned and attached first, the tracepoint starts with A's client, then reads the server's connections
  const both = await runGotel(["--pid", String(server.proc.pid), "--pid", String(a.proc.pid)], env);
  try {
    await both.waitForLine(new RegExp(`attached pid=${a.proc.pid} .*net/http client`), 20_000);
    // where gotel writes traceparent, no connection path is needed (and none starts)
    expect(both.countLines(/same-host linking is on/)).toBe(SAME_HOST && !INJECTION ? 1 : 0);
    collector.clear();
    for (let i = 0; i < 5; i++) await get(`${a.base}/inline?id=first-${i}`);
    const spans = await collector.waitFor((all) => all.filter((s) => pidOf(s) === server.proc.pid).length >= 5 && all.length >= 15, "5 requests through the server");
    const aClients = new Map(spans.filter((s) => pidOf(s) === a.proc.pid && s.kind === SPAN_KIND.CLIENT).map((s) => [s.spanId, s]));
    const served = spans.filter((s) => pidOf(s) === server.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect([aClients.size, served.length, spans.length]).toEqual([5, 5, 15]);
    for (const s of served) {
      if (INJECTION || SAME_HOST) expect(aClients.get(s.parentSpanId)?.traceId).toBe(s.traceId);
      else expect(s.parentSpanId).toBe("");
    }
  } finally {
    await both.stop();
    await a.proc.stop();
    await server.proc.stop();
  }
}, 120_000);
