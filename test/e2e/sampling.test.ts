/**
 * Sampling in the kernel, end to end: service A -> service B (test/fixtures/http-chain) under `gotel run` with
 * OTEL_TRACES_SAMPLER[_ARG], requests carrying known trace IDs, and what reached the collector and the ring
 * buffer. A's /propagate handler forwards the incoming traceparent itself, so B sees the same trace ID even where
 * the kernel forbids gotel's own injection.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { ratioSampled } from "../../src/traces/sampling.ts";
import { pidOf, randomHex, startChain, stopChain, type Chain } from "../support/chain.ts";
import { Collector, SPAN_KIND, useCollector } from "../support/collector.ts";

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

/** Sends one request per traceparent to A's /propagate, `concurrency` at a time; every answer must be 200. */
async function sendAll(c: Chain, traceparents: string[], concurrency = 50): Promise<void> {
  let next = 0;
  const failures: string[] = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < traceparents.length; i = next++) {
      const r = await fetch(`${c.a.base}/propagate?id=${i}`, { headers: { traceparent: traceparents[i]! } });
      await r.arrayBuffer();
      if (r.status !== 200) failures.push(`${i}: ${r.status}`);
    }
  }));
  expect(failures).toEqual([]);
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
    expect(counters.spans).toBe(0);
    expect(counters.unsampled).toBe(3 * 200);
    await Bun.sleep(300);
    expect(collector.spans()).toEqual([]);
  }, 120_000);

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
