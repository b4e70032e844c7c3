/**
 * A -> B over HTTP/2 on one host, both traced by one gotel (test/fixtures/http-chain: A's handlers call B's
 * /work with net/http's own client, B serves with net/http's own HTTP/2 server or x/net's), under concurrent load: many
 * streams share one connection, so each B span must find exactly its own stream's client span. Where the kernel
 * refuses writing (this project's machines), B's spans continue A's through the connection and the stream id
 * (same-host linking); where it allows it, through the traceparent written into the HEADERS frame. Answers and
 * request bodies are checked against their SHA-256: the target is not disturbed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { INJECTION, LINKED, pidOf, randomHex } from "../support/chain.ts";
import { Collector, SPAN_KIND, useCollector, type ReceivedSpan } from "../support/collector.ts";
import { buildGoFixture } from "../support/go.ts";
import { runGotel, startServer, type Proc } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

const REQUESTS = 300;
const CONCURRENCY = 60;

describe.each([
  // net/http's own HTTP/2 over TLS: internal/http2 (Go 1.27) and bundled (1.22, stripped: offsets from the table)
  ["backend-h2", "https", "1.27.4", false],
  ["backend-h2", "https", "1.22.12", true],
  // unencrypted HTTP/2 with prior knowledge (Server.Protocols / Transport.Protocols, Go >= 1.24)
  ["backend-h2c", "h2c", "1.24.13", false],
  // golang.org/x/net's server: http2.ConfigureServer over TLS (its stream span is replaced by serverHandler's,
  // which keeps its parent), and its h2c handler
  ["backend-xnet", "https", "1.27.4", true],
  ["backend-xnet-h2c", "h2c", "1.24.13", false],
] as const)("A -> B over HTTP/2 (%s, A calls %s://), Go %s, stripped: %p", (mode, scheme, goVersion, stripped) => {
  let a: Awaited<ReturnType<typeof startServer>>;
  let b: Awaited<ReturnType<typeof startServer>>;
  let gotel: Proc;
  beforeAll(async () => {
    const exe = buildGoFixture("http-chain", { goVersion, stripped });
    b = await startServer(exe, [mode, "127.0.0.1:0"]);
    // A opens its connection to B at its first call: after gotel attached to both (a connection B accepted
    // before gotel attached is not linked, README)
    a = await startServer(exe, ["frontend", "127.0.0.1:0", b.base.replace("http://", `${scheme}://`)]);
    gotel = await runGotel(["--pid", String(a.proc.pid), "--pid", String(b.proc.pid)], {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_BSP_MAX_QUEUE_SIZE: "20000",
    });
    await gotel.waitForLine(new RegExp(`attached pid=${a.proc.pid} .*net/http client`), 20_000);
    await gotel.waitForLine(new RegExp(`attached pid=${b.proc.pid} .*net/http client`), 20_000);
  }, 300_000);
  afterAll(async () => {
    await gotel?.stop();
    await a?.proc.stop();
    await b?.proc.stop();
  });

  test(`${REQUESTS} requests from ${CONCURRENCY} concurrent clients: each B span continues exactly its own stream's client span`, async () => {
    collector.clear();
    let next = 0;
    const problems: string[] = [];
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < REQUESTS; i = next++) {
        const r = await fetch(`${a.base}/inline?id=h2-${i}`);
        const body = new Uint8Array(await r.arrayBuffer());
        const text = new TextDecoder().decode(body);
        if (r.status !== 200 || r.headers.get("x-checksum") !== createHash("sha256").update(body).digest("hex")) {
          problems.push(`${i}: status ${r.status}, body ${text.slice(0, 120)}`);
          continue;
        }
        const saw = JSON.parse(text) as { id: string; bodyOk: boolean; proto: string; traceparent: string[] | null };
        if (saw.id !== `h2-${i}` || !saw.bodyOk || saw.proto !== "HTTP/2.0") problems.push(`${i}: B saw ${text}`);
        // nothing is written into HTTP/2 requests where the kernel refuses it (socket insertion is HTTP/1's)
        if (INJECTION ? saw.traceparent?.length !== 1 : saw.traceparent !== null) problems.push(`${i}: B got traceparent ${saw.traceparent}`);
      }
    }));
    expect(problems).toEqual([]);

    const mine = (s: ReceivedSpan): boolean => pidOf(s) === a.proc.pid || pidOf(s) === b.proc.pid;
    const spans = await collector.waitFor((all) => all.filter(mine).length >= 3 * REQUESTS, `${3 * REQUESTS} spans`, 30_000);
    await Bun.sleep(500);
    expect(collector.spans().filter(mine)).toHaveLength(3 * REQUESTS); // nothing twice
    const aClient = spans.filter((s) => pidOf(s) === a.proc.pid && s.kind === SPAN_KIND.CLIENT);
    const bServer = spans.filter((s) => pidOf(s) === b.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect([aClient.length, bServer.length]).toEqual([REQUESTS, REQUESTS]);
    for (const s of bServer) expect(s.attributes).toMatchObject({ "url.path": "/work", "network.protocol.version": "2" });
    expect(LINKED).toBe(true); // every kernel this runs on links one way or the other (gotel doctor)
    // one parent each, its own: a B span given another stream's client span would lie outside its time
    const clientById = new Map(aClient.map((s) => [s.spanId, s]));
    const misplaced = bServer.filter((s) => {
      const c = clientById.get(s.parentSpanId);
      return c?.traceId !== s.traceId || s.startTimeUnixNano < c.startTimeUnixNano || s.endTimeUnixNano > c.endTimeUnixNano;
    });
    expect(misplaced.map((s) => `${s.spanId} -> ${s.parentSpanId}`)).toEqual([]);
    expect(new Set(bServer.map((s) => s.parentSpanId)).size).toBe(REQUESTS);
  }, 180_000);

  test("a request with the application's own traceparent: B continues it, not the link", async () => {
    collector.clear();
    const [traceId, spanId] = [randomHex(16), randomHex(8)];
    const tp = `00-${traceId}-${spanId}-01`;
    const r = await fetch(`${a.base}/own?id=own-1&tp=${tp}`);
    expect(r.status).toBe(200);
    const saw = JSON.parse(await r.text()) as { traceparent: string[] | null };
    expect(saw.traceparent).toEqual([tp]);
    const spans = await collector.waitFor((all) => all.some((s) => pidOf(s) === b.proc.pid), "B's span");
    const bServer = spans.filter((s) => pidOf(s) === b.proc.pid);
    expect(bServer).toHaveLength(1);
    expect(bServer[0]).toMatchObject({ traceId, parentSpanId: spanId });
  }, 60_000);
});

test("an HTTP/2 connection B accepted before gotel attached: its streams are not linked, and counted as missed", async () => {
  const exe = buildGoFixture("http-chain", { goVersion: "1.27.4" });
  const b = await startServer(exe, ["backend-h2", "127.0.0.1:0"]);
  const a = await startServer(exe, ["frontend", "127.0.0.1:0", b.base.replace("http://", "https://")]);
  let gotel: Proc | undefined;
  try {
    expect((await fetch(`${a.base}/inline?id=before`)).status).toBe(200); // A's connection to B, before gotel
    gotel = await runGotel(["--pid", String(a.proc.pid), "--pid", String(b.proc.pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });
    await gotel.waitForLine(new RegExp(`attached pid=${a.proc.pid} .*net/http client`), 20_000);
    await gotel.waitForLine(new RegExp(`attached pid=${b.proc.pid} .*net/http client`), 20_000);
    collector.clear();
    for (let i = 0; i < 5; i++) expect((await fetch(`${a.base}/inline?id=old-${i}`)).status).toBe(200);
    const spans = await collector.waitFor((all) => all.filter((s) => pidOf(s) === b.proc.pid).length >= 5, "B's 5 spans");
    const bServer = spans.filter((s) => pidOf(s) === b.proc.pid);
    expect(bServer).toHaveLength(5);
    for (const s of bServer) expect(s.parentSpanId).toBe(INJECTION ? expect.any(String) : "");
    await gotel.stop();
    const stopped = [...gotel.stdout, ...gotel.stderr].find((l) => / stopped /.test(l)) ?? "";
    expect(stopped).toContain(INJECTION ? "linked_same_host=0" : "link_missed_old_connection=5");
  } finally {
    await gotel?.stop();
    await a.proc.stop();
    await b.proc.stop();
  }
}, 120_000);
