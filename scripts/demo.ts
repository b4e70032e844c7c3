/**
 * The demo behind `npm run demo` (as root): starts a small Go HTTP service (test/fixtures/http-server, built
 * here), traces it with `gotel trace`, sends it a few requests and shows their spans as a tree. No collector.
 */
import { buildGoFixture, ROOT } from "../test/support/go.ts";
import { join } from "node:path";

if (process.getuid?.() !== 0) {
  console.error("demo: gotel attaches eBPF uprobes, which needs root: run `sudo npm run demo`");
  process.exit(1);
}
const exe = buildGoFixture("http-server");
const server = Bun.spawn([exe], { stdout: "pipe", stderr: "inherit" });
const reader = (server.stdout as ReadableStream<Uint8Array>).getReader();
const first = new TextDecoder().decode((await reader.read()).value);
const base = `http://${first.trim().split(" ")[1]}`;
console.log(`demo: Go service ${exe.slice(ROOT.length + 1)} (pid ${server.pid}) is listening on ${base}`);

const requests: [string, string][] = [["GET", "/users/42"], ["POST", "/orders"], ["GET", "/users/7"], ["GET", "/slow"], ["GET", "/fail"], ["GET", "/healthz"]];
const gotel = Bun.spawn([join(ROOT, "dist/gotel"), "trace", "--pid", String(server.pid), "--format", "tree", "--count", String(requests.length)], {
  stdout: "inherit", stderr: "pipe", env: { ...process.env, OTEL_LOG_LEVEL: "warn" },
});
await Bun.sleep(1500); // attaching takes a fraction of that
for (const [method, path] of requests) {
  const r = await fetch(base + path, { method });
  console.log(`demo: ${method} ${path} -> ${r.status}`);
}
const code = await gotel.exited;
process.stderr.write(await new Response(gotel.stderr as ReadableStream).text());
server.kill();
process.exit(code);
