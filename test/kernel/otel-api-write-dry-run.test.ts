/**
 * Writing gotel's IDs into the application's own spans (OpenTelemetry API), checked on a kernel that forbids
 * bpf_probe_write_user (this machine's lockdown): the object built with GOTEL_INJECT_DRY_RUN
 * (test/fixtures/bpf/otel_api_dryrun.bpf.c) runs the real otel_api_start_inject — the same probe site and
 * lookups — but sends each write to a ring buffer. That the program then sees those IDs is checked where the
 * kernel allows writing (test/kernel/older-kernels.test.ts). Real Go service (test/fixtures/otel-api, stripped
 * and not: trace.SpanContext's offsets from DWARF, or from the table; and built with otel before v1.33.0, where
 * otel_api_legacy_started_inject writes into the global tracer's spans), the library API, a real kernel.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { preferredAttachMode, type UprobeLinks } from "../../src/ebpf/link.ts";
import { RingBufferReader } from "../../src/ebpf/ring-buffer.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { OtelApiProbe } from "../../src/instrumentations/otel-api/probe.ts";
import type { OffsetsSource } from "../../src/offsets/resolver.ts";
import { traceConstants } from "../../src/traces/sampling.ts";
import type { SpanRecord } from "../../src/traces/span.ts";
import { buildGoFixture, ROOT, type GoBuild } from "../support/go.ts";
import { injectWritesReader, type InjectWrite } from "../support/inject-writes.ts";
import { requireRoot, waitFor } from "../support/kernel.ts";
import { startServer } from "../support/processes.ts";

interface DryRun {
  service(): Awaited<ReturnType<typeof startServer>>;
  spans(): RingBufferReader;
  writes(): RingBufferReader;
  records: SpanRecord[];
  written: InjectWrite[];
  offsetsSource(): OffsetsSource | undefined;
}

/** The fixture in mode global, traced by the dry-run object alone, for the tests of the describe it is called in. */
function dryRun(build: GoBuild): DryRun {
  let probe: OtelApiProbe;
  const links: UprobeLinks[] = [];
  let spans: RingBufferReader;
  let writes: RingBufferReader;
  let service: Awaited<ReturnType<typeof startServer>>;
  let offsetsSource: OffsetsSource | undefined;
  const t: DryRun = { service: () => service, spans: () => spans, writes: () => writes, records: [], written: [], offsetsSource: () => offsetsSource };

  beforeAll(async () => {
    requireRoot();
    service = await startServer(buildGoFixture("otel-api", build), ["global", "127.0.0.1:0"]);
    const pid = service.proc.pid;
    probe = OtelApiProbe.load({
      mode: preferredAttachMode(), showVerifierLog: false, eventType: 2, enabled: true, writeIds: true, memory: () => undefined,
      constants: traceConstants({ sampler: "parentbased_always_on", ratio: 1, tracecontext: true, injectAllowed: true }),
      bytes: new Uint8Array(readFileSync(join(ROOT, "build/test-bpf/x64/otel_api_dryrun.bpf.o"))),
    });
    const prepared = probe.prepare(GoExecutable.open(`/proc/${pid}/exe`));
    if ("skipped" in prepared) throw new Error(prepared.skipped);
    offsetsSource = prepared.offsetsSource;
    links.push(...prepared.attach(pid, `/proc/${pid}/exe`));
    spans = new RingBufferReader(probe.object.obj.map("events"), (v) => {
      const r = probe.record(v, pid, (ns) => ns);
      if (r) t.records.push(r);
    });
    writes = injectWritesReader(probe.object, t.written);
  }, 300_000);
  afterAll(async () => {
    for (const l of links) l.destroy();
    if (service) probe?.forget(service.proc.pid);
    spans?.close();
    writes?.close();
    probe?.close();
    await service?.proc.stop();
  });
  return t;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe.each([
  ["symbols and DWARF", {}, "dwarf"], ["stripped", { stripped: true }, "table"],
] as [string, GoBuild, OffsetsSource][])("%s", (_, build, source) => {
  const t = dryRun(build);
  const { records, written } = t;

  test("each span's trace ID, span ID and flags go to its SpanContext, its parent's to the parent's", async () => {
    expect(t.offsetsSource()).toBe(source); // SpanContext's offsets were found
    if (build.stripped) {
      // the global tracer is switched on by its first span, which is not recorded
      await fetch(`${t.service().base}/work`);
      await Bun.sleep(300);
      t.spans().drain();
      t.writes().drain();
      records.length = 0;
      written.length = 0;
    }
    expect((await fetch(`${t.service().base}/work`)).status).toBe(200);
    expect(await waitFor(() => t.spans().drain() >= 0 && records.length === 3, 5000)).toBe(true);
    t.writes().drain();
    const byName = new Map(records.map((r) => [r.name, r]));
    const named = (n: string): SpanRecord => byName.get(n)!;
    const [work, child, background] = [named("work"), named("child"), named("background")];
    // writes come in threes: trace ID (16 bytes), span ID (8), flags (1), each at its field of one SpanContext
    expect(written.length % 3).toBe(0);
    const contexts: { at: bigint; ids: string }[] = [];
    for (let i = 0; i < written.length; i += 3) {
      const [t, s, f] = [written[i]!, written[i + 1]!, written[i + 2]!];
      expect([t.bytes.length, s.bytes.length, f.bytes.length]).toEqual([16, 8, 1]);
      expect([s.addr - t.addr, f.addr - t.addr]).toEqual([16n, 24n]); // trace.SpanContext{traceID, spanID, traceFlags}
      expect([...f.bytes]).toEqual([1]);
      contexts.push({ at: t.addr, ids: `${hex(t.bytes)}-${hex(s.bytes)}` });
    }
    // work and background are roots: their own context only; child's parent (work) first, then its own
    expect(contexts.map((c) => c.ids)).toEqual([
      `${work.traceId}-${work.spanId}`,
      `${work.traceId}-${work.spanId}`, `${child.traceId}-${child.spanId}`,
      `${background.traceId}-${background.spanId}`,
    ]);
    // the parent's and the child's go to two different variables of Start's frame
    expect(contexts[1]!.at).not.toBe(contexts[2]!.at);
  });
});


/** The global tracer of otel before v1.33.0 (global_tracer_legacy.h): its IDs go into the two boxes of each
 * nonRecordingSpan value Start returns, the span's and its context's. */
describe.each([
  ["otel v1.32.0 (embedded.Span first)", { goVersion: "1.22.12", modfile: "go.v132.mod", tags: ["otel_legacy"] }],
  ["otel v1.0.1, stripped", { goVersion: "1.21.13", modfile: "go.v101.mod", tags: ["otel_legacy"], stripped: true }],
] as [string, GoBuild][])("the global tracer before v1.33.0, %s", (_, build) => {
  const t = dryRun(build);

  test("each span's trace ID, span ID and flags go to both of its boxes", async () => {
    expect((await fetch(`${t.service().base}/work`)).status).toBe(200);
    expect(await waitFor(() => t.spans().drain() >= 0 && t.records.length === 3, 5000)).toBe(true);
    t.writes().drain();
    const byName = new Map(t.records.map((r) => [r.name, r]));
    const ids = (n: string): string => `${byName.get(n)!.traceId}-${byName.get(n)!.spanId}`;
    const [work, child, background] = [ids("work"), ids("child"), ids("background")];
    // in sixes: (trace ID, span ID, flags) into the span's box, then the same into its context's
    expect(t.written.length).toBe(18);
    const boxes: { at: bigint; ids: string }[] = [];
    for (let i = 0; i < t.written.length; i += 3) {
      const [tr, sp, fl] = [t.written[i]!, t.written[i + 1]!, t.written[i + 2]!];
      expect([tr.bytes.length, sp.bytes.length, fl.bytes.length, [...fl.bytes]]).toEqual([16, 8, 1, [1]]);
      expect([sp.addr - tr.addr, fl.addr - tr.addr]).toEqual([16n, 24n]);
      boxes.push({ at: tr.addr, ids: `${hex(tr.bytes)}-${hex(sp.bytes)}` });
    }
    expect(boxes.map((b) => b.ids)).toEqual([work, work, child, child, background, background]);
    expect(new Set(boxes.map((b) => b.at)).size).toBe(6);
  });
});
