/**
 * What gotel costs a Go HTTP server, measured side by side in one run: the server (pinned to CPU 0,
 * GOMAXPROCS=1) under `wrk` load from CPU 1, first without gotel, then with `gotel run` attached and exporting
 * over OTLP/HTTP to a local OpenTelemetry Collector (the test one, scripts/build-collector.sh). Prints the
 * server's CPU µs per request and requests/s for both, their ratios, and gotel's own CPU µs per span and peak RSS.
 *
 *   sudo bun scripts/bench-http.ts [seconds per phase]      (needs wrk: apt-get install wrk)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Collector } from "../test/support/collector.ts";
import { buildGoFixture, ROOT } from "../test/support/go.ts";
import { Proc, startServer } from "../test/support/processes.ts";

const SECONDS = Number(process.argv[2] ?? 8);
const TICK_US = 1e6 / 100; // USER_HZ

function cpuUs(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_US; // utime + stime
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

function wrk(url: string, seconds: number): { requests: number; rps: number } {
  const r = Bun.spawnSync(["taskset", "-c", "1", "wrk", "-t1", "-c16", `-d${seconds}s`, url], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  if (!requests) throw new Error(`wrk failed: ${out}${r.stderr.toString()}`);
  return { requests, rps };
}

function measure(serverPid: number, url: string, gotelPid?: number) {
  const s0 = cpuUs(serverPid);
  const g0 = gotelPid ? cpuUs(gotelPid) : 0;
  const w = wrk(url, SECONDS);
  return { ...w, serverUsPerReq: (cpuUs(serverPid) - s0) / w.requests, gotelUs: gotelPid ? cpuUs(gotelPid) - g0 : 0 };
}

if (!Bun.which("wrk")) {
  console.error("bench-http: needs wrk (apt-get install wrk)");
  process.exit(1);
}
const collector = await Collector.start();
const exe = buildGoFixture("http-server");
const server = await startServer("/usr/bin/taskset", ["-c", "0", exe]);
const pid = Number(readFileSync(`/proc/${server.proc.pid}/task/${server.proc.pid}/children`, "utf8").trim()) || server.proc.pid;
const url = `${server.base}/users/42`;
wrk(url, 2); // warm up
const without = measure(pid, url);
const gotel = new Proc([join(ROOT, "dist/gotel"), "run", "--pid", String(pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_LOG_LEVEL: "warn" });
await Bun.sleep(1500);
wrk(url, 2);
const withGotel = measure(pid, url, gotel.pid);
const rss = peakRssMb(gotel.pid);
await gotel.stop();
await server.proc.stop();
await collector.stop();

const cpuInfo = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
console.log(`machine: ${cpuInfo}, ${navigator.hardwareConcurrency} CPUs, Linux ${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}`);
console.log(`server: ${exe.slice(ROOT.length + 1)}, pinned to CPU 0 (so GOMAXPROCS=1); wrk -t1 -c16 -d${SECONDS}s on CPU 1`);
console.log("                         without gotel    with gotel    ratio");
console.log(`server CPU µs/request   ${without.serverUsPerReq.toFixed(1).padStart(13)} ${withGotel.serverUsPerReq.toFixed(1).padStart(13)} ${(withGotel.serverUsPerReq / without.serverUsPerReq).toFixed(2).padStart(8)}x`);
console.log(`requests/s              ${without.rps.toFixed(0).padStart(13)} ${withGotel.rps.toFixed(0).padStart(13)} ${(withGotel.rps / without.rps).toFixed(2).padStart(8)}x`);
console.log(`gotel CPU µs/span       ${"".padStart(13)} ${(withGotel.gotelUs / withGotel.requests).toFixed(1).padStart(13)}`);
console.log(`gotel peak RSS          ${"".padStart(13)} ${rss.toFixed(0).padStart(10)} MB`);
