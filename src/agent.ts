/**
 * The wiring of the stages (DESIGN.md, "The path of one request"): discovery finds target processes; each one
 * is analysed and planned; the probes attach to it in the one loaded object set; the ring buffer's events
 * become spans with the process's resource; the SDK's BatchSpanProcessor exports them.
 */
import { BatchSpanProcessor, type SpanExporter, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { Resource } from "@opentelemetry/resources";
import type { EnvConfig } from "./config/env.ts";
import { ProcessWatcher, type TargetSpec } from "./discovery/watcher.ts";
import { preferredAttachMode, type UprobeLinks } from "./ebpf/link.ts";
import { uintBytes } from "./ebpf/map.ts";
import { RingBufferReader } from "./ebpf/ring-buffer.ts";
import { GotelError } from "./errors.ts";
import { GoExecutable, isGoExecutable } from "./gobin/analyze.ts";
import { log } from "./log.ts";
import * as nethttpServer from "./probes/nethttp-server.ts";
import { NethttpServerProbe } from "./probes/nethttp-server-probe.ts";
import { KernelClock } from "./traces/clock.ts";
import { processResource } from "./traces/resource.ts";
import { toReadableSpan, type SpanRecord } from "./traces/span.ts";

export interface AgentOptions {
  env: EnvConfig;
  /** processes to find and follow; none for `exec`, which attaches to its one child itself */
  targets?: TargetSpec;
  /** each gets its own BatchSpanProcessor; `delayMs` overrides OTEL_BSP_SCHEDULE_DELAY (a terminal wants spans soon) */
  exporters: { exporter: SpanExporter; delayMs?: number }[];
  /** called for every span before export (trace sessions count and stop on it) */
  onSpan?: (span: SpanRecord) => void;
}

interface Target {
  exePath: string;
  resource: Resource;
  links: UprobeLinks[];
}

export interface AgentStats {
  spans: number;
  /** events the kernel could not queue (ring buffer full) plus records lost in user space */
  dropped: bigint;
  targets: number;
}

export class Agent {
  private readonly targets = new Map<number, Target>();
  private readonly processors: SpanProcessor[];
  private readonly clock = new KernelClock();
  private readonly reader: RingBufferReader;
  private readonly watcher: ProcessWatcher | undefined;
  private spans = 0;
  private stopped = false;
  private finalStats: AgentStats | undefined;

  private constructor(private readonly opts: AgentOptions, private readonly probe: NethttpServerProbe) {
    const env = opts.env;
    this.processors = opts.exporters.map(({ exporter, delayMs }) => new BatchSpanProcessor(exporter, {
      scheduledDelayMillis: delayMs ?? env.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMillis: env.OTEL_BSP_EXPORT_TIMEOUT,
      maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
      maxExportBatchSize: Math.min(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, env.OTEL_BSP_MAX_QUEUE_SIZE),
    }));
    this.reader = new RingBufferReader(probe.obj.map("events"), (v) => this.onEvent(v));
    this.watcher = opts.targets && new ProcessWatcher(opts.targets, {
      onStart: (p) => void this.attach(p.pid, p.exePath),
      onExit: (p) => this.detach(p.pid, "exited"),
    }, { accept: (p) => isGoExecutable(`/proc/${p.pid}/exe`) });
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const mode = preferredAttachMode();
    const probe = NethttpServerProbe.load(mode, opts.env.OTEL_GO_AUTO_SHOW_VERIFIER_LOG);
    const agent = new Agent(opts, probe);
    agent.reader.start();
    try {
      await agent.watcher?.start();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    log.info("gotel is running", { attach: mode, targets: agent.targets.size });
    return agent;
  }

  get stats(): AgentStats {
    if (this.finalStats) return this.finalStats;
    return {
      spans: this.spans,
      dropped: this.probe.obj.map("drops").sumPerCpuU64(uintBytes(0, 4)) + this.reader.droppedInBatch,
      targets: this.targets.size,
    };
  }

  /**
   * Instruments one process. `file` is where its executable is read and probed: /proc/PID/exe (which works
   * even when the file was replaced on disk), or the program's own path for a process that has not exec-ed it yet.
   */
  attach(pid: number, exePath: string, file = `/proc/${pid}/exe`): boolean {
    if (this.stopped || this.targets.has(pid)) return false;
    const p = { pid, exePath };
    const path = file;
    let exe: GoExecutable;
    try {
      exe = GoExecutable.open(path);
    } catch (e) {
      log.warn("not tracing a process: its executable cannot be read as a Go program", {
        pid: p.pid, exe: p.exePath, reason: e instanceof GotelError ? e.message : String(e),
      });
      return false;
    }
    const planned = nethttpServer.plan(exe);
    if ("skipped" in planned) {
      log.warn("net/http server instrumentation skipped", { pid: p.pid, exe: p.exePath, reason: planned.skipped });
      return false;
    }
    try {
      const links = this.probe.attach(p.pid, path, planned.plan);
      const resource = processResource(
        { pid: p.pid, executablePath: p.exePath, goVersion: exe.buildInfo.goVersion },
        { serviceName: this.opts.env.OTEL_SERVICE_NAME, attributes: this.opts.env.OTEL_RESOURCE_ATTRIBUTES },
      );
      this.targets.set(p.pid, { exePath, resource, links });
      log.info("attached", {
        pid: p.pid, exe: p.exePath, go: exe.goVersion, instrumentation: "net/http server",
        sites: 1 + planned.plan.sites.returns.length, offsets: planned.plan.offsetsSource,
      });
      return true;
    } catch (e) {
      log.warn("attaching failed", { pid: p.pid, exe: p.exePath, reason: e instanceof GotelError ? e.oneLine : String(e) });
      return false;
    }
  }

  private detach(pid: number, why: string): void {
    const t = this.targets.get(pid);
    if (!t) return;
    // spans already in the ring buffer still belong to this process
    this.reader.drain();
    for (const l of t.links) l.destroy();
    this.probe.forget(pid);
    this.targets.delete(pid);
    log.info("detached", { pid, exe: t.exePath, reason: why });
  }

  private onEvent(v: DataView): void {
    if (this.probe.header.type(v) !== this.probe.eventType) return;
    const tgid = this.probe.header.tgid(v);
    const target = this.targets.get(tgid);
    if (!target) return;
    const e = this.probe.decode(v);
    const record = nethttpServer.toSpanRecord({ ...e, startNs: this.clock.toUnixNs(e.startNs), endNs: this.clock.toUnixNs(e.endNs) });
    this.spans++;
    this.opts.onSpan?.(record);
    const span = toReadableSpan(record, target.resource);
    for (const p of this.processors) p.onEnd(span);
  }

  /** Detaches everything, exports every span still queued, and frees the kernel objects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.stop();
    for (const pid of [...this.targets.keys()]) this.detach(pid, "gotel is stopping");
    this.reader.close();
    this.finalStats = this.stats;
    await Promise.all(this.processors.map((p) => p.shutdown()));
    this.probe.close();
  }
}
