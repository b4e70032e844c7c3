/**
 * Nothing lost in silence after the kernel: `gotel run` against receivers that are down, hang, answer 500 or 429,
 * go away mid-run and come back, or are slower than the queue. For each, every span the server made is either
 * received by the real Collector or reported lost in the final `stopped` line, exactly; gotel warns while it
 * runs, its memory stays under the bound the README states, and SIGTERM ends it with exit 0.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { pidOf } from "../support/chain.ts";
import { Collector, useCollector } from "../support/collector.ts";
import { buildGoFixture } from "../support/go.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

/** gotel's peak RSS under these loads, stated in the README ("What gets lost, and what gotel says") */
const MEMORY_BOUND_MB = 300;
const EXPORT_TIMEOUT_MS = 2000;

const sharedCollector = useCollector();
let collector: Collector;
let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  collector = sharedCollector();
  server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
}, 300_000);
afterAll(async () => {
  await server?.proc.stop();
});

/** n GET requests, `concurrency` at a time; every one must be answered 200. */
async function load(n: number, concurrency = 8): Promise<void> {
  let next = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < n; i = next++) {
      const r = await fetch(`${server.base}/users/${i}`);
      await r.arrayBuffer();
      if (r.status !== 200) failed++;
    }
  }));
  expect(failed).toBe(0);
}

function fields(line: string): Record<string, string> {
  return Object.fromEntries([...line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => [m[1]!, m[2]!.startsWith('"') ? JSON.parse(m[2]!) as string : m[2]!]));
}

function peakRssMb(pid: number): number {
  const kb = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  if (kb === undefined) throw new Error(`no VmHWM for process ${pid}`);
  return Number(kb) / 1024;
}

interface Outcome { stopped: Record<string, string>; received: number; gotel: Proc }

/**
 * Runs gotel against `endpoint` while the server answers `requests` requests (`during` runs alongside), waits
 * for `warning` while gotel still runs, then stops it with SIGTERM; returns its `stopped` line and how many of
 * the server's spans the collector got.
 */
async function session(endpoint: string, requests: number, warning: RegExp, env: Record<string, string> = {}, during?: () => Promise<void>): Promise<Outcome> {
  collector.clear();
  const gotel = await runGotel(["--pid", String(server.proc.pid)], {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_TIMEOUT: "1000",
    OTEL_BSP_SCHEDULE_DELAY: "200",
    OTEL_BSP_EXPORT_TIMEOUT: String(EXPORT_TIMEOUT_MS),
    ...env,
  }, server.proc.pid);
  try {
    await Promise.all([load(requests), during?.()]);
    await gotel.waitForLine(warning, 15_000);
    expect(peakRssMb(gotel.pid)).toBeLessThan(MEMORY_BOUND_MB);
    const t0 = performance.now();
    expect(await gotel.stop("SIGTERM", 15_000)).toBe(0);
    // the last export waits at most OTEL_BSP_EXPORT_TIMEOUT (and detaching, and the exit)
    expect(performance.now() - t0).toBeLessThan(EXPORT_TIMEOUT_MS + 3000);
  } finally {
    if (gotel.exitCode === null) await gotel.stop("SIGKILL");
  }
  expect(gotel.stderr.filter((l) => /unexpected error|^\s+at /.test(l))).toEqual([]);
  const stopped = fields(await gotel.waitForLine(/ stopped /));
  await Bun.sleep(300);
  const received = collector.spans().filter((s) => pidOf(s) === server.proc.pid).length;
  return { stopped, received, gotel };
}

/** spans made = exported + dropped + export_failed + unsampled, and exported = what the collector got */
function expectAccounted(o: Outcome, made: number): void {
  const n = (k: string) => Number(o.stopped[k] ?? NaN);
  expect(n("spans")).toBe(made);
  expect(n("exported") + n("dropped") + n("export_failed") + n("unsampled")).toBe(made);
  expect(n("exported")).toBe(o.received);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
}

describe("every span accounted for when the receiver fails", () => {
  test("receiver down (nothing listening): all reported as export_failed, 'connection refused'", async () => {
    const probe = createServer();
    const port = await listen(probe);
    probe.close();
    const o = await session(`http://127.0.0.1:${port}/v1/traces`, 1500, /warn +spans could not be exported .*reason="connection refused"/);
    expectAccounted(o, 1500);
    expect(o.received).toBe(0);
    expect(o.stopped.export_failed_reasons).toContain("connection refused");
  }, 90_000);

  test("receiver hangs (accepts, never answers): timeouts reported, stop still bounded", async () => {
    const sockets = new Set<Socket>();
    const hang = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    const port = await listen(hang);
    try {
      const o = await session(`http://127.0.0.1:${port}/v1/traces`, 1500, /spans could not be exported .*reason=".*timeout: no answer within 1000 ms/);
      expectAccounted(o, 1500);
      expect(o.received).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      hang.close();
    }
  }, 90_000);

  test.each([
    [500, /reason=.*HTTP 500/],
    [429, /reason=.*HTTP 429, still after retries/],
  ])("receiver answers %d: the status is the reason", async (status, reason) => {
    const http = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("no", { status, headers: { "retry-after": "0" } }) });
    try {
      const o = await session(`http://127.0.0.1:${http.port}/v1/traces`, 1500, new RegExp(`spans could not be exported .*${reason.source}`));
      expectAccounted(o, 1500);
      expect(o.received).toBe(0);
    } finally {
      void http.stop(true);
    }
  }, 90_000);

  test("the collector goes away mid-run and comes back: what it got plus what was reported lost is everything", async () => {
    const { grpcPort, httpPort } = await Collector.freePorts();
    let c = await Collector.start({ grpcPort, httpPort });
    const before: number[] = [];
    // 1,500 requests while it is up, 500 while it is down (their export fails), 1,500 once it is back
    const o = await session(c.httpTracesUrl, 1500, /spans could not be exported .*reason="connection refused"/, {}, async () => {
      await Bun.sleep(300);
      await c.stop();
      before.push(c.spans().filter((s) => pidOf(s) === server.proc.pid).length);
      await load(500);
      await Bun.sleep(1500); // the exporter gives up on them after OTEL_EXPORTER_OTLP_TIMEOUT
      c = await Collector.start({ grpcPort, httpPort });
      await load(1500);
    });
    await Bun.sleep(300);
    const after = c.spans().filter((s) => pidOf(s) === server.proc.pid).length;
    await c.stop();
    expectAccounted({ ...o, received: before[0]! + after }, 3500);
    expect(Number(o.stopped.export_failed)).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(0);
  }, 120_000);

  test("receiver slower than the queue: the queue overflows, the drops are counted and the rest arrives", async () => {
    const slow = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const body = await req.arrayBuffer();
        await Bun.sleep(400);
        return fetch(collector.httpTracesUrl, { method: "POST", body, headers: { "content-type": req.headers.get("content-type") ?? "application/x-protobuf" } });
      },
    });
    try {
      const o = await session(`http://127.0.0.1:${slow.port}/v1/traces`, 2000, /spans dropped: the export queue is full/, {
        OTEL_BSP_MAX_QUEUE_SIZE: "256", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "64", OTEL_EXPORTER_OTLP_TIMEOUT: "5000",
      });
      expectAccounted(o, 2000);
      expect(Number(o.stopped.dropped)).toBeGreaterThan(0);
      expect(o.stopped.dropped_reasons).toBe("export queue full");
      expect(o.received).toBeGreaterThan(0);
    } finally {
      void slow.stop(true);
    }
  }, 90_000);
});
