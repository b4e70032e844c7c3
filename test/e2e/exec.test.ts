/** `gotel exec`: probes in place before the program's first instruction; exit codes and signals pass through. */
import { expect, test } from "bun:test";
import { useCollector } from "../support/collector.ts";
import { GOTEL } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";
import { waitFor } from "../support/kernel.ts";
import { Proc } from "../support/processes.ts";

const collector = useCollector();

test("the very first request is traced; SIGTERM is forwarded and its exit status returned", async () => {
  const exe = buildGoFixture("http-server", { goVersion: "1.27.4" });
  const g = new Proc([GOTEL, "exec", "--", exe], { OTEL_EXPORTER_OTLP_ENDPOINT: collector().httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });
  const line = await g.waitForLine(/^listening /, 20_000);
  // the request goes out the moment the server can accept it: no time for a late attach
  const r = await fetch(`http://${line.split(" ")[1]}/users/first`);
  expect(r.status).toBe(200);
  const [span] = await collector().waitForSpans(1, 10_000);
  expect(span!.name).toBe("GET /users/{id}");
  expect(span!.attributes["url.path"]).toBe("/users/first");
  expect(g.stderr.some((l) => /attached pid=\d+ exe=\S+http-server /.test(l))).toBe(true);
  expect(await g.stop("SIGTERM")).toBe(128 + 15);
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
