/**
 * gRPC traceparent injection, checked on a kernel that forbids bpf_probe_write_user (this machine's lockdown
 * "integrity"): the gRPC client object built with GOTEL_INJECT_DRY_RUN (test/fixtures/bpf/grpc_client_dryrun.bpf.c)
 * runs the real injection programs — the same probe sites, lookups and checks of the loopy writer's HPACK
 * buffer, the same bytes — but sends each write to a ring buffer instead of the target's memory. What the write
 * does on the wire is checked where the kernel allows it (test/kernel/older-kernels.test.ts). Real Go service
 * (test/fixtures/grpc-service, grpc v1.85 and v1.40), the library API, a real kernel.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { preferredAttachMode, type UprobeLinks } from "../../src/ebpf/link.ts";
import { RingBufferReader } from "../../src/ebpf/ring-buffer.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { ProcessMemory } from "../../src/gobin/runtime-types.ts";
import { GrpcClientProbe } from "../../src/instrumentations/grpc/client-probe.ts";
import { GrpcServerProbe } from "../../src/instrumentations/grpc/server-probe.ts";
import { traceConstants } from "../../src/traces/sampling.ts";
import type { SpanRecord } from "../../src/traces/span.ts";
import { buildGoFixture, ROOT, type GoBuild } from "../support/go.ts";
import { hpackTraceparent, injectWritesReader, type InjectWrite } from "../support/inject-writes.ts";
import { requireRoot, waitFor } from "../support/kernel.ts";
import { startServer } from "../support/processes.ts";


describe.each([
  ["grpc v1.85.0", {}], ["grpc v1.40.0 (Go 1.19)", { goVersion: "1.19.13", modfile: "go.v140.mod" }],
] as [string, GoBuild][])("gRPC injection dry run, %s", (_, build) => {
  let server: GrpcServerProbe;
  let client: GrpcClientProbe;
  const links: UprobeLinks[] = [];
  let spans: RingBufferReader;
  let writes: RingBufferReader;
  const clients: SpanRecord[] = [];
  const servers: SpanRecord[] = [];
  const written: InjectWrite[] = [];
  let service: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    requireRoot();
    service = await startServer(buildGoFixture("grpc-service", build));
    const pid = service.proc.pid;
    const base = {
      mode: preferredAttachMode(), showVerifierLog: false,
      constants: traceConstants({ sampler: "parentbased_always_on", ratio: 1, tracecontext: true, injectAllowed: true }),
    };
    // the server object owns the shared maps here; the client object (its dry-run build) reuses them
    server = GrpcServerProbe.load({ ...base, eventType: 2 });
    client = GrpcClientProbe.load({
      ...base, eventType: 3, inject: true, shareWith: server.object.obj,
      bytes: new Uint8Array(readFileSync(join(ROOT, "build/test-bpf/x64/grpc_client_dryrun.bpf.o"))),
    });
    const target = GoExecutable.open(`/proc/${pid}/exe`);
    for (const p of [server, client]) {
      const prepared = p.prepare(target);
      if ("skipped" in prepared) throw new Error(prepared.skipped);
      expect(prepared.note).toBeUndefined(); // every part of the injection was found
      links.push(...prepared.attach(pid, `/proc/${pid}/exe`));
    }
    spans = new RingBufferReader(server.object.obj.map("events"), (v) => {
      const type = v.getUint32(0, true);
      if (type === client.eventType) clients.push(client.record(v, pid, (ns) => ns));
      else if (type === server.eventType) servers.push(server.record(v, pid, (ns) => ns));
    });
    writes = injectWritesReader(client.object, written);
  }, 300_000);
  afterAll(async () => {
    for (const l of links) l.destroy();
    spans?.close();
    writes?.close();
    client?.close();
    server?.close();
    await service?.proc.stop();
  });

  /** One call: its client span, its server span and the injection's writes. */
  async function call(query: string): Promise<{ span: SpanRecord; server: SpanRecord; writes: InjectWrite[] }> {
    clients.length = 0;
    servers.length = 0;
    written.length = 0;
    expect(await (await fetch(`${service.base}/call?${query}`)).text()).toBe("0 ");
    expect(await waitFor(() => spans.drain() + writes.drain() >= 0 && clients.length === 1 && servers.length === 1, 5000)).toBe(true);
    writes.drain();
    return { span: clients[0]!, server: servers[0]!, writes: [...written] };
  }

  test("the first call on a connection goes without: the loopy writer's HPACK buffer is still empty, no room", async () => {
    const { writes: w } = await call("kind=empty&parent=background");
    expect(w).toEqual([]);
  });

  test.each(["unary", "bidi&n=2"])("%s: the call's traceparent is appended to its HPACK block after the pseudo-headers, then the buffer grows by it", async (kind) => {
    const { span, writes: w } = await call(`kind=${kind}&parent=background`);
    expect(w).toHaveLength(2);
    const value = `00-${span.traceId}-${span.spanId}-01`;
    expect([...w[0]!.bytes]).toEqual(hpackTraceparent(value));
    // the second write is the bytes.Buffer's length: the block so far plus the literal
    expect(w[1]!.bytes).toHaveLength(8);
    const n = Number(new DataView(w[1]!.bytes.buffer).getBigInt64(0, true));
    const before = n - w[0]!.bytes.length;
    expect(before).toBeGreaterThan(0);
    // what the encoder had written of this block is right before the literal: the four pseudo-headers, the
    // first two from HPACK's static table (:method POST = 0x83, :scheme http = 0x86)
    const memory = new ProcessMemory(service.proc.pid);
    const got = memory.read(Number(w[0]!.addr) - before, before);
    memory.close();
    expect(got).toBeDefined();
    expect([...got!.subarray(0, 2)]).toEqual([0x83, 0x86]);
  });

  test("a call whose application put a traceparent in its metadata gets nothing", async () => {
    const { writes: w, server: s } = await call("kind=unary&parent=background&traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    expect(w).toEqual([]);
    expect(s.traceId).toBe("0af7651916cd43dd8448eb211c80319c"); // the application's own header reached the server
  });
});
