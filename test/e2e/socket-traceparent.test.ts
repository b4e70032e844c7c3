/**
 * Socket insertion end to end, on a kernel that refuses bpf_probe_write_user (this project's machines: lockdown
 * `integrity`): a traced Go service's plaintext HTTP/1 requests carry its client span's Traceparent (and the
 * Tracestate it continues) on the wire, inserted into the bytes as its socket sends them — to a receiver nobody
 * traces (a server in this test), and to a traced one that continues it from the header alone. Bodies are
 * checked by hash; the application's own header, TLS, and connections opened before gotel attached are left
 * alone; `kill -9` of gotel leaves nothing attached to the cgroup (the kernel's own listing, bpftool).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Collector, SPAN_KIND, useCollector, type ReceivedSpan } from "../support/collector.ts";
import { ON_THE_WIRE, SOCKET, pidOf, randomHex } from "../support/chain.ts";
import { GOTEL, runCommand } from "../support/cli.ts";
import { buildGoFixture } from "../support/go.ts";
import { fdInfos, Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
let exe: string;
beforeAll(() => {
  collector = sharedCollector();
  exe = buildGoFixture("http-chain", { goVersion: "1.27.4" });
});

/** What a receiver saw of one request: the header values, and whether the body matched its checksum. */
interface Saw { traceparent: string[] | null; tracestate: string[] | null; bodyOk: boolean; id: string; bodyBytes?: number }

/** A receiver no tracer knows: answers like the fixture's B (X-Checksum), reporting the trace headers it got. */
function untracedReceiver(hostname = "127.0.0.1"): { url: string; stop(): void } {
  const server = Bun.serve({
    hostname,
    port: 0,
    async fetch(req) {
      const body = new Uint8Array(await req.arrayBuffer());
      const values = (name: string) => (req.headers.has(name) ? req.headers.get(name)!.split(", ") : null);
      const saw: Saw = {
        traceparent: values("traceparent"), tracestate: values("tracestate"), id: new URL(req.url).searchParams.get("id") ?? "",
        bodyOk: createHash("sha256").update(body).digest("hex") === req.headers.get("x-body-checksum"), bodyBytes: body.length,
      };
      const out = JSON.stringify(saw);
      return new Response(out, { headers: { "x-checksum": createHash("sha256").update(out).digest("hex"), "content-type": "application/json" } });
    },
  });
  return { url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`, stop: () => void server.stop(true) };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Saw> {
  const r = await fetch(url, { headers });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${text}`);
  return JSON.parse(text) as Saw;
}

/** A's client span for the request with this id (its url.full ends with it). */
async function clientSpan(aPid: number, id: string): Promise<ReceivedSpan> {
  const spans = await collector.waitFor((all) => all.some((s) => pidOf(s) === aPid && s.kind === SPAN_KIND.CLIENT && String(s.attributes["url.full"]).includes(`id=${id}`)), `A's call ${id}`);
  return spans.find((s) => pidOf(s) === aPid && s.kind === SPAN_KIND.CLIENT && String(s.attributes["url.full"]).includes(`id=${id}`))!;
}

function stoppedLine(g: Proc): string {
  return [...g.stdout, ...g.stderr].find((l) => / stopped /.test(l)) ?? "";
}

const gotelEnv = () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });

/** A (the fixture's frontend) calling a receiver nobody traces, A traced by a gotel of its own; all stopped after. */
async function withTracedA(run: (a: { proc: Proc; base: string }, g: Proc) => Promise<void>, receiverHost?: string): Promise<void> {
  const b = untracedReceiver(receiverHost);
  const a = await startServer(exe, ["frontend", "127.0.0.1:0", b.url]);
  const g = await runGotel(["--pid", String(a.proc.pid)], gotelEnv(), a.proc.pid);
  try {
    await run(a, g);
  } finally {
    await g.stop();
    await a.proc.stop();
    b.stop();
  }
}

test("gotel doctor: socket insertion is available where writing is refused, unless the host lacks cgroup v2", () => {
  const line = runCommand([GOTEL, "doctor"]).stdout.split("\n").find((l) => l.includes("socket insertion")) ?? "";
  // where writing into processes is allowed the header is written there, and this file has nothing to check;
  // where it is refused, a load or attach failure here is a regression, not a reason to skip the tests below
  if (!SOCKET) console.log(`socket insertion is not used on this machine: ${line.trim()}`);
  expect(line).toMatch(SOCKET ? /^\s*ok\s+socket insertion\s+available: / : ON_THE_WIRE ? /available but not used/ : /not available: no cgroup v2 hierarchy/);
});

test.if(SOCKET)("an untraced receiver gets A's client span's traceparent and the tracestate it continues, bodies intact (small and 300 KB), once per request", () =>
  withTracedA(async (a, g) => {
    collector.clear();
    const traceId = randomHex(16);
    const small = await get(`${a.base}/inline?id=small`, { traceparent: `00-${traceId}-${randomHex(8)}-01`, tracestate: "vendor=abc,other=x:y" });
    const big = await get(`${a.base}/inline?id=big&repeat=30000`);
    const again = await get(`${a.base}/inline?id=again`); // the same keep-alive connection
    for (const saw of [small, big, again]) expect(saw.bodyOk).toBe(true);
    expect(big.bodyBytes).toBe("payload-big;".length * 30000);
    for (const [saw, id] of [[small, "small"], [big, "big"], [again, "again"]] as const) {
      const c = await clientSpan(a.proc.pid, id);
      expect(saw.traceparent).toEqual([`00-${c.traceId}-${c.spanId}-01`]);
    }
    expect(small.traceparent![0]).toContain(traceId);
    expect(small.tracestate).toEqual(["vendor=abc,other=x:y"]);
    expect(big.tracestate).toBeNull();
    await g.stop();
    expect(stoppedLine(g)).toMatch(/ inserted=3 insert_missed=0 insert_not_http1=0/);
  }), 60_000);

test.if(SOCKET)("a request line longer than the 1 KiB looked at gets no header and is counted; the next request, shorter, gets its own", () =>
  withTracedA(async (a, g) => {
    collector.clear();
    const long = `long${"x".repeat(1100)}`;
    const sawLong = await get(`${a.base}/inline?id=${long}`);
    const sawShort = await get(`${a.base}/inline?id=short`); // the same connection: what was searched before is stale
    expect([sawLong.bodyOk, sawLong.id, sawShort.bodyOk]).toEqual([true, long, true]);
    expect(sawLong.traceparent).toBeNull();
    const c = await clientSpan(a.proc.pid, "short");
    expect(sawShort.traceparent).toEqual([`00-${c.traceId}-${c.spanId}-01`]);
    // the span is made all the same (its url.full is cut at the kernel's read limit)
    await collector.waitFor((all) => all.filter((s) => pidOf(s) === a.proc.pid && s.kind === SPAN_KIND.CLIENT).length === 2, "A's two calls");
    await g.stop();
    expect(stoppedLine(g)).toMatch(/ inserted=1 insert_missed=0 insert_not_http1=1/);
  }), 60_000);

test.if(SOCKET)("over IPv6 too", () =>
  withTracedA(async (a) => {
    collector.clear();
    const saw = await get(`${a.base}/inline?id=v6`);
    expect(saw.bodyOk).toBe(true);
    const c = await clientSpan(a.proc.pid, "v6");
    expect(c.attributes["server.address"]).toBe("::1");
    expect(saw.traceparent).toEqual([`00-${c.traceId}-${c.spanId}-01`]);
  }, "::1"), 60_000);

test.if(SOCKET)("the application's own traceparent is the only one on the wire", () =>
  withTracedA(async (a, g) => {
    const own = `00-${randomHex(16)}-${randomHex(8)}-01`;
    const saw = await get(`${a.base}/own?id=own&tp=${own}`);
    expect(saw.traceparent).toEqual([own]);
    expect(saw.bodyOk).toBe(true);
    await g.stop();
    expect(stoppedLine(g)).toMatch(/ not_injected=1 /);
    expect(stoppedLine(g)).not.toMatch(/ inserted=/);
  }), 60_000);

test.if(SOCKET)("a traced B with same-host linking off continues A's client span from the header alone, as a B on another host would", async () => {
  const b = await startServer(exe, ["backend", "127.0.0.1:0"]);
  const a = await startServer(exe, ["frontend", "127.0.0.1:0", b.base]);
  const g = await runGotel(["--pid", String(a.proc.pid), "--pid", String(b.proc.pid)], { ...gotelEnv(), GOTEL_SAME_HOST_LINKING: "false" });
  try {
    await g.waitForLine(new RegExp(`attached pid=${b.proc.pid} .*net/http server`), 20_000);
    expect(g.countLines(/same-host linking is on/)).toBe(0);
    collector.clear();
    for (let i = 0; i < 5; i++) expect((await get(`${a.base}/inline?id=h${i}`)).bodyOk).toBe(true);
    const spans = await collector.waitFor((all) => all.filter((s) => pidOf(s) === b.proc.pid).length >= 5 && all.length >= 15, "5 requests through B");
    const aClients = new Map(spans.filter((s) => pidOf(s) === a.proc.pid && s.kind === SPAN_KIND.CLIENT).map((s) => [s.spanId, s]));
    const bServer = spans.filter((s) => pidOf(s) === b.proc.pid && s.kind === SPAN_KIND.SERVER);
    expect([aClients.size, bServer.length, spans.length]).toEqual([5, 5, 15]);
    for (const s of bServer) expect(aClients.get(s.parentSpanId)?.traceId).toBe(s.traceId);
    expect(new Set(bServer.map((s) => s.parentSpanId)).size).toBe(5);
    await g.stop();
    expect(stoppedLine(g)).toMatch(/ linked_same_host=0 inserted=5 insert_missed=0 /);
  } finally {
    await g.stop();
    await a.proc.stop();
    await b.proc.stop();
  }
}, 60_000);

test.if(SOCKET)("a keep-alive connection opened before gotel attached carries no header and is counted as a miss; TLS carries none", async () => {
  const b = untracedReceiver();
  const tls = await startServer(exe, ["backend-tls", "127.0.0.1:0"]);
  const a = await startServer(exe, ["frontend", "127.0.0.1:0", b.url]);
  const aTls = await startServer(exe, ["frontend", "127.0.0.1:0", tls.base.replace("http://", "https://")]);
  expect((await get(`${a.base}/inline?id=before`)).traceparent).toBeNull(); // opens A's connection to the receiver
  const g = await runGotel(["--pid", String(a.proc.pid), "--pid", String(aTls.proc.pid)], gotelEnv());
  try {
    await g.waitForLine(new RegExp(`attached pid=${aTls.proc.pid} .*net/http client`), 20_000);
    await g.waitForLine(new RegExp(`attached pid=${a.proc.pid} .*net/http client`), 20_000);
    const reused = await get(`${a.base}/inline?id=reused`);
    expect(reused.traceparent).toBeNull();
    expect(reused.bodyOk).toBe(true);
    const overTls = await get(`${aTls.base}/inline?id=tls`);
    expect(overTls.traceparent).toBeNull();
    expect(overTls.bodyOk).toBe(true);
    await g.stop();
    expect(stoppedLine(g)).toMatch(/ inserted=0 insert_missed=1 insert_not_http1=[1-9]/);
  } finally {
    await g.stop();
    for (const p of [a, aTls, tls]) await p.proc.stop();
    b.stop();
  }
}, 60_000);

/** The eBPF programs and maps a process holds open (their ids, from /proc/PID/fdinfo): another gotel on the host
 * has programs of the same names on the same cgroup. */
function heldBy(pid: number): { progs: Set<number>; maps: Set<number> } {
  const held = { progs: new Set<number>(), maps: new Set<number>() };
  for (const info of fdInfos(pid)) {
    const prog = /^prog_id:\s+(\d+)/m.exec(info);
    const map = /^map_id:\s+(\d+)/m.exec(info);
    if (prog) held.progs.add(Number(prog[1]));
    if (map) held.maps.add(Number(map[1]));
  }
  return held;
}

/** The sock_ops programs attached to a cgroup, by the kernel's own listing. */
function sockOpsAttached(cgroup: string): { id: number; name: string }[] {
  const progs = bpftool<{ id: number; attach_type: string; name: string }>("cgroup", "show", cgroup);
  return progs.filter((p) => p.attach_type.endsWith("sock_ops"));
}

function bpftool<T>(...args: string[]): T[] {
  if (!Bun.which("bpftool")) throw new Error("bpftool is not installed: scripts/setup.sh installs it (Debian's bpftool package)");
  const r = Bun.spawnSync(["bpftool", "-j", ...args]);
  if (r.exitCode !== 0) throw new Error(`bpftool ${args.join(" ")}: ${r.stderr.toString()} (scripts/setup.sh installs bpftool)`);
  const out = r.stdout.toString().trim();
  return (out ? JSON.parse(out) : []) as T[];
}

/** Polls until nothing is left of ids in what list() shows; returns what is left. */
async function gone<T extends { id: number }>(ids: ReadonlySet<number>, list: () => T[]): Promise<T[]> {
  let left = list().filter((x) => ids.has(x.id));
  for (let i = 0; i < 50 && left.length; i++) {
    await Bun.sleep(100);
    left = list().filter((x) => ids.has(x.id));
  }
  return left;
}

test.if(SOCKET)("kill -9 of gotel leaves no program on the cgroup and no SOCKHASH behind", () =>
  withTracedA(async (a, g) => {
    const cgroup = /socket insertion is on.* cgroup=(\S+)/.exec(await g.waitForLine(/socket insertion is on/))![1]!;
    const held = heldBy(g.pid);
    const sockOps = sockOpsAttached(cgroup).filter((p) => p.name === "socket_traceparent_sockops" && held.progs.has(p.id));
    expect(sockOps.length).toBeGreaterThanOrEqual(1);
    expect((await get(`${a.base}/inline?id=k9`)).traceparent).toHaveLength(1);
    // the SOCKHASH the sk_msg program is attached to (the sock_ops program fills it), with A's connection in it
    const progs = bpftool<{ id: number; type: string; name: string; map_ids?: number[] }>("prog", "show");
    const skMsg = progs.filter((p) => p.type === "sk_msg" && p.name === "socket_traceparent_msg" && held.progs.has(p.id));
    const fills = progs.filter((p) => sockOps.some((o) => o.id === p.id));
    const maps = bpftool<{ id: number; type: string }>("map", "show");
    const sockhash = maps.filter((m) => m.type === "sockhash" && held.maps.has(m.id) && fills.some((p) => p.map_ids?.includes(m.id)));
    expect(skMsg.length).toBeGreaterThanOrEqual(1);
    expect(sockhash.length).toBeGreaterThanOrEqual(1);

    await g.stop("SIGKILL");
    // the kernel closes the link, then frees the programs and the map once their last reference is gone
    expect(await gone(new Set(sockOps.map((p) => p.id)), () => sockOpsAttached(cgroup))).toEqual([]);
    expect(await gone(new Set(skMsg.map((p) => p.id)), () => bpftool<{ id: number }>("prog", "show"))).toEqual([]);
    expect(await gone(new Set(sockhash.map((m) => m.id)), () => bpftool<{ id: number }>("map", "show"))).toEqual([]);
    // A's connection goes on without the header, its bytes untouched
    const after = await get(`${a.base}/inline?id=after`);
    expect(after.traceparent).toBeNull();
    expect(after.bodyOk).toBe(true);
  }), 60_000);
