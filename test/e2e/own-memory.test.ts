/**
 * gotel's executable's pages that starting and attaching read are handed back once attaching has been quiet for
 * a few seconds (src/executable-pages.ts): its file-backed RSS falls, and the agent goes on tracing, every request
 * a span, with the pages it needs read back.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { pidOf } from "../support/chain.ts";
import { Collector, useCollector } from "../support/collector.ts";
import { buildGoFixture } from "../support/go.ts";
import { requireRoot, waitFor } from "../support/kernel.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
let server: { proc: Proc; base: string };

beforeAll(async () => {
  requireRoot();
  collector = sharedCollector();
  server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
}, 300_000);
afterAll(() => server?.proc.stop());

function rssFileKb(pid: number): number {
  return Number(/RssFile:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
}

test("after attaching, the executable's pages are handed back and tracing goes on", async () => {
  const gotel = await runGotel(["--pid", String(server.proc.pid)], {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint,
    OTEL_BSP_SCHEDULE_DELAY: "200",
    OTEL_LOG_LEVEL: "debug",
  }, server.proc.pid);
  try {
    const before = rssFileKb(gotel.pid);
    const line = await gotel.waitForLine(/executable's pages handed back/, 15_000);
    const [, fromMb, toMb] = /fileMB="(\d+) -> (\d+)"/.exec(line) ?? [];
    expect(line).not.toContain("errno=");
    // gotel's own measure, and the kernel's: at least a third of the file pages went
    expect(Number(toMb)).toBeLessThan(Number(fromMb) * 0.67);
    expect(rssFileKb(gotel.pid)).toBeLessThan(before * 0.67);

    collector.clear();
    for (let i = 0; i < 50; i++) expect((await fetch(`${server.base}/users/${i}`)).status).toBe(200);
    const mine = (): number => collector.spans().filter((s) => pidOf(s) === server.proc.pid).length;
    expect(await waitFor(() => mine() >= 50, 10_000)).toBe(true);
    expect(mine()).toBe(50);
    expect(await gotel.stop()).toBe(0);
    expect(await gotel.waitForLine(/ stopped /)).toContain(" dropped=0 ");
  } finally {
    if (gotel.exitCode === null) await gotel.stop("SIGKILL");
  }
}, 120_000);
