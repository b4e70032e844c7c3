/**
 * Exits don't stall the others: 50 traced processes of one executable are killed at once while another traced
 * server is under load. Detaching a process costs the kernel ~0.25 s (a grace period per link); done inline it
 * stopped the ring-buffer reads and exports for the survivor for ~12 s and lost a quarter of its spans. Every
 * survivor span must arrive, none later than OTEL_BSP_SCHEDULE_DELAY + 1 s after it ended.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pidOf } from "../support/chain.ts";
import { Collector, useCollector } from "../support/collector.ts";
import { buildGoFixture } from "../support/go.ts";
import { waitFor } from "../support/kernel.ts";
import { Proc, startServer } from "../support/processes.ts";
import { GOTEL } from "../support/cli.ts";

const EXITING = 50;
const SCHEDULE_DELAY_MS = 500;
const RATE = 2000;
/** the bound the issue sets, plus what the test adds: its 50 ms polls of a collector that flushes every 50 ms */
const LATE_MS = SCHEDULE_DELAY_MS + 1000 + 150;

const sharedCollector = useCollector();
let collector: Collector;
let dir: string;

beforeAll(() => {
  collector = sharedCollector();
  dir = mkdtempSync(join(tmpdir(), "gotel-many-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

test(`${EXITING} processes killed at once while another is under load: its spans all arrive, none late`, async () => {
  const exe = buildGoFixture("http-server", { goVersion: "1.27.4" });
  const many = join(dir, "http-many");
  copyFileSync(exe, many);
  const survivor = await startServer(exe);
  const doomed = await Promise.all(Array.from({ length: EXITING }, () => startServer(many)));
  const gotel = new Proc([GOTEL, "run", "--exe", many, "--pid", String(survivor.proc.pid)], {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint,
    OTEL_BSP_SCHEDULE_DELAY: String(SCHEDULE_DELAY_MS),
  });
  try {
    await gotel.waitForLine(/gotel is running .*targets=51/, 60_000);
    collector.clear();

    // the collector's spans of the survivor, with when this test first saw each
    const seenAt = new Map<string, number>();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const now = Date.now();
        for (const s of collector.spans()) if (pidOf(s) === survivor.proc.pid && !seenAt.has(s.spanId)) seenAt.set(s.spanId, now);
        await Bun.sleep(50);
      }
    })();

    // 2,000 requests/s, paced: the point is the exits, not saturating two CPUs
    let made = 0;
    let loading = true;
    const t0 = performance.now();
    const load = Promise.all(Array.from({ length: 4 }, async (_, worker) => {
      for (let i = 0; loading; i++) {
        const due = t0 + (i * 4 + worker) * (1000 / RATE);
        if (due > performance.now()) await Bun.sleep(due - performance.now());
        const r = await fetch(`${survivor.base}/users/${made}`);
        await r.arrayBuffer();
        expect(r.status).toBe(200);
        made++;
      }
    }));
    await Bun.sleep(1500);
    for (const d of doomed) d.proc.proc.kill("SIGKILL");
    await Bun.sleep(6000);
    loading = false;
    await load;
    expect(await waitFor(() => gotel.countLines(/ detached pid=\d+ .*reason=exited/) === EXITING, 10_000)).toBe(true);
    // every span by the exporter's timer, not by the final flush
    await waitFor(() => seenAt.size >= made, SCHEDULE_DELAY_MS + 3000);
    expect({ seen: seenAt.size, log: gotel.stderr.filter((l) => /spans (could not|dropped)/.test(l)) }).toEqual({ seen: made, log: [] });
    polling = false;
    await poll;

    const spans = collector.spans().filter((s) => pidOf(s) === survivor.proc.pid);
    expect(spans.length).toBe(made);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(made);
    const late = spans.map((s) => seenAt.get(s.spanId)! - Number(s.endTimeUnixNano / 1_000_000n)).filter((ms) => ms > LATE_MS);
    expect({ made, late: late.length, worstMs: Math.max(0, ...late) }).toEqual({ made, late: 0, worstMs: 0 });
    expect(made).toBeGreaterThan(RATE * 5);
    expect(await gotel.stop("SIGTERM", 60_000)).toBe(0);
    const stopped = await gotel.waitForLine(/ stopped /);
    expect(stopped).toContain(" dropped=0 ");
    expect(stopped).toContain(" export_failed=0 ");
  } finally {
    if (gotel.exitCode === null) await gotel.stop("SIGKILL");
    await survivor.proc.stop();
    for (const d of doomed) if (d.proc.exitCode === null) d.proc.proc.kill("SIGKILL");
  }
}, 180_000);
