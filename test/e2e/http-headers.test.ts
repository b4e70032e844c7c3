/**
 * Incoming trace context and User-Agent found in header maps of every size, for both Go map implementations:
 * buckets with overflow chains (Go < 1.24) and Swiss tables of many groups (Go >= 1.24). net/textproto sizes a
 * request's Header map for its header lines, and Go seeds each map's hash at random, so which bucket or group
 * holds `Traceparent` changes from request to request: many requests per size make a missed one show.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Collector, SPAN_KIND, useCollector } from "../support/collector.ts";
import { randomHex } from "../support/chain.ts";
import { buildGoFixture } from "../support/go.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

/** [headers sent besides traceparent and User-Agent, requests]: 13 overflows a 2-bucket map ~1 time in 4 */
const SIZES = [[13, 150], [40, 40], [100, 30], [180, 30]] as const;

describe.each(["1.22.12", "1.27.4"])("a server built with Go %s", (goVersion) => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let gotel: Proc;

  beforeAll(async () => {
    server = await startServer(buildGoFixture("http-server", { goVersion }));
    gotel = await runGotel(["--pid", String(server.proc.pid)],
      { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" }, server.proc.pid);
  }, 300_000);
  afterAll(async () => {
    await gotel?.stop();
    await server?.proc.stop();
  });

  test.each(SIZES)("%i more headers: every request's span continues its traceparent", async (extra, requests) => {
    collector.clear();
    const headers = Object.fromEntries(Array.from({ length: extra }, (_, i) => [`X-Extra-${i}`, `value-${i}`]));
    const sent = new Map<string, { traceId: string; parent: string }>();
    for (let i = 0; i < requests; i++) {
      const path = `/users/h${extra}-${i}`;
      const ctx = { traceId: randomHex(16), parent: randomHex(8) };
      sent.set(path, ctx);
      const r = await fetch(server.base + path, {
        headers: { ...headers, "User-Agent": "gotel-headers/1.0", traceparent: `00-${ctx.traceId}-${ctx.parent}-01` },
      });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
    const spans = await collector.waitForSpans(requests, 20_000);
    expect(spans).toHaveLength(requests);
    const missed: string[] = [];
    for (const span of spans) {
      const path = String(span.attributes["url.path"]);
      const ctx = sent.get(path);
      expect(ctx).toBeDefined();
      expect(span.kind).toBe(SPAN_KIND.SERVER);
      if (span.traceId !== ctx!.traceId || span.parentSpanId !== ctx!.parent) missed.push(`${path}: traceparent`);
      if (span.attributes["user_agent.original"] !== "gotel-headers/1.0") missed.push(`${path}: User-Agent`);
    }
    expect(missed).toEqual([]);
  }, 120_000);
});
