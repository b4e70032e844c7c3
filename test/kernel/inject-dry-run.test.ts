/**
 * Traceparent injection, checked on kernels that forbid bpf_probe_write_user (lockdown "integrity", the VMs we
 * test on): the client object built with GOTEL_INJECT_DRY_RUN (test/fixtures/bpf/nethttp_client_dryrun.bpf.c)
 * runs the real injection program — same probe site, same lookups and checks of the connection's bufio.Writer,
 * same bytes — but sends each write to a ring buffer instead of the target's memory. Only the helper call
 * itself is left unverified here. Real Go services (test/fixtures/http-chain), the library API, a real kernel.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RingBufferReader } from "../../src/ebpf/ring-buffer.ts";
import { preferredAttachMode, type UprobeLinks } from "../../src/ebpf/link.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { ProcessMemory } from "../../src/gobin/runtime-types.ts";
import { NethttpClientProbe } from "../../src/instrumentations/nethttp-client/probe.ts";
import { NethttpServerProbe } from "../../src/instrumentations/nethttp-server/probe.ts";
import { traceConstants } from "../../src/traces/sampling.ts";
import type { SpanRecord } from "../../src/traces/span.ts";
import { buildGoFixture, ROOT } from "../support/go.ts";
import { hpackTraceparent, injectWritesReader, type InjectWrite } from "../support/inject-writes.ts";
import { requireRoot, waitFor } from "../support/kernel.ts";
import { startServer } from "../support/processes.ts";

/** A calling B (backend: plain HTTP/1.1; backend-h2: HTTP/2 over TLS), A traced by the server object and the
 * client object's dry-run build; requests to A, each with its spans and the writes its call of B made. */
function dryRunChain(goVersion: string, backendMode: "backend" | "backend-h2") {
  let server: NethttpServerProbe;
  let probe: NethttpClientProbe;
  const links: UprobeLinks[] = [];
  let spans: RingBufferReader;
  let writes: RingBufferReader;
  /** the client spans and A's server spans that reached the ring buffer */
  const records: SpanRecord[] = [];
  const serverRecords: SpanRecord[] = [];
  const written: InjectWrite[] = [];
  let a: Awaited<ReturnType<typeof startServer>>;
  let b: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    requireRoot();
    const exe = buildGoFixture("http-chain", { goVersion });
    b = await startServer(exe, [backendMode, "127.0.0.1:0"]);
    const bURL = backendMode === "backend-h2" ? b.base.replace("http://", "https://") : b.base;
    a = await startServer(exe, ["frontend", "127.0.0.1:0", bURL]);
    // as the agent does: the server object owns the shared maps, the client object (here its dry-run build) reuses them
    const base = {
      mode: preferredAttachMode(), showVerifierLog: false,
      constants: traceConstants({ sampler: "parentbased_always_on", ratio: 1, tracecontext: true, injectAllowed: true }),
    };
    server = NethttpServerProbe.load({ ...base, eventType: 2 });
    probe = NethttpClientProbe.load({
      ...base, eventType: 3, inject: true, shareWith: server.object.obj,
      bytes: new Uint8Array(readFileSync(join(ROOT, "build/test-bpf/x64/nethttp_client_dryrun.bpf.o"))),
    });
    const target = GoExecutable.open(`/proc/${a.proc.pid}/exe`);
    for (const p of [server, probe]) {
      const prepared = p.prepare(target);
      if ("skipped" in prepared) throw new Error(prepared.skipped);
      expect(prepared.note).toBeUndefined(); // every part of the injection was found
      links.push(...prepared.attach(a.proc.pid, `/proc/${a.proc.pid}/exe`));
    }
    spans = new RingBufferReader(server.object.obj.map("events"), (v) => {
      const type = v.getUint32(0, true);
      if (type === probe.eventType) records.push(probe.record(v, a.proc.pid, (ns) => ns));
      else if (type === server.eventType) serverRecords.push(server.record(v, a.proc.pid, (ns) => ns));
    });
    writes = injectWritesReader(probe.object, written);
  }, 300_000);
  afterAll(async () => {
    for (const l of links) l.destroy();
    spans?.close();
    writes?.close();
    probe?.close();
    server?.close();
    await a?.proc.stop();
    await b?.proc.stop();
  });

  /** One request to A: its client span, A's server span (whose child it must be) and the injection's writes. */
  async function request(path: string, headers: Record<string, string> = {}): Promise<{ span: SpanRecord; server: SpanRecord; writes: InjectWrite[]; answer: Record<string, unknown> }> {
    records.length = 0;
    serverRecords.length = 0;
    written.length = 0;
    const r = await fetch(`${a.base}${path}`, { headers });
    expect(r.status).toBe(200);
    const answer = (await r.json()) as Record<string, unknown>;
    expect(await waitFor(() => spans.drain() + writes.drain() >= 0 && records.length === 1 && serverRecords.length === 1, 5000)).toBe(true);
    writes.drain();
    const [span, server] = [records[0]!, serverRecords[0]!];
    // the client span is the child of A's server span for this request
    expect(server.attributes["url.path"]).toBe(path.split("?")[0]);
    expect(span.traceId).toBe(server.traceId);
    expect(span.parentSpanId).toBe(server.spanId);
    expect(span.spanId).not.toBe(server.spanId);
    return { span, server, writes: [...written], answer };
  }

  return { request, records, serverRecords, written, spans: () => spans, writes: () => writes, a: () => a };
}

describe.each(["1.19.13", "1.27.4"])("injection dry run, HTTP/1.1, services built with Go %s", (goVersion) => {
  const chain = dryRunChain(goVersion, "backend");
  const { request, records, serverRecords, written } = chain;

  const text = (b: Uint8Array) => new TextDecoder().decode(b);

  test("the client span's traceparent is appended to the request's header block, then the buffer's length grows by it", async () => {
    const { span, server, writes: w } = await request("/inline?id=dry");
    expect(server.parentSpanId).toBeUndefined(); // no incoming traceparent: A's server span is a root
    expect(w).toHaveLength(2);
    const line = `Traceparent: 00-${span.traceId}-${span.spanId}-01\r\n`;
    expect(text(w[0]!.bytes)).toBe(line);
    // the second write is bufio.Writer.n: 8 bytes, the old length plus the line
    expect(w[1]!.bytes).toHaveLength(8);
    const n = new DataView(w[1]!.bytes.buffer).getBigInt64(0, true);
    expect(n).toBeGreaterThanOrEqual(BigInt(line.length) + 20n); // the request line and Host came before
    expect(n).toBeLessThanOrEqual(4096n); // net/http's default write buffer
    expect(w[1]!.addr).not.toBe(w[0]!.addr);
    // where the line would go: right after what net/http had written of this request into the buffer — read
    // back from A's memory (the buffer keeps the last request's bytes while the connection idles)
    const before = Number(n) - line.length;
    const start = w[0]!.addr - BigInt(before);
    const memory = new ProcessMemory(chain.a().proc.pid);
    const got = memory.read(Number(start), before);
    memory.close();
    expect(got).toBeDefined();
    expect(text(got!)).toStartWith("POST /work?id=dry HTTP/1.1\r\nHost: 127.0.0.1:");
    expect(text(got!)).toEndWith("\r\n");
  });

  test("a tracestate from the incoming request follows the traceparent", async () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const { span, server, writes: w } = await request("/inline?id=dry-ts", { traceparent: `00-${trace}-00f067aa0ba902b7-01`, tracestate: "vendor=abc,x=y" });
    expect(span.traceId).toBe(trace);
    expect(server.parentSpanId).toBe("00f067aa0ba902b7");
    expect(text(w[0]!.bytes)).toBe(`Traceparent: 00-${trace}-${span.spanId}-01\r\nTracestate: vendor=abc,x=y\r\n`);
  });

  test("an unsampled incoming parent is propagated as unsampled, and no span is sent", async () => {
    records.length = 0;
    serverRecords.length = 0;
    written.length = 0;
    const trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    const r = await fetch(`${chain.a().base}/inline?id=dry-unsampled`, { headers: { traceparent: `00-${trace}-00f067aa0ba902b7-00` } });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(await waitFor(() => chain.writes().drain() >= 0 && written.length >= 2, 5000)).toBe(true);
    // both spans ended before A answered (the client's when B's answer came back, the server's at the start of
    // finishRequest, before the buffered answer is flushed): had either been sent, it would be here
    chain.spans().drain();
    const line = text(written[0]!.bytes);
    expect(line).toMatch(new RegExp(`^Traceparent: 00-${trace}-[0-9a-f]{16}-00\\r\\n$`));
    expect(line).not.toContain("00f067aa0ba902b7"); // the client span's own id, not the incoming parent's
    expect(records).toEqual([]);
    expect(serverRecords).toEqual([]);
  });

  test("a request whose application set traceparent itself gets nothing", async () => {
    const own = "00-6bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const { writes: w } = await request(`/own?id=dry-own&tp=${own}`);
    expect(w).toEqual([]);
  });
});

describe.each(["1.19.13", "1.27.4"])("injection dry run, HTTP/2 (net/http's own client), services built with Go %s", (goVersion) => {
  const chain = dryRunChain(goVersion, "backend-h2");
  const { request } = chain;

  /** What the three writes hold: the literal, the frame's new 24-bit length, the writer's new length. The
   * frame header itself is checked by the program (type HEADERS, END_HEADERS, the stream, the length); it cannot
   * be read back here, the buffer is reused as soon as it is flushed. */
  function frameWrites(w: InjectWrite[]): { block: number; n: bigint } {
    expect(w.map((x) => x.bytes.length)).toEqual([69, 3, 8]);
    const p = w[1]!.bytes;
    return { block: ((p[0]! << 16) | (p[1]! << 8) | p[2]!) - 69, n: new DataView(w[2]!.bytes.buffer).getBigInt64(0, true) };
  }

  test("each request's traceparent is appended to its HEADERS frame in the connection's write buffer: the block, the frame's length, then the buffer's", async () => {
    const frames: bigint[] = [];
    for (const id of ["h2-first", "h2-second", "h2-third"]) { // the first on a new connection, then on the same one
      const { span, writes: w, answer } = await request(`/inline?id=${id}`);
      expect(answer).toMatchObject({ proto: "HTTP/2.0", bodyOk: true, id });
      expect([...w[0]!.bytes]).toEqual(hpackTraceparent(`00-${span.traceId}-${span.spanId}-01`));
      const { block, n } = frameWrites(w);
      // the pseudo-headers, X-Body-Checksum, Content-Length, Accept-Encoding and User-Agent came before
      expect(block).toBeGreaterThan(10);
      // the literal goes right after the frame's header (9 bytes) and block
      expect(w[0]!.addr).toBe(w[1]!.addr + 9n + BigInt(block));
      // which ended the connection's bufio.Writer (4 KB): its length grows by the literal
      expect(n).toBeLessThanOrEqual(4096n);
      expect(n).toBeGreaterThanOrEqual(BigInt(9 + block + 69));
      frames.push(w[1]!.addr - (n - BigInt(9 + block + 69)));
    }
    // one connection: its one write buffer, whose start each frame's position gives
    expect(new Set(frames).size).toBe(1);
  });

  test("an unsampled incoming parent is propagated as unsampled", async () => {
    const trace = "7bf92f3577b34da6a3ce929d0e0e4736";
    chain.records.length = 0;
    chain.written.length = 0;
    const r = await fetch(`${chain.a().base}/inline?id=h2-unsampled`, { headers: { traceparent: `00-${trace}-00f067aa0ba902b7-00` } });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    expect(await waitFor(() => chain.writes().drain() >= 0 && chain.written.length >= 3, 5000)).toBe(true);
    const value = Buffer.from(chain.written[0]!.bytes.subarray(14)).toString();
    expect(value).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-00$`));
    expect(value).not.toContain("00f067aa0ba902b7");
  });

  test("a request whose application set traceparent itself gets nothing", async () => {
    const own = "00-8bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const { writes: w, answer } = await request(`/own?id=h2-own&tp=${own}`);
    expect(w).toEqual([]);
    expect(answer).toMatchObject({ proto: "HTTP/2.0", traceparent: [own] });
  });
});
