/**
 * Under load: 200 concurrent clients through A -> B with every probe attached (and injection on where the
 * kernel allows it). No request is corrupted — answers and request bodies are checked against their SHA-256 —
 * and every request gets exactly its spans with the right parents.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { LINKED, ON_THE_WIRE, pidOf, startChain, stopChain, type Chain } from "../support/chain.ts";
import { Collector, SPAN_KIND, useCollector } from "../support/collector.ts";

const sharedCollector = useCollector();
let collector: Collector;
let chain: Chain;
beforeAll(async () => {
  collector = sharedCollector();
  chain = await startChain(collector, "1.27.4");
}, 300_000);
afterAll(() => stopChain(chain));

const REQUESTS = 2000;
const CONCURRENCY = 200;

test(`${REQUESTS} requests from ${CONCURRENCY} concurrent clients: intact answers, one span per hop, exact parents`, async () => {
  collector.clear();
  let next = 0;
  const problems: string[] = [];
  /** request id -> the traceparent B received */
  const onWire = new Map<string, string | undefined>();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < REQUESTS; i = next++) {
      const r = await fetch(`${chain.a.base}/inline?id=load-${i}`);
      const body = new Uint8Array(await r.arrayBuffer());
      const text = new TextDecoder().decode(body);
      const sum = createHash("sha256").update(body).digest("hex");
      if (r.status !== 200 || r.headers.get("x-checksum") !== sum) problems.push(`${i}: status ${r.status}, body ${text.slice(0, 120)}`);
      else {
        const saw = JSON.parse(text) as { id: string; bodyOk: boolean; traceparent: string[] | null };
        if (saw.id !== `load-${i}` || !saw.bodyOk) problems.push(`${i}: B saw ${text}`);
        if (ON_THE_WIRE ? saw.traceparent?.length !== 1 : saw.traceparent !== null) problems.push(`${i}: B got traceparent ${saw.traceparent}`);
        onWire.set(saw.id, saw.traceparent?.[0]);
      }
    }
  }));
  expect(problems).toEqual([]);

  const spans = await collector.waitForSpans(3 * REQUESTS, 30_000).catch(async (e) => {
    await chain.gotel.stop();
    throw new Error(`${String(e).slice(0, 300)}\ngotel: ${[...chain.gotel.stdout, ...chain.gotel.stderr].filter((l) => / stopped |warn/.test(l)).join("\n")}`);
  });
  await Bun.sleep(500);
  expect(collector.spans()).toHaveLength(3 * REQUESTS);
  const aServer = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.SERVER);
  const aClient = spans.filter((s) => pidOf(s) === chain.a.proc.pid && s.kind === SPAN_KIND.CLIENT);
  const bServer = spans.filter((s) => pidOf(s) === chain.b.proc.pid && s.kind === SPAN_KIND.SERVER);
  expect([aServer.length, aClient.length, bServer.length]).toEqual([REQUESTS, REQUESTS, REQUESTS]);

  // each client span belongs to the server span of the same request: same id in both urls, parent, trace
  const serverById = new Map(aServer.map((s) => [s.spanId, s]));
  const parents = new Set<string>();
  for (const c of aClient) {
    const server = serverById.get(c.parentSpanId);
    expect(server?.traceId).toBe(c.traceId);
    const id = /id=(load-\d+)$/.exec(String(c.attributes["url.full"]))?.[1];
    expect(server?.attributes["url.path"]).toBe("/inline");
    expect(id).toBeDefined();
    // the header on the wire is this request's own client span
    if (ON_THE_WIRE) expect(onWire.get(id!)).toBe(`00-${c.traceId}-${c.spanId}-01`);
    parents.add(c.parentSpanId);
  }
  expect(parents.size).toBe(REQUESTS);
  expect(bServer.filter((s) => s.attributes["url.path"] !== "/work")).toEqual([]);
  expect(new Set(bServer.map((s) => s.spanId)).size).toBe(REQUESTS);
  if (LINKED) {
    // each B span continues exactly its own request's client span: no cross-talk between concurrent connections
    // (one parent each, and inside its parent's time: a B span given another request's client span would not be)
    const clientById = new Map(aClient.map((s) => [s.spanId, s]));
    const misplaced: string[] = [];
    for (const b of bServer) {
      const c = clientById.get(b.parentSpanId);
      if (c?.traceId !== b.traceId || b.startTimeUnixNano < c.startTimeUnixNano || b.endTimeUnixNano > c.endTimeUnixNano) misplaced.push(`${b.spanId} -> ${b.parentSpanId}`);
    }
    expect(misplaced).toEqual([]);
    expect(new Set(bServer.map((s) => s.parentSpanId)).size).toBe(REQUESTS);
  }
}, 180_000);
