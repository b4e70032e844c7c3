/**
 * What gotel costs Go HTTP services, measured side by side in one run, for ten scenarios (server spans only,
 * over HTTP/1.1, with a router's route, and over HTTP/2 with TLS; a server that calls another service over
 * HTTP/1.1 or HTTP/2: server + client spans; a server that queries SQLite: server + SQL spans, statements captured and parsed; a server that makes a unary gRPC
 * call: server + gRPC client + gRPC server spans; a server that makes ten spans through the OpenTelemetry API
 * (with otel v1.47.0, through auto/sdk, and with v1.32.0, read from the global tracer's calls); a
 * server that sends one Kafka message through Sarama's SyncProducer: server + PRODUCER spans):
 * the measured server (pinned to CPU 0, GOMAXPROCS=1) under `wrk` (HTTP/2: `h2load`) load from CPU 1, first
 * without gotel, then with `gotel run` attached and exporting over OTLP/HTTP to a local OpenTelemetry Collector
 * (the test one, scripts/build-collector.sh). Prints the server's CPU µs per request and requests/s for both,
 * their ratios, gotel's own CPU µs per span and peak RSS, how many CPUs' worth gotel and the Collector were busy
 * during the load (with the server's and wrk's, two is all this machine has), and the spans its `stopped` line
 * reports lost out of those it made (the whole run: warm-up and measured phase) with the default queue settings.
 *
 *   sudo bun scripts/bench-http.ts [seconds per phase] [--before PATH] [--only TEXT] [--memory-limit MB]
 *   (needs wrk nghttp2-client)
 *
 * --before PATH measures another gotel binary (an earlier build) in the same run, between the two: before and
 * after side by side, each with its ratio to the server without gotel. --only TEXT runs the scenarios whose name
 * contains TEXT (repeatable), to repeat a noisy one. --memory-limit MB measures each build twice, as it runs on
 * the host and in a memory cgroup limited to MB (as in a container with a memory limit), side by side.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Collector } from "../test/support/collector.ts";
import { buildGoFixture } from "../test/support/go.ts";
import { startKafka } from "../test/support/kafka.ts";
import { gotelBuilds, memoryCgroup, statusKb } from "./lib/bench.ts";
import { Proc, startServer } from "../test/support/processes.ts";

const args = process.argv.slice(2);
/** the gotel binaries measured, each against the same server */
const builds = gotelBuilds("bench-http", args, "with gotel");
const only: string[] = [];
for (let at = args.indexOf("--only"); at >= 0; at = args.indexOf("--only")) only.push(args.splice(at, 2)[1] ?? "");
const limitAt = args.indexOf("--memory-limit");
const limitMb = limitAt >= 0 ? Number(args.splice(limitAt, 2)[1]) : undefined;
if (limitMb !== undefined && !(limitMb >= 32)) {
  console.error("bench-http: --memory-limit needs a number of MB, at least 32");
  process.exit(2);
}
const SECONDS = Number(args[0] ?? 8);
const TICK_US = 1e6 / 100; // USER_HZ

function cpuUs(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_US; // utime + stime
}


function wrk(url: string, seconds: number): { requests: number; rps: number } {
  const r = Bun.spawnSync(["taskset", "-c", "1", "wrk", "-t1", "-c16", `-d${seconds}s`, url], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  if (!requests) throw new Error(`wrk failed: ${out}${r.stderr.toString()}`);
  return { requests, rps };
}

/** HTTP/2 over TLS: 16 connections with up to 10 concurrent streams each, on CPU 1 */
function h2load(url: string, seconds: number): { requests: number; rps: number } {
  const r = Bun.spawnSync(["taskset", "-c", "1", "h2load", "-t1", "-c16", "-m10", "-D", String(seconds), url], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  const requests = Number(/requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(out)?.[1]);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
  if (!requests) throw new Error(`h2load failed: ${out}${r.stderr.toString()}`);
  return { requests, rps };
}

type Load = typeof wrk;

function measure(load: Load, serverPid: number, url: string, gotelPid?: number) {
  const s0 = cpuUs(serverPid);
  const g0 = gotelPid ? cpuUs(gotelPid) : 0;
  const c0 = cpuUs(collector.pid);
  const w = load(url, SECONDS);
  return {
    ...w, serverUsPerReq: (cpuUs(serverPid) - s0) / w.requests, gotelUs: gotelPid ? cpuUs(gotelPid) - g0 : 0,
    // how busy the receiver was: on two CPUs, the server, wrk, gotel and the Collector can want more than there is
    collectorShare: (cpuUs(collector.pid) - c0) / (SECONDS * 1e6),
  };
}

if (!Bun.which("wrk") || !Bun.which("h2load")) {
  console.error("bench-http: needs wrk and h2load (apt-get install wrk nghttp2-client)");
  process.exit(1);
}
/** a scenario's processes: the measured one, the URL loaded, every process gotel traces */
interface Started { pid: number; url: string; traced: number[]; stop: () => Promise<void> }

interface Scenario {
  name: string;
  /** spans each request makes, over every traced process */
  spansPerRequest: number;
  /** gotel's settings for it */
  env?: Record<string, string>;
  /** the load generator (default wrk, HTTP/1.1) */
  load?: Load;
  /** starts the processes; returns the measured server's pid, the URL to load, every pid to trace, and a stop */
  start(): Promise<Started>;
}

/** The pid of the program taskset started (taskset execs it, but Bun.spawn may see a wrapper) */
function childOf(p: Proc): number {
  return Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, "utf8").trim()) || p.pid;
}

/** http-chain's B (in `mode`) pinned to CPU 1, and A, measured on CPU 0, calling it with `scheme` URLs */
async function startChain(mode: string, scheme: "http" | "https"): Promise<Started> {
  const exe = buildGoFixture("http-chain");
  const b = await startServer("/usr/bin/taskset", ["-c", "1", exe, mode, "127.0.0.1:0"]);
  const a = await startServer("/usr/bin/taskset", ["-c", "0", exe, "frontend", "127.0.0.1:0", b.base.replace("http://", `${scheme}://`)]);
  const pid = childOf(a.proc);
  return {
    pid, url: `${a.base}/inline?id=1`, traced: [pid, childOf(b.proc)],
    stop: async () => {
      await a.proc.stop();
      await b.proc.stop();
    },
  };
}

const scenarios: Scenario[] = [
  {
    name: "server spans: GET /users/42 on a ServeMux server",
    spansPerRequest: 1,
    async start() {
      const exe = buildGoFixture("http-server");
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe]);
      const pid = childOf(server.proc);
      return { pid, url: `${server.base}/users/42`, traced: [pid], stop: async () => void (await server.proc.stop()) };
    },
  },
  {
    // gin under a ServeMux prefix behind a request-copying middleware: the route probes of both routers run
    // (ServeMux.ServeHTTP twice, gin's handleHTTPRequest once) and the span reads gin's route at its end
    name: "server spans with routes: GET /gin/users/42, gin under a ServeMux prefix (test/fixtures/http-routers)",
    spansPerRequest: 1,
    async start() {
      const exe = buildGoFixture("http-routers");
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe]);
      const pid = childOf(server.proc);
      return { pid, url: `${server.base}/gin/users/42`, traced: [pid], stop: async () => void (await server.proc.stop()) };
    },
  },
  {
    // net/http's own HTTP/2 server (TLS, ALPN h2): the span ends at the stream goroutine's deferred closure
    name: "HTTP/2 server spans: GET /users/42 over TLS, net/http's own HTTP/2 server (test/fixtures/http2-server, h2load)",
    spansPerRequest: 1,
    load: h2load,
    async start() {
      const exe = buildGoFixture("http2-server");
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe, "std"]);
      const pid = childOf(server.proc);
      return { pid, url: `${server.base.replace("http://", "https://")}/users/42`, traced: [pid], stop: async () => void (await server.proc.stop()) };
    },
  },
  {
    // A makes one POST to B per request: a server and a client span in A (with traceparent injection where the
    // kernel allows bpf_probe_write_user), a server span in B
    name: "server + client spans: GET /inline on A, which POSTs to B (test/fixtures/http-chain)",
    spansPerRequest: 3,
    start: () => startChain("backend", "http"),
  },
  {
    // the same over HTTP/2 (B serves TLS with net/http's own HTTP/2 server; A's requests share one connection):
    // the client span's stream is seen at writeHeaders, for injection or same-host linking
    name: "server + HTTP/2 client spans: GET /inline on A, which POSTs to B over HTTP/2 with TLS (test/fixtures/http-chain)",
    spansPerRequest: 3,
    start: () => startChain("backend-h2", "https"),
  },
  {
    // one SELECT by primary key per request through database/sql and mattn/go-sqlite3 (cgo): a server and a
    // SQL span, with the statement read in the kernel and parsed in gotel
    name: "server + SQL spans: GET /users/1 doing one SELECT on SQLite (test/fixtures/http-db, cgo)",
    spansPerRequest: 2,
    env: { OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true", OTEL_GO_AUTO_PARSE_DB_STATEMENT: "true" },
    async start() {
      const exe = buildGoFixture("http-db", { cgo: true });
      const dir = mkdtempSync(join(tmpdir(), "gotel-bench-"));
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe, "127.0.0.1:0", "sqlite3", join(dir, "bench.db")]);
      const pid = childOf(server.proc);
      return {
        pid, url: `${server.base}/users/1`, traced: [pid],
        stop: async () => {
          await server.proc.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    // one unary gRPC call per request over one HTTP/2 connection, to a gRPC server in the same process: the
    // front's server span, the call's CLIENT span and its SERVER span
    name: "gRPC client + server spans: GET /call making one unary call (test/fixtures/grpc-service, grpc v1.85)",
    spansPerRequest: 3,
    async start() {
      const exe = buildGoFixture("grpc-service");
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe]);
      const pid = childOf(server.proc);
      return { pid, url: `${server.base}/call?kind=unary&parent=request`, traced: [pid], stop: async () => void (await server.proc.stop()) };
    },
  },
  {
    // ten spans made through the OpenTelemetry API's global tracer (no SDK installed) per request: without gotel
    // they cost the no-op tracer nothing; with it the application's auto/sdk builds and marshals each, and
    // gotel's two entry probes record it
    name: "OpenTelemetry API spans: GET /steps making 10 spans with the global tracer (test/fixtures/otel-api)",
    spansPerRequest: 11,
    async start() {
      const exe = buildGoFixture("otel-api");
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe, "global", "127.0.0.1:0"]);
      const pid = childOf(server.proc);
      return { pid, url: `${server.base}/steps`, traced: [pid], stop: async () => void (await server.proc.stop()) };
    },
  },
  {
    // the same with otel v1.32.0, whose global tracer has no hook for an agent: gotel reads each span from its
    // calls (Start's entry and single-stepped RETs, then SetAttributes…End's entries: global_tracer_legacy.h)
    name: "OpenTelemetry API spans, otel v1.32.0: GET /steps making 10 spans with the global tracer before its agent hook",
    spansPerRequest: 11,
    async start() {
      const exe = buildGoFixture("otel-api", { goVersion: "1.22.12", modfile: "go.v132.mod", tags: ["otel_legacy"] });
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe, "global", "127.0.0.1:0"]);
      const pid = childOf(server.proc);
      return { pid, url: `${server.base}/steps`, traced: [pid], stop: async () => void (await server.proc.stop()) };
    },
  },
  {
    // one message per request through Sarama's SyncProducer to a real broker (test/support/kafka.ts, on CPU 1 with
    // the load): the server span and the message's PRODUCER span (SendMessage's entry and single-stepped RET)
    name: "server + Kafka producer spans: GET /produce sending one message with Sarama's SyncProducer (test/fixtures/sarama)",
    spansPerRequest: 2,
    async start() {
      const kafka = await startKafka();
      const exe = buildGoFixture("sarama", { goVersion: "1.27.4" });
      const topic = "bench";
      const created = Bun.spawnSync([exe, "create", kafka.address, topic], { stdout: "pipe", stderr: "pipe" });
      if (created.exitCode !== 0) throw new Error(`creating ${topic}: ${created.stderr}`);
      const server = await startServer("/usr/bin/taskset", ["-c", "0", exe, "serve", kafka.address]);
      const pid = childOf(server.proc);
      return {
        pid, url: `${server.base}/produce?topic=${topic}&n=1&key=k`, traced: [pid],
        stop: async () => {
          await server.proc.stop();
          await kafka.stop();
        },
      };
    },
  },
];

const cgroup = limitMb === undefined ? undefined : memoryCgroup(limitMb);
/** each build as it runs on the host, and in the memory cgroup when there is one */
const columns = builds.flatMap((b) => {
  const asIs = { ...b, wrap: (c: string[]) => c };
  return cgroup ? [asIs, { label: builds.length > 1 ? `${b.label}, ${cgroup.label}` : `cap ${cgroup.label}`, path: b.path, wrap: cgroup.wrap }] : [asIs];
});

const collector = await Collector.start();
const cpuInfo = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
console.log(`machine: ${cpuInfo}, ${navigator.hardwareConcurrency} CPUs, Linux ${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}`);
console.log(`measured server pinned to CPU 0 (so GOMAXPROCS=1); wrk -t1 -c16 -d${SECONDS}s (HTTP/2: h2load -t1 -c16 -m10) on CPU 1`);
if (builds.length > 1) console.log(`before: ${builds[0]!.path}; after: ${builds[1]!.path}`);

async function measureWith(column: (typeof columns)[number], sc: Scenario, pid: number, url: string, traced: number[]) {
  const gotel = new Proc(column.wrap([column.path, "run", ...traced.flatMap((p) => ["--pid", String(p)])]), {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, ...sc.env,
  });
  await Bun.sleep(1500);
  const load = sc.load ?? wrk;
  load(url, 2);
  const m = measure(load, pid, url, gotel.pid);
  const rss = statusKb(gotel.pid, "VmHWM") / 1024;
  await gotel.stop();
  await Bun.sleep(500); // the probes are gone
  // what the stopped line says was lost on the way to the collector (queue full, ring buffer full, export failed)
  const stopped = gotel.stderr.find((l) => / stopped /.test(l)) ?? "";
  const count = (k: string) => Number(new RegExp(` ${k}=(\\d+)`).exec(stopped)?.[1] ?? NaN);
  const why = [...stopped.matchAll(/ (dropped_reasons|export_failed_reasons)=("[^"]*"|\S+)/g)].map((r) => `${r[1]}=${r[2]}`).join(" ");
  return { ...m, rss, spans: count("spans"), lost: count("dropped") + count("export_failed"), why };
}

const cell = (v: string, ratio?: number): string => `${v.padStart(9)}${ratio === undefined ? "      " : ` ${ratio.toFixed(2).padStart(4)}x`}`;
for (const sc of scenarios.filter((s) => only.length === 0 || only.some((o) => s.name.includes(o)))) {
  const { pid, url, traced, stop } = await sc.start();
  const load = sc.load ?? wrk;
  load(url, 2); // warm up
  const without = measure(load, pid, url);
  const measured = [];
  for (const c of columns) measured.push(await measureWith(c, sc, pid, url, traced));
  await stop();
  const spansPerRequest = sc.spansPerRequest;
  console.log(`\n${sc.name}`);
  console.log(`${"".padEnd(24)}${"without".padStart(15)}${columns.map((b) => b.label.padStart(15)).join("")}`);
  const row = (name: string, base: string, values: string[]) => console.log(`${name.padEnd(24)}${base.padStart(9)}      ${values.join("")}`);
  row("server CPU µs/request", without.serverUsPerReq.toFixed(1), measured.map((m) => cell(m.serverUsPerReq.toFixed(1), m.serverUsPerReq / without.serverUsPerReq)));
  row("requests/s", without.rps.toFixed(0), measured.map((m) => cell(m.rps.toFixed(0), m.rps / without.rps)));
  row("gotel CPU µs/span", "", measured.map((m) => cell((m.gotelUs / m.requests / spansPerRequest).toFixed(1))));
  row("gotel peak RSS MB", "", measured.map((m) => cell(m.rss.toFixed(0))));
  // CPUs' worth over the load: where these and the server's and wrk's pass 2, spans are lost for want of CPU
  row("gotel CPUs busy", "", measured.map((m) => cell((m.gotelUs / (SECONDS * 1e6)).toFixed(2))));
  row("Collector CPUs busy", "", measured.map((m) => cell(m.collectorShare.toFixed(2))));
  row("spans lost / made", "", measured.map((m) => cell(`${m.lost}/${m.spans}`)));
  for (const [i, m] of measured.entries()) if (m.lost > 0) console.log(`  lost ${columns[i]!.label}: ${m.why}`);
}
// what the collector wrote is not looked at, and parsing gigabytes of it at stop would only fail
rmSync(join(collector.dir, "traces.jsonl"), { force: true });
await collector.stop();
cgroup?.remove();
