/**
 * Sampling in the kernel, end to end: service A -> service B (test/fixtures/http-chain) under `gotel run` with
 * OTEL_TRACES_SAMPLER[_ARG], requests carrying known trace IDs, and what reached the collector and the ring
 * buffer. A's /propagate handler forwards the incoming traceparent itself, so B sees the same trace ID even where
 * the kernel forbids gotel's own injection; requests without one (roots) go to /inline.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { ratioSampled } from "../../src/traces/sampling.ts";
import { LINKED, ON_THE_WIRE, pidOf, randomHex, startChain, stopChain, type Chain } from "../support/chain.ts";
import { Collector, SPAN_KIND, useCollector, type ReceivedSpan } from "../support/collector.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

const GO = "1.27.4";

let chain: Chain | undefined;
afterEach(async () => {
  await stopChain(chain);
  chain = undefined;
});

/** What B answered: the traceparent values it received (its request's id is the index in sendAll's list). */
interface BSaw { traceparent: string[] | null; id: string }

/**
 * Sends one request per entry to A's `path` (`/propagate` by default) with that traceparent, or none for
 * `undefined`, `concurrency` at a time; every answer must be 200. Returns what B saw, per request.
 */
async function sendAll(c: Chain, traceparents: (string | undefined)[], concurrency = 50, path = "/propagate"): Promise<BSaw[]> {
  let next = 0;
  const failures: string[] = [];
  const saw: BSaw[] = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < traceparents.length; i = next++) {
      const tp = traceparents[i];
      const r = await fetch(`${c.a.base}${path}?id=${i}`, { headers: tp === undefined ? {} : { traceparent: tp } });
      const body = await r.text();
      if (r.status !== 200) failures.push(`${i}: ${r.status}`);
      else saw[i] = JSON.parse(body) as BSaw;
    }
  }));
  expect(failures).toEqual([]);
  return saw;
}

/** n random trace IDs on which the ratio decides `sampled`: a span that follows its parent must disagree with it. */
function traceIdsWhereRatio(n: number, ratio: number, sampled: boolean): string[] {
  const out: string[] = [];
  while (out.length < n) {
    const t = randomHex(16);
    if (ratioSampled(t, ratio) === sampled) out.push(t);
  }
  return out;
}

/** Incoming parents (trace ID -> the parent's span ID), each sent to /propagate as `00-<trace>-<span>-<flags>`. */
function remoteParents(traceIds: string[]): Map<string, string> {
  return new Map(traceIds.map((t) => [t, randomHex(8)]));
}
const asTraceparents = (parents: Map<string, string>, flags: "00" | "01") => [...parents].map(([t, p]) => `00-${t}-${p}-${flags}`);

/**
 * For each incoming parent: exactly three spans in its trace — A's server span, the child of the remote parent;
 * A's client span, the child of A's server span; B's server span, also the child of the remote parent (A's
 * /propagate hands B the incoming traceparent itself, and gotel never adds a second one).
 */
function expectChildrenOfRemoteParents(c: Chain, spans: ReceivedSpan[], parents: Map<string, string>): void {
  const byTrace = Map.groupBy(spans, (s) => s.traceId);
  for (const [traceId, parent] of parents) {
    const trace = byTrace.get(traceId) ?? [];
    const aServer = trace.filter((s) => pidOf(s) === c.a.proc.pid && s.kind === SPAN_KIND.SERVER);
    const aClient = trace.filter((s) => pidOf(s) === c.a.proc.pid && s.kind === SPAN_KIND.CLIENT);
    const bServer = trace.filter((s) => pidOf(s) === c.b.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect([aServer.length, aClient.length, bServer.length, trace.length]).toEqual([1, 1, 1, 3]);
    expect(aServer[0]!.parentSpanId).toBe(parent);
    expect(aServer[0]!.flags & 0x300).toBe(0x300); // OTLP: the parent is remote
    expect(aClient[0]!.parentSpanId).toBe(aServer[0]!.spanId);
    expect(bServer[0]!.parentSpanId).toBe(parent);
    expect(bServer[0]!.flags & 0x300).toBe(0x300);
  }
}

/** Stops gotel (which flushes every span) and returns its final counters from the "stopped" log line. */
async function stopGotel(c: Chain): Promise<Record<string, number>> {
  expect(await c.gotel.stop()).toBe(0);
  const line = await c.gotel.waitForLine(/ stopped /);
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

describe("kernel sampling", () => {
  test("traceidratio 0.25 over 2,000 requests: exactly the trace IDs the ratio selects, the same in both services", async () => {
    chain = await startChain(collector, GO, { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" });
    collector.clear();
    const traces = Array.from({ length: 2000 }, () => randomHex(16));
    await sendAll(chain, traces.map((t) => `00-${t}-${randomHex(8)}-01`));
    const counters = await stopGotel(chain);
    const expected = new Set(traces.filter((t) => ratioSampled(t, 0.25)));
    await collector.waitForSpans(3 * expected.size);
    // 2,000 draws at p = 0.25: mean 500, sd 19.4; 4 sd either side
    expect(expected.size).toBeGreaterThanOrEqual(422);
    expect(expected.size).toBeLessThanOrEqual(578);

    const spans = collector.spans();
    const ids = (pid: number, kind: number) => spans.filter((s) => pidOf(s) === pid && s.kind === kind).map((s) => s.traceId).sort();
    const want = [...expected].sort();
    expect(ids(chain.a.proc.pid, SPAN_KIND.SERVER)).toEqual(want);
    expect(ids(chain.a.proc.pid, SPAN_KIND.CLIENT)).toEqual(want);
    expect(ids(chain.b.proc.pid, SPAN_KIND.SERVER)).toEqual(want);
    expect(spans).toHaveLength(3 * expected.size);
    // an unsampled span never reaches the ring buffer
    expect(counters.events).toBe(3 * expected.size);
    expect(counters.unsampled).toBe(3 * (2000 - expected.size));
    expect(counters.dropped).toBe(0);
  }, 240_000);

  test("parentbased_always_on (the default) follows the incoming sampled flag", async () => {
    chain = await startChain(collector, GO);
    collector.clear();
    const sampled = Array.from({ length: 20 }, () => randomHex(16));
    const unsampled = Array.from({ length: 20 }, () => randomHex(16));
    await sendAll(chain, [...sampled.map((t) => `00-${t}-${randomHex(8)}-01`), ...unsampled.map((t) => `00-${t}-${randomHex(8)}-00`)], 8);
    const counters = await stopGotel(chain);
    const spans = await collector.waitForSpans(3 * 20);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set(sampled));
    expect(spans).toHaveLength(3 * 20);
    expect(counters.unsampled).toBe(3 * 20);
  }, 120_000);

  test("always_off: no spans and no ring-buffer events", async () => {
    chain = await startChain(collector, GO, { OTEL_TRACES_SAMPLER: "always_off" });
    collector.clear();
    await sendAll(chain, Array.from({ length: 200 }, () => `00-${randomHex(16)}-${randomHex(8)}-01`), 20);
    const counters = await stopGotel(chain);
    expect(counters.events).toBe(0);
    // every span is counted once where it went: here, all unsampled
    expect(counters.spans).toBe(3 * 200);
    expect(counters.exported).toBe(0);
    expect(counters.unsampled).toBe(3 * 200);
    await Bun.sleep(300);
    expect(collector.spans()).toEqual([]);
  }, 120_000);

  test("always_on ignores an unsampled incoming parent: the spans are recorded, still its children, in its trace", async () => {
    // the OpenTelemetry spec's AlwaysOn: RECORD_AND_SAMPLE whatever the parent decided; the parent is still the parent
    chain = await startChain(collector, GO, { OTEL_TRACES_SAMPLER: "always_on" });
    collector.clear();
    const unsampled = remoteParents(Array.from({ length: 20 }, () => randomHex(16)));
    await sendAll(chain, asTraceparents(unsampled, "00"), 8);
    // and requests without a traceparent are roots, all recorded
    await sendAll(chain, Array.from({ length: 10 }, () => undefined), 8, "/inline");
    const counters = await stopGotel(chain);
    const spans = await collector.waitForSpans(3 * 30);
    expect(spans).toHaveLength(3 * 30);
    expectChildrenOfRemoteParents(chain, spans, unsampled);
    const roots = spans.filter((s) => !unsampled.has(s.traceId));
    const aRoots = roots.filter((s) => pidOf(s) === chain!.a.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect(aRoots).toHaveLength(10);
    for (const s of aRoots) expect(s.parentSpanId).toBe("");
    const aRootClients = roots.filter((s) => pidOf(s) === chain!.a.proc.pid && s.kind === SPAN_KIND.CLIENT);
    expect(aRootClients.map((s) => s.parentSpanId).sort()).toEqual(aRoots.map((s) => s.spanId).sort());
    expect(roots.filter((s) => pidOf(s) === chain!.b.proc.pid && s.kind === SPAN_KIND.SERVER)).toHaveLength(10);
    expect(counters.events).toBe(3 * 30);
    expect(counters.unsampled).toBe(0);
  }, 120_000);

  test("parentbased_always_off: no root is sampled; a sampled incoming parent is followed, an unsampled one is not", async () => {
    chain = await startChain(collector, GO, { OTEL_TRACES_SAMPLER: "parentbased_always_off" });
    collector.clear();
    const sampled = remoteParents(Array.from({ length: 20 }, () => randomHex(16)));
    const unsampled = remoteParents(Array.from({ length: 20 }, () => randomHex(16)));
    await sendAll(chain, Array.from({ length: 20 }, () => undefined), 8, "/inline");
    await sendAll(chain, [...asTraceparents(sampled, "01"), ...asTraceparents(unsampled, "00")], 8);
    const counters = await stopGotel(chain);
    const spans = await collector.waitForSpans(3 * 20);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set(sampled.keys()));
    expect(spans).toHaveLength(3 * 20);
    expectChildrenOfRemoteParents(chain, spans, sampled);
    expect(counters.events).toBe(3 * 20);
    // the roots (A's server span, its client span, B's server span) and the unsampled parents' spans
    expect(counters.unsampled).toBe(3 * 20 + 3 * 20);
  }, 120_000);

  test("parentbased_traceidratio 0.25: roots by the trace-ID ratio, requests with a parent follow it whatever the ratio says", async () => {
    chain = await startChain(collector, GO, { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" });
    collector.clear();
    // parents whose trace IDs the ratio would decide the other way
    const sampled = remoteParents(traceIdsWhereRatio(40, 0.25, false));
    const unsampled = remoteParents(traceIdsWhereRatio(40, 0.25, true));
    await sendAll(chain, [...asTraceparents(sampled, "01"), ...asTraceparents(unsampled, "00")], 20);
    const ROOTS = 400;
    const saw = await sendAll(chain, Array.from({ length: ROOTS }, () => undefined), 20, "/inline");
    const counters = await stopGotel(chain);
    const events = counters.events!;
    const spans = await collector.waitForSpans(events);
    expect(spans).toHaveLength(events);
    expect(counters.dropped).toBe(0);
    for (const s of spans) expect(unsampled.has(s.traceId)).toBe(false);
    expectChildrenOfRemoteParents(chain, spans, sampled);

    // the roots: A's server span decides by its trace ID, its client span follows it; B continues A's client span
    // where they are linked (the traceparent gotel writes, or their connection on this host), else B's span is a
    // root of its own, decided by its own trace ID
    const roots = spans.filter((s) => !sampled.has(s.traceId));
    const ids = (pid: number, kind: number) => roots.filter((s) => pidOf(s) === pid && s.kind === kind).map((s) => s.traceId).sort();
    const aRoots = roots.filter((s) => pidOf(s) === chain!.a.proc.pid && s.kind === SPAN_KIND.SERVER);
    for (const s of aRoots) expect(s.parentSpanId).toBe("");
    const aServerIds = ids(chain.a.proc.pid, SPAN_KIND.SERVER);
    expect(ids(chain.a.proc.pid, SPAN_KIND.CLIENT)).toEqual(aServerIds);
    const bServerIds = ids(chain.b.proc.pid, SPAN_KIND.SERVER);
    if (ON_THE_WIRE) {
      // every root's trace ID is on the wire, sampled or not: exactly the ones the ratio selects were recorded
      const all = saw.map((b) => b.traceparent![0]!.split("-"));
      expect(new Set(all.map((f) => f[1])).size).toBe(ROOTS);
      for (const f of all) expect(f[3]).toBe(ratioSampled(f[1]!, 0.25) ? "01" : "00");
      const want = all.map((f) => f[1]!).filter((t) => ratioSampled(t, 0.25)).sort();
      expect(aServerIds).toEqual(want);
      expect(bServerIds).toEqual(want);
    } else if (LINKED) {
      // nothing on the wire; B follows A's decision through the connection, sampled or not
      expect(saw.every((b) => b.traceparent === null)).toBe(true);
      for (const t of aServerIds) expect(ratioSampled(t, 0.25)).toBe(true);
      expect(aServerIds.length).toBeGreaterThanOrEqual(65);
      expect(aServerIds.length).toBeLessThanOrEqual(135);
      expect(bServerIds).toEqual(aServerIds);
    } else {
      // an unsampled root's trace ID is seen nowhere: every recorded one is one the ratio selects, and as many
      // as it should select (400 draws at p = 0.25: mean 100, sd 8.7; 4 sd either side)
      expect(saw.every((b) => b.traceparent === null)).toBe(true);
      for (const t of [...aServerIds, ...bServerIds]) expect(ratioSampled(t, 0.25)).toBe(true);
      for (const n of [aServerIds.length, bServerIds.length]) {
        expect(n).toBeGreaterThanOrEqual(65);
        expect(n).toBeLessThanOrEqual(135);
      }
      for (const t of bServerIds) expect(aServerIds).not.toContain(t);
    }
    expect(roots).toHaveLength(aServerIds.length * 2 + bServerIds.length);
    expect(spans).toHaveLength(3 * 40 + roots.length);
    expect(counters.unsampled).toBe(3 * 40 + 3 * 40 + 3 * ROOTS - events);
  }, 240_000);

  test("OTEL_PROPAGATORS=none: an incoming traceparent is ignored (and nothing would be written)", async () => {
    chain = await startChain(collector, GO, { OTEL_PROPAGATORS: "none" });
    expect(chain.gotel.countLines(/trace context propagation is off/)).toBe(1);
    collector.clear();
    const trace = randomHex(16);
    const r = await fetch(`${chain.a.base}/inline?id=np`, { headers: { traceparent: `00-${trace}-${randomHex(8)}-01` } });
    expect(r.status).toBe(200);
    expect((JSON.parse(await r.text()) as { traceparent: unknown }).traceparent).toBeNull();
    const spans = await collector.waitForSpans(3);
    const server = spans.find((s) => pidOf(s) === chain!.a.proc.pid && s.kind === SPAN_KIND.SERVER)!;
    expect(server.traceId).not.toBe(trace);
    expect(server.parentSpanId).toBe("");
    // inside the process the parent still holds
    const client = spans.find((s) => pidOf(s) === chain!.a.proc.pid && s.kind === SPAN_KIND.CLIENT)!;
    expect(client.parentSpanId).toBe(server.spanId);
  }, 120_000);
});
