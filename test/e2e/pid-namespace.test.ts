/**
 * gotel as a container's entrypoint next to the app (shared PID namespace): the pids it sees in /proc are not
 * the kernel's global ones. Reproduced with unshare: gotel and the server in a new PID namespace with its own /proc.
 */
import { beforeAll, expect, test } from "bun:test";
import { Collector } from "../support/collector.ts";
import { GOTEL } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";
import { requireRoot, waitFor } from "../support/kernel.ts";
import { Proc } from "../support/processes.ts";

beforeAll(requireRoot);

test("spans of a server in gotel's own PID namespace carry the pid gotel sees", async () => {
  const exe = buildGoFixture("http-server", { goVersion: "1.27.4" });
  const { httpPort: port } = await Collector.freePorts();
  const script = `${exe} 127.0.0.1:${port} >/dev/null & sleep 0.3; exec ${GOTEL} trace --pid $! --count 1 --format jsonl`;
  const g = new Proc(["unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", script]);
  const attached = await g.waitForLine(/attached pid=\d+ /, 20_000);
  const nsPid = Number(/attached pid=(\d+) /.exec(attached)![1]);
  expect(nsPid).toBeLessThan(10); // a fresh namespace: the server is one of its first processes
  const r = await fetch(`http://127.0.0.1:${port}/users/ns`);
  expect(r.status).toBe(200);
  expect(await waitFor(() => g.exitCode !== null, 10_000)).toBe(true);
  expect(g.exitCode).toBe(0);
  expect(g.stdout.length).toBe(1);
  const span = JSON.parse(g.stdout[0]!) as { name: string; attributes: Record<string, unknown>; resource: Record<string, unknown> };
  expect(span.name).toBe("GET /users/{id}");
  expect(span.attributes["url.path"]).toBe("/users/ns");
  expect(span.resource["process.pid"]).toBe(nsPid);
}, 60_000);
