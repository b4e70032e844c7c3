/**
 * The wiring of the stages (DESIGN.md, "The path of one request"): discovery finds target processes; each one
 * is analysed and planned; the probes attach to it in the one loaded object set; the ring buffer's events
 * become spans with the process's resource; the SDK's BatchSpanProcessor exports them.
 */
import { existsSync } from "node:fs";
import type { Resource } from "@opentelemetry/resources";
import type { EnvConfig } from "./config/env.ts";
import { ProcessWatcher, type TargetSpec } from "./discovery/watcher.ts";
import { LinkReaper } from "./ebpf/link-reaper.ts";
import { requirePrivileges } from "./ebpf/kernel-checks.ts";
import { preferredAttachMode, type UprobeLinks } from "./ebpf/link.ts";
import { monotonicNs } from "./ebpf/libc.ts";
import { uintBytes, type BpfMap } from "./ebpf/map.ts";
import { RingBufferReader } from "./ebpf/ring-buffer.ts";
import { StructView } from "./ebpf/struct-view.ts";
import { GotelError } from "./errors.ts";
import { collectGarbage } from "./garbage.ts";
import { ExecutablePages } from "./executable-pages.ts";
import { ExportPipeline, type DescribedExporter, type ExportCounts } from "./export/pipeline.ts";
import { RateLimitedWarning } from "./export/warnings.ts";
import { isGoExecutable } from "./gobin/analyze.ts";
import { GoTypeNames, processLoadBias, ProcessMemory, type TargetMemory } from "./gobin/runtime-types.ts";
import { log, type Fields } from "./log.ts";
import type { CoreObject } from "./probes/core-object.ts";
import { loadProbes, type ConnectionTracepoint, type InstrumentationProbe, type ProbeSet, type SocketInsertion } from "./probes/probe-set.ts";
import { INSTRUMENTATIONS, moduleList, notInstrumented } from "./instrumentations/index.ts";
import { PlanCache, openExecutable, planExecutable, type ExecutablePlans, type OnPrepared } from "./probes/executable-plans.ts";
import { UnreadableSpanError, type Prepared, type SpanProbe } from "./probes/span-probe.ts";
import { KernelClock } from "./traces/clock.ts";
import { processResource } from "./traces/resource.ts";
import { toReadableSpan, type SpanRecord } from "./traces/span.ts";

export interface AgentOptions {
  env: EnvConfig;
  /** processes to find and follow; none for `exec`, which attaches to its one child itself */
  targets?: TargetSpec;
  /** each gets its own queue (ExportPipeline); `delayMs` overrides OTEL_BSP_SCHEDULE_DELAY (a terminal wants spans soon) */
  exporters: { exporter: DescribedExporter; delayMs?: number }[];
  /** called for every span before export (trace sessions count and stop on it) */
  onSpan?: (span: SpanRecord) => void;
}

interface Target {
  exePath: string;
  resource: Resource;
  links: UprobeLinks[];
  probes: SpanProbe[];
  /** for naming Go types seen by probes (error.type, a DB's driver): runtime.types and the lowest PT_LOAD, link-time */
  typesBase?: number;
  lowestLoad: number;
  memory?: TargetMemory;
  /** the open /proc/PID/mem behind memory */
  memoryFile?: ProcessMemory;
}

/** Spans lost before any exporter's queue: by reason, in the words of the `stopped` line; the core's reasons
 * (CORE_DROP_REASONS) first, then the instrumentations' own (Instrumentation.losses). */
export type Drops = Readonly<Record<string, number>>;

/** the probes' in-flight maps are swept every SWEEP_TICKS seconds */
const SWEEP_TICKS = 5;

/** The reasons for losing spans that are no instrumentation's own. */
export const CORE_DROP_REASONS = {
  /** the kernel's ring buffer had no room for the span */
  ringBufferFull: "kernel ring buffer full",
  /** a map of calls in flight was full when the call started */
  inFlightFull: "in-flight map full",
  /** one read of the ring buffer had more than the reader's buffer holds */
  readBatchFull: "ring buffer read batch full",
  /** the span's process was no longer a target when its event was read */
  targetGone: "process no longer traced",
} as const;

/**
 * Where every span went. `spans` counts each span once, when it is decided (ended in the kernel, or dropped or
 * unsampled there); for each exporter, spans - unsampled - dropped = exported + queueFull + exportFailed.
 */
export interface AgentStats {
  spans: number;
  /** events read from the ring buffer */
  events: number;
  /** lost before reaching the exporters, by reason */
  drops: Drops;
  /** spans not sent because their trace was not sampled */
  unsampled: number;
  /** per exporter: exported, dropped at its queue, failed (with reasons) */
  exports: ExportCounts[];
  /** traceparent headers written into outgoing requests, and requests left alone (app's own header, no room) */
  injected: bigint;
  notInjected: bigint;
  /** server spans that continued a client span of this host through their connection (same-host linking) */
  linkedSameHost: bigint;
  /** HTTP/2 streams without context on connections accepted before gotel attached: not linked on this host */
  linkUnnamedConnection: bigint;
  /** socket insertion: header lines inserted into requests' bytes; requests that should have had them and did
   * not (a connection opened before gotel attached, the kernel refused); sends that were no HTTP/1 request (TLS) */
  inserted: bigint;
  insertMissed: bigint;
  insertNotHttp1: bigint;
  targets: number;
}

export class Agent {
  private readonly targets = new Map<number, Target>();
  private readonly pipelines: ExportPipeline[];
  private readonly clock = new KernelClock();
  private readonly reader: RingBufferReader;
  private readonly watcher: ProcessWatcher | undefined;
  /** spans handed to the exporters (events of a process no longer traced are counted in targetGone) */
  private spans = 0;
  private targetGone = 0;
  private stopped = false;
  private finalStats: AgentStats | undefined;
  private readonly reaper = new LinkReaper();
  private readonly kernelDropWarning = new RateLimitedWarning("spans dropped before reaching gotel's export queue", {
    hint: "see the final 'stopped' line for totals",
  });
  private lastDrops: Drops = {};
  /** the instrumentations' losses found in user space (spans they could not read, calls their sweeps gave up on) */
  private readonly userLosses = new Map<string, number>();
  private lossTimer: ReturnType<typeof setInterval> | undefined;

  private readonly byEventType: Map<number, SpanProbe>;
  private readonly counters: BpfMap;
  private readonly counterIndex: ReadonlyMap<string, bigint>;
  /** where the instrumentations' own counters start in `drops`, and how many each event type has */
  private readonly ownBase: number;
  private readonly ownPerType: number;
  private readonly headerType: number;
  private readonly headerTgid: number;
  private readonly toUnixNs = (ns: bigint): bigint => this.clock.toUnixNs(ns);

  private readonly probes: readonly InstrumentationProbe[];
  private readonly core: CoreObject;
  private readonly sameHost: ConnectionTracepoint | undefined;
  private readonly socket: SocketInsertion | undefined;
  private readonly plans = new PlanCache((file, onPrepared) => this.planFile(file, onPrepared));
  /** set while an executable's analysis is garbage not yet collected */
  private analysisGarbage: ReturnType<typeof setTimeout> | undefined;
  /** the executable's pages that starting and attaching read, handed back when attaching has gone quiet */
  private readonly ownPages = new ExecutablePages();

  private constructor(private readonly opts: AgentOptions, set: ProbeSet) {
    this.probes = set.probes;
    this.core = set.core;
    this.sameHost = set.sameHost;
    this.socket = set.socket;
    const env = opts.env;
    this.pipelines = opts.exporters.map(({ exporter, delayMs }) => new ExportPipeline(exporter, {
      scheduledDelayMillis: delayMs ?? env.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMillis: env.OTEL_BSP_EXPORT_TIMEOUT,
      maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
      maxExportBatchSize: env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    }));
    const obj = set.core.obj;
    this.reader = new RingBufferReader(obj.map("events"), (v) => this.onEvent(v));
    this.counters = obj.map("drops");
    this.counterIndex = obj.btf().enumValues("gotel_counter");
    this.ownBase = Number(this.counterIndex.get("GOTEL_COUNTER_MAX"));
    this.ownPerType = Number(this.counterIndex.get("GOTEL_COUNTER_OWN_PER_TYPE"));
    this.byEventType = new Map(set.probes.map((p) => [p.eventType, p]));
    const header = new StructView(obj.btf().structLayout("gotel_event_header"));
    this.headerType = header.offset("type", 4);
    this.headerTgid = header.offset("tgid", 4);
    this.watcher = opts.targets && new ProcessWatcher(opts.targets, {
      onStart: (p) => void this.attach(p.pid, p.exePath),
      onExit: (p) => this.detach(p.pid, "exited", true),
    }, { accept: (p) => isGoExecutable(`/proc/${p.pid}/exe`) });
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    requirePrivileges();
    const mode = preferredAttachMode(opts.env.GOTEL_UPROBE_ATTACH);
    let agent: Agent | undefined;
    const set = loadProbes(opts.env, mode, (tgid) => agent?.memory(tgid), INSTRUMENTATIONS);
    agent = new Agent(opts, set);
    agent.reader.start();
    let ticks = 0;
    agent.lossTimer = setInterval(() => {
      if (++ticks % SWEEP_TICKS === 0) agent?.sweep();
      agent?.warnAboutDrops();
    }, 1000);
    try {
      await agent.watcher?.start();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    log.info("gotel is running", { attach: mode, targets: agent.targets.size });
    agent.ownPages.attaching();
    return agent;
  }

  get stats(): AgentStats {
    return this.finalStats ?? this.currentStats();
  }

  private kernelCount(name: string): number {
    const i = this.counterIndex.get(`GOTEL_COUNTER_${name}`);
    return i === undefined ? 0 : Number(this.counters.sumPerCpuU64(uintBytes(i, 4)));
  }

  private drops(): Drops {
    const drops: Record<string, number> = {
      [CORE_DROP_REASONS.ringBufferFull]: this.kernelCount("RINGBUF_FULL"),
      [CORE_DROP_REASONS.inFlightFull]: this.kernelCount("INFLIGHT_LOST"),
      [CORE_DROP_REASONS.readBatchFull]: Number(this.reader.droppedInBatch),
      [CORE_DROP_REASONS.targetGone]: this.targetGone,
    };
    const add = (reason: string, n: number): void => void (drops[reason] = (drops[reason] ?? 0) + n);
    for (const p of this.probes) {
      for (const { reason, own } of p.ownCounters()) add(reason, this.ownCount(p.eventType, own));
    }
    for (const [reason, n] of this.userLosses) add(reason, n);
    return drops;
  }

  /** An instrumentation's own counter (bpf/include/event.h: gotel_count_own). */
  private ownCount(eventType: number, own: number): number {
    const i = this.ownBase + eventType * this.ownPerType + own;
    return Number(this.counters.sumPerCpuU64(uintBytes(i, 4)));
  }

  private currentStats(): AgentStats {
    const drops = this.drops();
    const unsampled = this.kernelCount("UNSAMPLED");
    return {
      spans: this.spans + Object.values(drops).reduce((a, b) => a + b, 0) + unsampled,
      events: this.reader.delivered,
      drops,
      unsampled,
      exports: this.pipelines.map((p) => p.stats),
      injected: BigInt(this.kernelCount("INJECTED")),
      notInjected: BigInt(this.kernelCount("INJECT_PRESENT") + this.kernelCount("INJECT_NO_ROOM")),
      linkedSameHost: BigInt(this.kernelCount("LINKED_SAME_HOST")),
      linkUnnamedConnection: BigInt(this.kernelCount("LINK_UNNAMED_CONNECTION")),
      inserted: BigInt(this.kernelCount("SOCKET_INSERTED")),
      insertMissed: BigInt(this.kernelCount("SOCKET_OLD_CONNECTION") + this.kernelCount("SOCKET_FAILED")),
      insertNotHttp1: BigInt(this.kernelCount("SOCKET_NOT_HTTP1")),
      targets: this.targets.size,
    };
  }

  /** Lets the probes drop what can no longer end (their own deadlines), counted as ended unseen. */
  private sweep(): void {
    const now = monotonicNs(); // bpf_ktime_get_ns's clock
    for (const p of this.probes) this.addUserLosses(p.sweep?.(now) ?? {});
  }

  /** Losses before the exporters' queues (theirs warn by themselves), at most one line per 10 s. */
  private warnAboutDrops(): void {
    const now = this.drops();
    for (const [reason, n] of Object.entries(now)) this.kernelDropWarning.add(n - (this.lastDrops[reason] ?? 0), reason);
    this.lastDrops = now;
  }

  private addUserLosses(losses: Readonly<Record<string, number>>): void {
    for (const [reason, n] of Object.entries(losses)) this.userLosses.set(reason, (this.userLosses.get(reason) ?? 0) + n);
  }


  /**
   * Instruments one process. `file` is where its executable is read and probed: /proc/PID/exe (which works
   * even when the file was replaced on disk), or the program's own path for a process that has not exec-ed it yet.
   */
  attach(pid: number, exePath: string, file = `/proc/${pid}/exe`): boolean {
    if (this.stopped || this.targets.has(pid)) return false;
    let plans: ExecutablePlans;
    // a probe's links are made as soon as its plan is: the first link of a start waits for the kernel (an RCU grace
    // period, ~10 ms) while the objects still loading go on in their threads
    const attaching = new Map<Prepared, { probe: SpanProbe; links?: UprobeLinks[]; error?: unknown }>();
    const attachNow = (probe: SpanProbe, prepared: Prepared) => {
      try {
        return { probe, links: prepared.attach(pid, file) };
      } catch (error) {
        return { probe, error };
      }
    };
    try {
      plans = this.plans.get(file, (probe, prepared) => attaching.set(prepared, attachNow(probe, prepared))).plans;
    } catch (e) {
      for (const a of attaching.values()) {
        for (const l of a.links ?? []) l.destroy();
        if (a.links) a.probe.forget(pid);
      }
      log.warn("not tracing a process: its executable cannot be read as a Go program", {
        pid, exe: exePath, reason: e instanceof GotelError ? e.message : String(e),
      });
      return false;
    }
    for (const { probe, reason, absent } of plans.skipped) {
      const fields = { pid, exe: exePath, reason };
      if (absent) log.info(`${probe.name} instrumentation skipped`, fields);
      else log.warn(`${probe.name} instrumentation skipped`, fields);
    }
    const { ready, unseen } = plans;
    if (ready.length === 0) {
      log.warn(unseen ? "not tracing a process: gotel does not instrument its libraries yet" : "not tracing a process: no instrumentation applies to it", {
        pid, exe: exePath, ...(unseen ? { modules: unseen } : {}),
      });
      return false;
    }
    if (unseen) log.info("not instrumented", { pid, exe: exePath, modules: unseen });
    const links: UprobeLinks[] = [];
    const attached: SpanProbe[] = [];
    const logged: Fields[] = [];
    for (const { probe, prepared } of ready) {
      const made = attaching.get(prepared) ?? attachNow(probe, prepared);
      try {
        if (!made.links) throw made.error;
        links.push(...made.links);
        attached.push(probe);
        logged.push({
          pid, exe: exePath, go: plans.goVersion, instrumentation: probe.name, sites: prepared.sites, offsets: prepared.offsetsSource,
          ...(prepared.offsetsNote ? { offsetsNote: prepared.offsetsNote } : {}),
          ...(prepared.note ? { note: prepared.note } : {}),
        });
      } catch (e) {
        log.warn("attaching failed", { pid, exe: exePath, instrumentation: probe.name, reason: e instanceof GotelError ? e.oneLine : String(e) });
      }
    }
    if (attached.length === 0) return false;
    const resource = processResource(
      { pid, executablePath: exePath, goVersion: plans.buildGoVersion },
      { serviceName: this.opts.env.OTEL_SERVICE_NAME, attributes: this.opts.env.OTEL_RESOURCE_ATTRIBUTES },
    );
    this.targets.set(pid, { exePath, resource, links, probes: attached, typesBase: plans.typesBase, lowestLoad: plans.lowestLoad });
    const roles = new Set(attached.flatMap((p) => p.sameHost ?? []));
    if (roles.size) this.sameHost?.track(pid, roles);
    // said once the process is wholly attached: whoever waits for one of these lines finds every probe in place
    for (const fields of logged) log.info("attached", fields);
    return true;
  }

  /** Reads an executable once per file identity: the probes' plans, then the executable is let go. */
  private planFile(file: string, onPrepared?: OnPrepared): ExecutablePlans {
    // the last executable's function table and DWARF (~100 MB for a big service) are garbage: let them go before
    // this one is read, not whenever the heap next fills
    if (this.analysisGarbage) this.collectAnalysis();
    const exe = openExecutable(file);
    try {
      const plans = planExecutable(exe, this.probes, onPrepared);
      const unseen = moduleList(notInstrumented(exe, undefined, (name) => plans.ready.some((r) => r.probe.name === name)));
      return unseen ? { ...plans, unseen } : plans;
    } finally {
      exe.close();
      // collected once the attaching in progress is done (a full collection is 10-20 ms of a start), or before the
      // next executable is read, whichever comes first
      this.analysisGarbage = setTimeout(() => this.collectAnalysis(), 0);
      this.ownPages.attaching();
    }
  }

  private collectAnalysis(): void {
    clearTimeout(this.analysisGarbage);
    this.analysisGarbage = undefined;
    collectGarbage("an executable's analysis");
  }

  /** A target's memory, and the names of Go types at its runtime addresses (cached), when it can be read. */
  memory(pid: number): TargetMemory | undefined {
    const t = this.targets.get(pid);
    if (!t) return undefined;
    if (t.memory === undefined) {
      const bias = processLoadBias(pid, t.lowestLoad);
      t.memoryFile = new ProcessMemory(pid);
      const read = t.memoryFile.read;
      const names = bias === undefined || t.typesBase === undefined ? undefined : new GoTypeNames(t.typesBase + bias, read);
      t.memory = { read, typeName: (addr) => names?.name(addr) };
    }
    return t.memory;
  }

  /**
   * exited: the process is gone; the calls it still had in flight become spans (see unfinishedSpan). Its probes
   * cannot fire any more, so their links are handed to the reaper, which destroys them in the background: the
   * kernel takes ~40 ms per link to detach, and many processes exiting at once must not stall the others' spans.
   * keepLinks: the links are the caller's to release (stop releases them after the last export); with the
   * process forgotten in the maps its probes start no span and end none in flight.
   */
  private detach(pid: number, why: string, exited = false, keepLinks?: UprobeLinks[]): Promise<void> {
    const t = this.targets.get(pid);
    if (!t) return Promise.resolve();
    // spans already in the ring buffer still belong to this process
    this.reader.drain();
    const unfinished = exited ? this.reportUnfinished(pid, t) : 0;
    // an exec keeps the pid: a new image of the same file would still fire the old links, so those go now
    let released = Promise.resolve();
    if (keepLinks) keepLinks.push(...t.links);
    else if (exited && !existsSync(`/proc/${pid}`)) this.reaper.add(t.links);
    else released = Promise.all(t.links.map((l) => l.release())).then(() => undefined);
    for (const p of t.probes) p.forget(pid);
    this.sameHost?.forget(pid);
    this.core.forget(pid);
    t.memoryFile?.close();
    this.targets.delete(pid);
    log.info("detached", { pid, exe: t.exePath, reason: why, ...(unfinished ? { unfinished } : {}) });
    return released;
  }

  /** Spans of the calls the exited process had in flight, ended now: gotel sees an exit within a scan or two. */
  private reportUnfinished(pid: number, t: Target): number {
    const now = monotonicNs();
    let n = 0;
    for (const p of t.probes) {
      for (const record of p.unfinished(pid, now, this.toUnixNs)) {
        this.emit(record, t);
        n++;
      }
    }
    return n;
  }

  private onEvent(v: DataView): void {
    const probe = this.byEventType.get(v.getUint32(this.headerType, true));
    const tgid = v.getUint32(this.headerTgid, true);
    const target = this.targets.get(tgid);
    if (!probe) return;
    if (!target) {
      this.targetGone++;
      return;
    }
    let record: SpanRecord | undefined;
    try {
      record = probe.record(v, tgid, this.toUnixNs);
    } catch (e) {
      if (!(e instanceof UnreadableSpanError)) throw e;
      this.addUserLosses({ [e.reason]: 1 });
      log.debug("a span could not be read", { pid: tgid, instrumentation: probe.name, error: e.message });
      return;
    }
    if (record) this.emit(record, target);
  }

  private emit(record: SpanRecord, target: Target): void {
    this.spans++;
    this.opts.onSpan?.(record);
    const span = toReadableSpan(record, target.resource);
    for (const p of this.pipelines) p.add(span);
  }

  /** Detaches everything, exports every span still queued, and frees the kernel objects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.stop();
    clearInterval(this.lossTimer);
    clearTimeout(this.analysisGarbage);
    this.ownPages.stop();
    // every target forgotten in the kernel's maps: from here no span starts and none in flight ends
    const links: UprobeLinks[] = [];
    for (const pid of [...this.targets.keys()]) void this.detach(pid, "gotel is stopping", false, links);
    this.reader.drain();
    this.kernelDropWarning.flush();
    await Promise.all(this.pipelines.map((p) => p.shutdown()));
    // then the links (~40 ms of the kernel's each, 0.15-0.25 s per process): after the spans are out, so that
    // a stop with many targets does not hold the last export back (a container's grace period is short)
    await Promise.all(links.map((l) => l.release()));
    await this.reaper.finish();
    // an event that slipped in between is of no target any more: counted as such, not lost in silence
    this.reader.close();
    this.finalStats = { ...this.currentStats(), exports: this.pipelines.map((p) => p.stats) };
    for (const p of this.probes) p.close();
    this.sameHost?.close();
    this.socket?.close();
    // the core owns the shared maps: closed last
    this.core.close();
  }
}
