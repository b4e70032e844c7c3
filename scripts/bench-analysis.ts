/**
 * How long gotel takes to learn what it needs from a large Go executable (a 60 MB service with gRPC, the
 * OpenTelemetry SDK and a Kubernetes client): build info, functions, probe sites of the functions a typical
 * plan probes, and DWARF offsets of the fields it reads. Measured in the compiled binary (dist/gotel inspect),
 * with gotel's own start-up (dist/gotel version) measured side by side and subtracted. Target: < 300 ms.
 *
 *   bun scripts/bench-analysis.ts [runs]
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { buildGoFixture, ROOT } from "../test/support/go.ts";

const GOTEL = join(ROOT, "dist/gotel");
const RUNS = Number(process.argv[2] ?? 10);
const FUNCTIONS = [
  "net/http.serverHandler.ServeHTTP",
  "net/http.(*Transport).roundTrip",
  "google.golang.org/grpc.(*Server).handleStream",
  "google.golang.org/grpc.(*ClientConn).Invoke",
  "google.golang.org/grpc/internal/transport.(*http2Client).NewStream",
  "google.golang.org/grpc/internal/transport.(*http2Server).operateHeaders",
  "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End",
  "go.opentelemetry.io/otel/sdk/trace.(*tracer).Start",
  "k8s.io/client-go/rest.(*Request).Do",
  "runtime.newproc1",
];
const FIELDS = [
  "runtime.g.goid", "net/http.Request.Method", "net/http.Request.URL", "net/http.Request.Host", "net/http.Request.Header",
  "net/url.URL.Path", "net/url.URL.Scheme", "net/http.Response.StatusCode", "google.golang.org/grpc.ClientConn.target",
  "google.golang.org/grpc/internal/transport.Stream.method", "google.golang.org/grpc/internal/transport.http2Server.peer",
  "go.opentelemetry.io/otel/sdk/trace.recordingSpan.name",
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function wallMs(cmd: string[]): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
  return { ms, stdout: r.stdout.toString() };
}

const startup = median(Array.from({ length: RUNS }, () => wallMs([GOTEL, "version"]).ms));
console.log(`gotel start-up (dist/gotel version): ${startup.toFixed(0)} ms median of ${RUNS}`);
console.log("binary                         size     total   analysis   phases (ms, median)");
for (const [label, variant] of [["unstripped", {}], ["stripped (-s -w)", { stripped: true }]] as const) {
  const bin = buildGoFixture("big-service", variant);
  const args = [GOTEL, "inspect", bin, "--json", "--timings", ...FUNCTIONS.flatMap((f) => ["--function", f]), ...FIELDS.flatMap((f) => ["--field", f])];
  const runs = Array.from({ length: RUNS }, () => wallMs(args));
  const phases: Record<string, number[]> = {};
  for (const r of runs) {
    const j = JSON.parse(r.stdout) as { timings: Record<string, number>; functions: { found: boolean }[] };
    for (const [k, v] of Object.entries(j.timings)) (phases[k] ??= []).push(v);
    if (runs.indexOf(r) === 0) {
      const missing = j.functions.filter((f) => !f.found).length;
      if (missing) console.log(`  (${missing} of the benchmark's functions are not in this binary)`);
    }
  }
  const total = median(runs.map((r) => r.ms));
  const phaseText = Object.entries(phases).map(([k, v]) => `${k} ${median(v).toFixed(1)}`).join(", ");
  console.log(`${label.padEnd(30)} ${(statSync(bin).size / 1e6).toFixed(1).padStart(5)} MB ${total.toFixed(0).padStart(6)} ms ${(total - startup).toFixed(0).padStart(6)} ms   ${phaseText}`);
}
