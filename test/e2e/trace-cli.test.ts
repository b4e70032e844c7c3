/** `gotel trace` and the console exporter, from the compiled binary against a real Go server. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { GOTEL } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";
import { requireRoot, waitFor } from "../support/kernel.ts";
import { Proc, startServer } from "../support/processes.ts";

let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  requireRoot();
  server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
}, 300_000);
afterAll(async () => {
  await server?.proc.stop();
});

test("trace --format jsonl --count 3: one JSON object per span, then the summary, exit 0", async () => {
  const g = new Proc([GOTEL, "trace", "--pid", String(server.proc.pid), "--format", "jsonl", "--count", "3"]);
  await g.waitForLine(new RegExp(`attached pid=${server.proc.pid} `), 20_000);
  for (const p of ["/users/1", "/orders", "/fail"]) await fetch(server.base + p, { method: p === "/orders" ? "POST" : "GET" });
  expect(await waitFor(() => g.exitCode !== null, 10_000)).toBe(true);
  expect(g.exitCode).toBe(0);
  const spans = g.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(spans.map((s) => [s.name, s.kind, (s.attributes as Record<string, unknown>)["http.response.status_code"], (s.status as { code: string }).code])).toEqual([
    ["GET /users/{id}", "SERVER", 200, "UNSET"],
    ["POST /orders", "SERVER", 201, "UNSET"],
    ["GET /fail", "SERVER", 500, "ERROR"],
  ]);
  for (const s of spans) {
    expect(Object.keys(s)).toEqual(["traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano", "attributes", "status", "scope", "resource"]);
    expect(BigInt(s.endTimeUnixNano as string)).toBeGreaterThan(BigInt(s.startTimeUnixNano as string));
    expect((s.resource as Record<string, unknown>)["process.pid"]).toBe(server.proc.pid);
  }
  expect(g.stderr.at(-1)).toBe("3 spans, 3 traces, 0 dropped");
}, 60_000);

test("trace --duration ends the session on time with its summary", async () => {
  const t0 = Date.now();
  const g = new Proc([GOTEL, "trace", "--pid", String(server.proc.pid), "--format", "jsonl", "--duration", "1500ms"]);
  await g.waitForLine(new RegExp(`attached pid=${server.proc.pid} `), 20_000);
  await fetch(server.base + "/users/2");
  expect(await waitFor(() => g.exitCode !== null, 10_000)).toBe(true);
  expect(g.exitCode).toBe(0);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
  expect(g.stdout.length).toBe(1);
  expect(g.stderr.at(-1)).toBe("1 spans, 1 traces, 0 dropped");
}, 60_000);

test("without a terminal the default format is jsonl", async () => {
  const g = new Proc([GOTEL, "trace", "--pid", String(server.proc.pid), "--count", "1"]);
  await g.waitForLine(new RegExp(`attached pid=${server.proc.pid} `), 20_000);
  await fetch(server.base + "/users/default");
  expect(await g.wait(10_000)).toBe(0);
  expect(g.stdout.map((l) => JSON.parse(l) as Record<string, unknown>).map((s) => [s.name, (s.attributes as Record<string, unknown>)["url.path"]])).toEqual([
    ["GET /users/{id}", "/users/default"],
  ]);
  expect(g.stderr.at(-1)).toBe("1 spans, 1 traces, 0 dropped");
}, 60_000);

const DURATION = String.raw`\d+(?:\.\d+)?(?:ns|µs|ms|s)`;

/**
 * The trees of two one-span traces (GET /users/7, then GET /fail) among `lines`, which may hold gotel's log lines
 * too: exact apart from the time of day, the durations and the trace ids; a trace of one span lasts as long as it.
 */
function expectTwoTrees(lines: string[]): void {
  const tree = lines.filter((l) => !/^\d{4}-\d\d-\d\dT/.test(l) && !/ dropped$/.test(l));
  const durations: string[][] = [];
  const normalised = tree.map((l) => {
    const found = [...l.matchAll(new RegExp(` +(${DURATION})  `, "g"))].map((m) => m[1]!);
    if (found.length) durations.push(found);
    return l
      .replace(/^\d\d:\d\d:\d\d\.\d{3}  /, "TIME  ")
      .replace(new RegExp(` +${DURATION}  `, "g"), "  DUR  ")
      .replace(/trace [0-9a-f]{32}$/, "trace ID");
  });
  const bar = "█".repeat(24);
  expect(normalised).toEqual([
    "TIME  http-server  GET /users/{id}  DUR  1 span  trace ID",
    `  GET /users/{id}  srv  DUR  ${bar}  200 /users/7`,
    "",
    "TIME  http-server  GET /fail  DUR  1 span  trace ID",
    `  GET /fail  srv  DUR  ${bar}  500 ERROR`,
    "",
  ]);
  expect(durations.map((d) => d.length)).toEqual([1, 1, 1, 1]);
  expect(durations[1]).toEqual(durations[0]!);
  expect(durations[3]).toEqual(durations[2]!);
}

async function sendTwo(): Promise<void> {
  expect((await fetch(server.base + "/users/7")).status).toBe(200);
  expect((await fetch(server.base + "/fail")).status).toBe(500);
}

test("trace --format tree: one tree per trace with durations and a waterfall, no colors on a pipe", async () => {
  const g = new Proc([GOTEL, "trace", "--pid", String(server.proc.pid), "--format", "tree", "--count", "2"]);
  await g.waitForLine(new RegExp(`attached pid=${server.proc.pid} `), 20_000);
  await sendTwo();
  expect(await g.wait(10_000)).toBe(0);
  expect(g.stdout.join("\n")).not.toContain("\x1b[");
  expectTwoTrees(g.stdout);
  expect(g.stderr.at(-1)).toBe("2 spans, 2 traces, 0 dropped");
}, 60_000);

test("on a terminal (a pseudo-terminal from script(1)) the default is the tree, in color", async () => {
  // script runs gotel on a pty: stdout and stderr both go to it and come back here as script's stdout
  const g = new Proc(["script", "-qec", `${GOTEL} trace --pid ${server.proc.pid} --count 2`, "/dev/null"]);
  await g.waitForLine(new RegExp(`attached pid=${server.proc.pid} `), 20_000);
  await sendTwo();
  expect(await g.wait(10_000)).toBe(0);
  const raw = g.stdout.join("\n");
  expect(raw).toContain("\x1b[1mhttp-server  GET /users/{id}\x1b[0m"); // the header's service and name in bold
  const lines = g.stdout.map((l) => l.replace(/\r$/, "").replace(/\x1b\[[0-9;]*m/g, ""));
  expectTwoTrees(lines);
  expect(lines.filter((l) => l !== "").at(-1)).toBe("2 spans, 2 traces, 0 dropped");
}, 60_000);

test("OTEL_TRACES_EXPORTER=console prints spans on stdout", async () => {
  const g = new Proc([GOTEL, "run", "--pid", String(server.proc.pid)], { OTEL_TRACES_EXPORTER: "console", OTEL_BSP_SCHEDULE_DELAY: "100" });
  await g.waitForLine(new RegExp(`attached pid=${server.proc.pid} `), 20_000);
  await fetch(server.base + "/users/console");
  await g.waitForLine(/url\.path.*\/users\/console/, 10_000);
  expect(g.stdout.join("\n")).toContain("name: \"GET /users/{id}\"");
  expect(await g.stop("SIGINT")).toBe(0);
}, 60_000);

test("bad trace flags: one line, exit 2", async () => {
  const g = new Proc([GOTEL, "trace", "--pid", String(server.proc.pid), "--duration", "soon"]);
  expect(await waitFor(() => g.exitCode !== null, 10_000)).toBe(true);
  expect(g.exitCode).toBe(2);
  expect(g.stderr).toEqual(["gotel: --duration needs a positive duration like 30s, 2m or 500ms, got 'soon'; see `gotel help`"]);
});
