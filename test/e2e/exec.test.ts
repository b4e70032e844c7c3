/** `gotel exec`: probes in place before the program's first instruction; exit codes and signals pass through. */
import { expect, test } from "bun:test";
import { useCollector } from "../support/collector.ts";
import { GOTEL } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";
import { waitFor } from "../support/kernel.ts";
import { Proc } from "../support/processes.ts";

const collector = useCollector();

/** `gotel exec` of the HTTP server fixture; resolves once the program listens, with its pid and address. */
async function execServer(env: Record<string, string> = {}): Promise<{ g: Proc; pid: number; addr: string }> {
  const exe = buildGoFixture("http-server", { goVersion: "1.27.4" });
  const g = new Proc([GOTEL, "exec", "--", exe], { OTEL_EXPORTER_OTLP_ENDPOINT: collector().httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100", ...env });
  const line = await g.waitForLine(/^listening /, 20_000);
  const attached = await g.waitForLine(/attached pid=\d+ exe=\S+http-server /);
  return { g, pid: Number(/pid=(\d+)/.exec(attached)![1]), addr: line.split(" ")[1]! };
}

test("the very first request is traced; SIGTERM is forwarded to the program, whose own exit code gotel returns", async () => {
  // the program handles SIGTERM: prints "got SIGTERM" and exits 7, a code gotel could not produce by dying itself
  const { g, pid, addr } = await execServer({ EXIT_ON_SIGTERM: "7" });
  // the request goes out the moment the server can accept it: no time for a late attach
  const r = await fetch(`http://${addr}/users/first`);
  expect(r.status).toBe(200);
  const [span] = await collector().waitForSpans(1, 10_000);
  expect(span!.name).toBe("GET /users/{id}");
  expect(span!.attributes["url.path"]).toBe("/users/first");
  expect(span!.resource["process.pid"]).toBe(BigInt(pid));
  expect(await g.stop("SIGTERM")).toBe(7);
  expect(g.proc.signalCode).toBeNull();
  expect(g.stdout).toContain("got SIGTERM");
}, 120_000);

test("a program that SIGTERM kills: gotel itself exits 128+15 after detaching, not killed by the signal", async () => {
  const { g, pid } = await execServer();
  expect(await g.stop("SIGTERM")).toBe(128 + 15);
  // had the signal killed gotel, Bun would report 143 too, but as signalCode SIGTERM with no exit code
  expect(g.proc.signalCode).toBeNull();
  expect(g.proc.exitCode).toBe(128 + 15);
  expect(g.stdout).not.toContain("got SIGTERM");
  expect(g.countLines(new RegExp(`detached pid=${pid} `))).toBe(1);
}, 120_000);

test("exit codes pass through, also for programs gotel cannot instrument", async () => {
  const g = new Proc([GOTEL, "exec", "--", "/bin/sh", "-c", "exit 7"], { OTEL_TRACES_EXPORTER: "none" });
  expect(await waitFor(() => g.exitCode !== null, 10_000)).toBe(true);
  expect(g.exitCode).toBe(7);
});

test("a command that does not exist: one line, exit 1", async () => {
  const g = new Proc([GOTEL, "exec", "--", "/nonexistent/prog"], { OTEL_TRACES_EXPORTER: "none" });
  expect(await waitFor(() => g.exitCode !== null, 10_000)).toBe(true);
  expect(g.exitCode).toBe(1);
  expect(g.stderr).toEqual(["gotel: /nonexistent/prog: command not found or not executable; give the path of a Go program"]);
});
