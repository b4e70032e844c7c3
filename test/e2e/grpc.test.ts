/**
 * gRPC end to end: the fixture test/fixtures/grpc-service (grpc's interop TestService and an HTTP front that
 * calls it over one connection) traced by gotel, built with the newest grpc and with the oldest gotel
 * supports (v1.40.0 with Go 1.19), stripped and not; what a real OpenTelemetry Collector received, selected by
 * the fixture's pid. The fixture's gRPC client and server are the same process: without writing into the
 * process (this machine's kernel forbids it) the server span of a call is a root of its own, unless the
 * call carries a traceparent in its metadata.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SPAN_KIND, STATUS_CODE, useCollector, type Collector, type ReceivedSpan } from "../support/collector.ts";
import { buildGoFixture, type GoBuild } from "../support/go.ts";
import { INJECTION, SAME_HOST } from "../support/chain.ts";
import { waitFor } from "../support/kernel.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

const env = (): Record<string, string> => ({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });
const SERVICE = "grpc.testing.TestService";
/** where gotel may not write into processes, a server span continues the client span of a call from this host
 * through their connection and stream (same-host linking) */
const LINKED = SAME_HOST && !INJECTION;
const NAMED = (method: string): Record<string, string> => ({
  "rpc.system.name": "grpc", "rpc.system": "grpc", "rpc.method": `${SERVICE}/${method}`, "rpc.service": SERVICE,
});
const status = (name: string, code: number): Record<string, string | bigint> => ({ "rpc.status_code": name, "rpc.grpc.status_code": BigInt(code) });
/** a server span's attributes, exactly: its peer is this host, on a port of the client's */
const serverAttributes = (method: string, more: ReceivedSpan["attributes"]): ReceivedSpan["attributes"] => ({
  ...NAMED(method), "network.peer.address": "127.0.0.1", "network.peer.port": expect.any(BigInt) as bigint, ...more,
});

interface Service {
  proc: Proc;
  base: string;
  grpcPort: number;
}

async function startService(exe: string): Promise<Service> {
  const s = await startServer(exe);
  const line = await s.proc.waitForLine(/^grpc /);
  return { proc: s.proc, base: s.base, grpcPort: Number(line.split(":").pop()) };
}

describe.each([
  // the last column: the fixture also serves through grpc's ServeHTTP (net/http's unencrypted HTTP/2, Go >= 1.24)
  ["grpc v1.85.0, the local Go", {}, true],
  ["grpc v1.85.0, the local Go, stripped (offsets from the table)", { stripped: true }, true],
  ["grpc v1.85.0, Go 1.27.4", { goVersion: "1.27.4" }, true],
  ["grpc v1.40.0, Go 1.19.13", { goVersion: "1.19.13", modfile: "go.v140.mod" }, false],
  ["grpc v1.40.0, Go 1.19.13, stripped", { goVersion: "1.19.13", modfile: "go.v140.mod", stripped: true }, false],
] as [string, GoBuild, boolean][])("%s", (_, build, servesHttp) => {
  let service: Service;
  let gotel: Proc;

  beforeAll(async () => {
    service = await startService(buildGoFixture("grpc-service", build));
    gotel = await runGotel(["--pid", String(service.proc.pid)], env(), service.proc.pid);
  }, 300_000);
  afterAll(async () => {
    await gotel?.stop();
    await service?.proc.stop();
  });

  const mine = (): ReceivedSpan[] => collector.spans().filter((s) => s.resource["process.pid"] === BigInt(service.proc.pid));

  /** one /call; the spans it made: the HTTP front's, the gRPC client's and the gRPC server's (and any more) */
  async function call(query: string, spans = 3): Promise<{ answer: string; http: ReceivedSpan; client: ReceivedSpan; server: ReceivedSpan; all: ReceivedSpan[] }> {
    collector.clear();
    const answer = await (await fetch(`${service.base}/call?${query}`)).text();
    expect(await waitFor(() => mine().length >= spans, 10_000)).toBe(true);
    await Bun.sleep(300); // nothing more arrives
    const all = mine();
    expect(all.length).toBe(spans);
    const one = (kind: number, scope: string): ReceivedSpan => {
      const s = all.filter((x) => x.kind === kind && x.scope.name.includes(scope));
      expect(s.length).toBe(1);
      return s[0]!;
    };
    const http = all.filter((x) => x.attributes["url.path"] === "/call");
    expect(http.length).toBe(1);
    return { answer, http: http[0]!, client: one(SPAN_KIND.CLIENT, "grpc"), server: one(SPAN_KIND.SERVER, "grpc"), all };
  }

  test("a unary call: CLIENT span the child of the HTTP handler's span, SERVER span with its peer, every attribute", async () => {
    const { answer, http, client, server } = await call("kind=unary");
    expect(answer).toBe("0 ");
    expect(client).toMatchObject({ name: `${SERVICE}/UnaryCall`, traceId: http.traceId, parentSpanId: http.spanId, status: { code: STATUS_CODE.UNSET } });
    expect(client.attributes).toEqual({ ...NAMED("UnaryCall"), "server.address": "127.0.0.1", "server.port": BigInt(service.grpcPort), ...status("OK", 0) });
    expect(server).toMatchObject({
      name: `${SERVICE}/UnaryCall`, status: { code: STATUS_CODE.UNSET },
      ...(LINKED ? { traceId: client.traceId, parentSpanId: client.spanId } : { parentSpanId: "" }),
    });
    const { "network.peer.port": peerPort, ...rest } = server.attributes;
    expect(typeof peerPort === "bigint" && peerPort > 0n).toBe(true);
    expect(rest).toEqual({ ...NAMED("UnaryCall"), "network.peer.address": "127.0.0.1", ...status("OK", 0) });
    // the server's span lies within the client's
    expect(server.startTimeUnixNano >= client.startTimeUnixNano && server.endTimeUnixNano <= client.endTimeUnixNano).toBe(true);
  }, 30_000);

  test.each([
    [5, "NOT_FOUND", false], [13, "INTERNAL", true], [14, "UNAVAILABLE", true],
  ])("status %d: the client's span is an ERROR with the message; the server's only for a server failure", async (code, name, serverError) => {
    const { answer, client, server } = await call(`kind=unary&code=${code}&msg=asked+for+${name}`);
    expect(answer).toBe(`${code} asked for ${name}`);
    expect(client.status).toEqual({ code: STATUS_CODE.ERROR, message: `asked for ${name}` });
    expect(client.attributes).toEqual({
      ...NAMED("UnaryCall"), "server.address": "127.0.0.1", "server.port": BigInt(service.grpcPort), ...status(name, code), "error.type": name,
    });
    expect(server.attributes).toEqual(serverAttributes("UnaryCall", { ...status(name, code), ...(serverError ? { "error.type": name } : {}) }));
    expect(server.status).toEqual(serverError ? { code: STATUS_CODE.ERROR, message: `asked for ${name}` } : { code: STATUS_CODE.UNSET });
  }, 30_000);

  test("deadline exceeded and cancellation end the client's span with that status", async () => {
    const late = await call("kind=unary&sleep=1000&deadline=100");
    // the message is the client's own ("context deadline exceeded") or, when the server's copy of the deadline
    // fired first and it reset the stream, that reset's: the span says what the application got
    expect(late.answer).toMatch(/^4 (context deadline exceeded|stream terminated by RST_STREAM with error code: CANCEL)$/);
    expect(late.client.status).toEqual({ code: STATUS_CODE.ERROR, message: late.answer.slice(2) });
    expect(late.client.attributes).toMatchObject({ ...status("DEADLINE_EXCEEDED", 4), "error.type": "DEADLINE_EXCEEDED" });
    expect(Number(late.client.endTimeUnixNano - late.client.startTimeUnixNano) / 1e6).toBeLessThan(900);

    const cancelled = await call("kind=unary&sleep=1000&cancel=100");
    expect(cancelled.answer).toBe("1 context canceled");
    expect(cancelled.client.status).toEqual({ code: STATUS_CODE.ERROR, message: "context canceled" });
    expect(cancelled.client.attributes).toMatchObject({ ...status("CANCELLED", 1), "error.type": "CANCELLED" });
    expect(Number(cancelled.client.endTimeUnixNano - cancelled.client.startTimeUnixNano) / 1e6).toBeLessThan(900);

    // The server's handler ran its full second either way, and its span ends with the status grpc writes after
    // it: which one depends on whether the client's reset or the server's own copy of the deadline came first,
    // and on grpc's release (v1.40 writes INTERNAL when the response can no longer be sent, some the handler's OK).
    for (const { server } of [late, cancelled]) {
      expect(["CANCELLED", "DEADLINE_EXCEEDED", "INTERNAL", "OK"]).toContain(String(server.attributes["rpc.status_code"]));
      expect(Number(server.endTimeUnixNano - server.startTimeUnixNano) / 1e6).toBeGreaterThanOrEqual(1000);
    }
  }, 30_000);

  test.each([
    ["server-stream", "StreamingOutputCall"], ["client-stream", "StreamingInputCall"], ["bidi", "FullDuplexCall"],
  ])("%s with 5 messages: one span per side, from the stream's start to its status", async (kind, method) => {
    const { answer, http, client, server } = await call(`kind=${kind}&n=5`);
    expect(answer).toBe("0 ");
    expect(client).toMatchObject({ name: `${SERVICE}/${method}`, parentSpanId: http.spanId, status: { code: STATUS_CODE.UNSET } });
    expect(client.attributes).toEqual({ ...NAMED(method), "server.address": "127.0.0.1", "server.port": BigInt(service.grpcPort), ...status("OK", 0) });
    expect(server).toMatchObject({ name: `${SERVICE}/${method}`, status: { code: STATUS_CODE.UNSET }, ...(LINKED ? { traceId: client.traceId, parentSpanId: client.spanId } : {}) });
    expect(server.attributes).toEqual(serverAttributes(method, status("OK", 0)));
    expect(client.endTimeUnixNano).toBeGreaterThanOrEqual(server.endTimeUnixNano);
  }, 30_000);

  test("a stream that ends with an error status", async () => {
    const { client, server } = await call("kind=server-stream&n=2&code=13&msg=broken");
    expect(client.status).toEqual({ code: STATUS_CODE.ERROR, message: "broken" });
    expect(server.status).toEqual({ code: STATUS_CODE.ERROR, message: "broken" });
    expect(server.attributes).toEqual(serverAttributes("StreamingOutputCall", { ...status("INTERNAL", 13), "error.type": "INTERNAL" }));
  }, 30_000);

  test("a method the server does not have: the server's span is _OTHER, the client's keeps the name it called", async () => {
    const { client, server } = await call("kind=unknown");
    expect(client.name).toBe(`${SERVICE}/NoSuchMethod`);
    expect(client.attributes).toMatchObject({ "rpc.method": `${SERVICE}/NoSuchMethod`, ...status("UNIMPLEMENTED", 12) });
    expect(server).toMatchObject({ name: "grpc", status: { code: STATUS_CODE.ERROR, message: `unknown method NoSuchMethod for service ${SERVICE}` } });
    expect(server.attributes).toEqual({
      "rpc.system.name": "grpc", "rpc.system": "grpc", "rpc.method": "_OTHER", "rpc.method_original": `${SERVICE}/NoSuchMethod`,
      "network.peer.address": "127.0.0.1", "network.peer.port": server.attributes["network.peer.port"]!, ...status("UNIMPLEMENTED", 12), "error.type": "UNIMPLEMENTED",
    });
  }, 30_000);

  test("a traceparent (and tracestate) in the call's metadata: the server's span continues it", async () => {
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const { server, client } = await call(`kind=unary&parent=background&traceparent=00-${traceId}-b7ad6b7169203331-01&tracestate=vendor%3Dvalue`);
    expect(server).toMatchObject({ traceId, parentSpanId: "b7ad6b7169203331", traceState: "vendor=value" });
    expect(server.flags & 0x300).toBe(0x300); // the parent is remote
    expect(client.parentSpanId).toBe(""); // made with context.Background()
  }, 30_000);

  test("an HTTP call made with the handler's context is the gRPC server span's child", async () => {
    const { all, server } = await call(`kind=unary&httpget=${encodeURIComponent(`${service.base}/ping`)}`, 5);
    const httpClient = all.filter((s) => s.kind === SPAN_KIND.CLIENT && s.scope.name.includes("net/http"));
    expect(httpClient.length).toBe(1);
    expect(httpClient[0]).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId, attributes: { "url.full": `${service.base}/ping` } });
    expect(all.filter((s) => s.kind === SPAN_KIND.SERVER && s.attributes["url.path"] === "/ping").length).toBe(1);
  }, 30_000);

  test("an HTTP call made with the handler's context on another goroutine is the gRPC server span's child too", async () => {
    const { all, server } = await call(`kind=unary&httpgo=1&httpget=${encodeURIComponent(`${service.base}/ping`)}`, 5);
    const httpClient = all.filter((s) => s.kind === SPAN_KIND.CLIENT && s.scope.name.includes("net/http"));
    expect(httpClient.length).toBe(1);
    expect(httpClient[0]).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId, attributes: { "url.full": `${service.base}/ping` } });
  }, 30_000);

  test("the call's metadata carries gotel's traceparent only where the kernel allows writing, never a second one", async () => {
    const { answer, client } = await call("kind=unary&echo=traceparent");
    // the handler answers INVALID_ARGUMENT with the traceparent values it received
    expect(answer).toBe(INJECTION ? `3 00-${client.traceId}-${client.spanId}-01` : "3 none");
    const own = `00-${"a".repeat(32)}-${"b".repeat(16)}-01`;
    const { answer: kept, server } = await call(`kind=unary&echo=traceparent&traceparent=${own}`);
    expect(kept).toBe(`3 ${own}`); // the application's own, alone
    expect(server).toMatchObject({ traceId: "a".repeat(32), parentSpanId: "b".repeat(16) });
  }, 30_000);

  if (servesHttp) {
    test("grpc's ServeHTTP transport behind net/http: the gRPC SERVER span is the child of the HTTP request's span", async () => {
      const { answer, client, all } = await call("kind=unary&code=5&msg=via+net%2Fhttp&via=servehttp", 4);
      expect(answer).toBe("5 via net/http");
      const servers = all.filter((s) => s.kind === SPAN_KIND.SERVER && s.scope.name.includes("grpc"));
      const http = all.filter((s) => s.kind === SPAN_KIND.SERVER && s.attributes["url.path"] === `/${SERVICE}/UnaryCall`);
      expect([servers.length, http.length]).toEqual([1, 1]);
      expect(http[0]).toMatchObject({ name: "POST", attributes: { "network.protocol.version": "2", "http.response.status_code": 200n } });
      expect(servers[0]).toMatchObject({ parentSpanId: http[0]!.spanId, traceId: http[0]!.traceId, name: `${SERVICE}/UnaryCall` });
      // the peer is the HTTP span's: grpc's handler transport is not read for it
      expect(servers[0]!.attributes).toEqual({ ...NAMED("UnaryCall"), ...status("NOT_FOUND", 5) });
      expect(client.attributes).toMatchObject({ "server.address": "127.0.0.1", ...status("NOT_FOUND", 5) });
    }, 30_000);
  }

  test("200 concurrent calls on one connection: 200 spans per side, none lost, none twice", async () => {
    collector.clear();
    expect(await (await fetch(`${service.base}/concurrent?n=200`)).text()).toBe("200");
    const count = (kind: number): number => mine().filter((s) => s.kind === kind && s.name === `${SERVICE}/UnaryCall`).length;
    await waitFor(() => count(SPAN_KIND.CLIENT) >= 200 && count(SPAN_KIND.SERVER) >= 200, 15_000);
    await Bun.sleep(300);
    const spans = mine().filter((s) => s.name === `${SERVICE}/UnaryCall`);
    expect([count(SPAN_KIND.CLIENT), count(SPAN_KIND.SERVER)]).toEqual([200, 200]);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(400);
    expect(spans.every((s) => s.attributes["rpc.status_code"] === "OK")).toBe(true);
    const clients = new Map(spans.filter((s) => s.kind === SPAN_KIND.CLIENT).map((s) => [s.spanId, s]));
    for (const c of clients.values()) expect(c.parentSpanId).toBe(""); // made with context.Background()
    const servers = spans.filter((s) => s.kind === SPAN_KIND.SERVER);
    if (LINKED) {
      // each server span continues exactly its own call's client span: one each, its trace, inside its time
      const misplaced = servers.filter((s) => {
        const c = clients.get(s.parentSpanId);
        return c?.traceId !== s.traceId || s.startTimeUnixNano < c.startTimeUnixNano || s.endTimeUnixNano > c.endTimeUnixNano;
      });
      expect(misplaced.map((s) => `${s.spanId} -> ${s.parentSpanId}`)).toEqual([]);
      expect(new Set(servers.map((s) => s.parentSpanId)).size).toBe(200);
    } else {
      expect(servers.every((s) => s.parentSpanId === "")).toBe(true);
    }
  }, 60_000);
});

test("calls in flight when the process exits become unfinished ERROR spans, on both sides", async () => {
  const service = await startService(buildGoFixture("grpc-service"));
  const gotel = await runGotel(["--pid", String(service.proc.pid)], env(), service.proc.pid);
  try {
    collector.clear();
    void fetch(`${service.base}/call?kind=bidi&n=1&sleep=30000`).catch(() => undefined);
    await Bun.sleep(500);
    await service.proc.stop("SIGKILL");
    const mine = (): ReceivedSpan[] => collector.spans().filter((s) => s.resource["process.pid"] === BigInt(service.proc.pid));
    // the HTTP front's request, and the call's two sides
    expect(await waitFor(() => mine().length >= 3, 10_000)).toBe(true);
    await Bun.sleep(300);
    expect(mine().length).toBe(3);
    const grpc = mine().filter((s) => s.name === `${SERVICE}/FullDuplexCall`);
    expect(grpc.map((s) => s.kind).sort()).toEqual([SPAN_KIND.SERVER, SPAN_KIND.CLIENT]);
    for (const s of grpc) {
      expect(s.status).toEqual({ code: STATUS_CODE.ERROR, message: "unfinished: the process exited before the call returned" });
      expect(s.attributes["error.type"]).toBe("process_exited");
    }
  } finally {
    await gotel.stop();
    await service.proc.stop();
  }
}, 60_000);

test("two processes on this host, grpc v1.40.0 (Go 1.19) calling v1.85.0: each call's server span continues its client span", async () => {
  const b = await startService(buildGoFixture("grpc-service", { goVersion: "1.27.4" }));
  const caller = await startServer(buildGoFixture("grpc-service", { goVersion: "1.19.13", modfile: "go.v140.mod" }), [`127.0.0.1:${b.grpcPort}`]);
  const gotel = await runGotel(["--pid", String(caller.proc.pid), "--pid", String(b.proc.pid)], env());
  try {
    await gotel.waitForLine(new RegExp(`attached pid=${b.proc.pid} .*gRPC server`), 20_000);
    await gotel.waitForLine(new RegExp(`attached pid=${caller.proc.pid} .*gRPC client`), 20_000);
    collector.clear();
    for (const kind of ["unary", "bidi&n=3", "unary", "server-stream&n=2"]) {
      expect(await (await fetch(`${caller.base}/call?kind=${kind}`)).text()).toBe("0 ");
    }
    const of = (pid: number, kind: number) => (spans: ReceivedSpan[]) => spans.filter((s) => s.resource["process.pid"] === BigInt(pid) && s.kind === kind && s.scope.name.includes("grpc"));
    const [clientsOf, serversOf] = [of(caller.proc.pid, SPAN_KIND.CLIENT), of(b.proc.pid, SPAN_KIND.SERVER)];
    await waitFor(() => clientsOf(collector.spans()).length >= 4 && serversOf(collector.spans()).length >= 4, 10_000);
    await Bun.sleep(300);
    const [clients, servers] = [clientsOf(collector.spans()), serversOf(collector.spans())];
    expect([clients.length, servers.length]).toEqual([4, 4]);
    const byId = new Map(clients.map((c) => [c.spanId, c]));
    for (const s of servers) {
      const c = byId.get(s.parentSpanId);
      if (LINKED) expect({ name: c?.name, traceId: c?.traceId }).toEqual({ name: s.name, traceId: s.traceId });
      else expect(s.parentSpanId).toBe("");
    }
    if (LINKED) expect(new Set(servers.map((s) => s.parentSpanId)).size).toBe(4);
  } finally {
    await gotel.stop();
    await caller.proc.stop();
    await b.proc.stop();
  }
}, 120_000);
