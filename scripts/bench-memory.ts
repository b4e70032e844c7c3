/**
 * gotel's own memory while it attaches and once attached: peak RSS (VmHWM) and RSS after attaching, for
 *   - one small target (test/fixtures/http-server, 8 MB) left idle,
 *   - four processes of test/fixtures/big-service (a ~57 MB executable with gRPC, the OpenTelemetry SDK and a
 *     Kubernetes client) attached at once,
 *   - 50 processes of the small target attached at once.
 * The spans go nowhere (OTEL_TRACES_EXPORTER=none): this is about reading executables and attaching.
 *
 *   sudo bun scripts/bench-memory.ts [--before PATH] [runs]
 *
 * --before PATH measures another gotel binary (an earlier build) in the same run, side by side. Each number is
 * the median of `runs` (default 3) fresh agents. A second table says where the settled RSS is: anonymous memory
 * (Bun's heaps, buffers), file pages (gotel's own executable: Bun's code and the embedded bundle, clean and
 * shared, which the kernel can drop and read again), and the rest (the ring buffer's mapping); and beside it the
 * kernel memory of gotel's eBPF maps, which is not in its RSS but is charged to its memory cgroup.
 */
import { readFileSync } from "node:fs";
import { buildGoFixture } from "../test/support/go.ts";
import { fdInfos } from "../test/support/processes.ts";
import { gotelBuilds, statusKb } from "./lib/bench.ts";

const args = process.argv.slice(2);
const builds = gotelBuilds("bench-memory", args, "gotel");
const RUNS = Number(args[0] ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Starts `n` processes of `exe` (each listens on a port of its own choosing); returns their pids. */
function startTargets(exe: string, n: number, argv: string[] = []): Bun.Subprocess[] {
  return Array.from({ length: n }, () => Bun.spawn([exe, ...argv], { stdout: "ignore", stderr: "ignore" }));
}

interface RssParts {
  /** anonymous memory: Bun's heaps, buffers */
  anon: number;
  /** pages of gotel's own executable (and the libraries it maps): clean, shared, dropped and read again at need */
  file: number;
  /** eBPF maps mapped into gotel: the ring buffer */
  maps: number;
}

/**
 * The kernel memory of every eBPF map gotel holds, MB (the `memlock` of each map's /proc/PID/fdinfo, once per map):
 * not in its RSS, but charged to its memory cgroup, so a container's memory limit counts it.
 */
function mapKernelMb(pid: number): number {
  const seen = new Set<string>();
  let bytes = 0;
  for (const info of fdInfos(pid)) {
    const id = /^map_id:\s+(\d+)/m.exec(info)?.[1];
    const memlock = /^memlock:\s+(\d+)/m.exec(info)?.[1];
    if (id === undefined || memlock === undefined || seen.has(id)) continue;
    seen.add(id);
    bytes += Number(memlock);
  }
  return bytes / 2 ** 20;
}

/** A process's RSS by kind of mapping, MB (/proc/PID/smaps) */
function rssParts(pid: number): RssParts {
  const parts: RssParts = { anon: 0, file: 0, maps: 0 };
  let kind: keyof RssParts = "anon";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[1]!;
      kind = name.startsWith("anon_inode:bpf") ? "maps" : name.startsWith("/") ? "file" : "anon";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) parts[kind] += Number(rss[1]) / 1024;
  }
  return parts;
}

/** One agent on the given pids until it says it is running, then 10 s idle (Bun hands freed memory back to the
 * system a few seconds after a collection): its peak and settled RSS in MB. */
async function measure(gotel: string, pids: number[]): Promise<{ peak: number; rss: number; ms: number; kernel: number } & RssParts> {
  const t0 = performance.now();
  const agent = Bun.spawn([gotel, "run", ...pids.flatMap((p) => ["--pid", String(p)])], {
    env: { ...process.env, OTEL_TRACES_EXPORTER: "none", OTEL_LOG_LEVEL: "info" }, stdout: "ignore", stderr: "pipe",
  });
  const reader = agent.stderr.getReader();
  let text = "";
  while (!text.includes("gotel is running")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`gotel exited before it was running:\n${text}`);
    text += new TextDecoder().decode(value);
  }
  const ms = performance.now() - t0;
  await Bun.sleep(10_000);
  const out = { peak: statusKb(agent.pid, "VmHWM") / 1024, rss: statusKb(agent.pid, "VmRSS") / 1024, ms, kernel: mapKernelMb(agent.pid), ...rssParts(agent.pid) };
  agent.kill("SIGTERM");
  await agent.exited;
  return out;
}

const small = buildGoFixture("http-server");
const big = buildGoFixture("big-service");
const scenarios: { label: string; exe: string; n: number; argv?: string[] }[] = [
  { label: "1 small target, idle", exe: small, n: 1, argv: ["127.0.0.1:0"] },
  { label: "4 x big-service at once", exe: big, n: 4 },
  { label: "50 small targets at once", exe: small, n: 50, argv: ["127.0.0.1:0"] },
];

console.log(`gotel's memory, median of ${RUNS} agents per cell (peak = VmHWM while attaching; rss = 10 s after "running")`);
console.log(`${"scenario".padEnd(28)} ${builds.map((b) => `${b.label}: peak / rss / to running`.padEnd(38)).join(" ")}`);
const parts: string[] = [];
for (const s of scenarios) {
  const targets = startTargets(s.exe, s.n, s.argv);
  await Bun.sleep(1500);
  const cells: string[] = [];
  for (const b of builds) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await measure(b.path, targets.map((t) => t.pid)));
    const [peak, rss, ms] = [median(runs.map((r) => r.peak)), median(runs.map((r) => r.rss)), median(runs.map((r) => r.ms))];
    cells.push(`${peak.toFixed(0).padStart(4)} MB / ${rss.toFixed(0).padStart(4)} MB / ${ms.toFixed(0).padStart(5)} ms`.padEnd(38));
    const [anon, file, maps, kernel] = [median(runs.map((r) => r.anon)), median(runs.map((r) => r.file)), median(runs.map((r) => r.maps)), median(runs.map((r) => r.kernel))];
    parts.push(`${s.label.padEnd(28)} ${b.label.padEnd(8)} ${anon.toFixed(0).padStart(4)} MB ${file.toFixed(0).padStart(9)} MB ${maps.toFixed(0).padStart(6)} MB ${kernel.toFixed(0).padStart(12)} MB`);
  }
  console.log(`${s.label.padEnd(28)} ${cells.join(" ")}`);
  for (const t of targets) t.kill();
  await Promise.all(targets.map((t) => t.exited));
}
console.log(`\nwhere the settled RSS is (medians, /proc/PID/smaps): anonymous / gotel's executable and other files / eBPF maps (the ring buffer);`);
console.log(`and, not in the RSS but charged to gotel's memory cgroup, the kernel memory of its eBPF maps (/proc/PID/fdinfo memlock)`);
for (const line of parts) console.log(line);
