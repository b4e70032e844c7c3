/**
 * The core object, loaded at start, then every instrumentation's object, loaded once for the agent when the first
 * executable that has the code it instruments is planned (objects no target needs cost neither start-up time,
 * 10–50 ms each through the verifier, nor memory): the core owns the maps all objects share (ring buffer,
 * counters, span contexts), the instrumentations reuse them. Settings that the kernel applies (sampling,
 * propagation) are written into each object before load. The connection paths (same-host linking's tracepoint,
 * socket insertion) start the same way, before the first object on a connection's client side that needs them.
 */
import type { EnvConfig } from "../config/env.ts";
import { lockdownMode, probeWriteUserAllowed } from "../ebpf/kernel-checks.ts";
import type { AttachMode } from "../ebpf/link.ts";
import type { TargetMemory } from "../gobin/runtime-types.ts";
import { log } from "../log.ts";
import { traceConstants } from "../traces/sampling.ts";
import { BpfObject, type PendingLoad } from "../ebpf/object.ts";
import { CoreObject } from "./core-object.ts";
import { SameHostLinking, type ConnectionUses, type SameHostRole } from "../propagation/same-host.ts";
import { SocketTraceparent } from "../propagation/socket-traceparent.ts";
import { GotelError } from "../errors.ts";
import type { GoExecutable } from "../gobin/analyze.ts";
import type { SpanRecord } from "../traces/span.ts";
import type { Instrumentation, LoadContext, Losses } from "./instrumentation.ts";
import type { Prepared, SpanProbe } from "./span-probe.ts";

export interface ProbeSet {
  /** owns the shared maps: the ring buffer ("events"), the counters ("drops"), the span contexts; their BTF */
  core: CoreObject;
  probes: readonly InstrumentationProbe[];
  /** the connection tracepoint: server spans continue client spans of this host, and it files the spans socket
   * insertion puts on the wire; undefined when both are off */
  sameHost?: ConnectionTracepoint;
  /** plaintext HTTP/1 requests carry traceparent inserted into their bytes; undefined when off */
  socket?: SocketInsertion;
}

/** memory: a live target's memory and runtime type names (error.type, a database's driver, HTTP/2 writers) */
export function loadProbes(
  env: EnvConfig,
  mode: AttachMode,
  memory: (tgid: number) => TargetMemory | undefined,
  instrumentations: readonly Instrumentation[],
): ProbeSet {
  const tracecontext = env.OTEL_PROPAGATORS.includes("tracecontext");
  // asked only when wanted: the question loads a program into the kernel
  const injectAllowed = env.GOTEL_WRITE_TRACEPARENT && probeWriteUserAllowed();
  const showVerifierLog = env.OTEL_GO_AUTO_SHOW_VERIFIER_LOG;
  const core = CoreObject.load({ showVerifierLog });
  // where gotel writes traceparent, the header links every HTTP/1 request already: the tracepoint's cost on
  // every system call of the host buys nothing there, and the two writing paths never both write
  const { sameHost, socket } = tracecontext && !injectAllowed ? connectionPaths(core, env, showVerifierLog) : {};
  // settings each object gets when it loads: the connection paths may have started by then
  const constants = (): Record<string, bigint | number> => traceConstants({
    sampler: env.OTEL_TRACES_SAMPLER, ratio: env.OTEL_TRACES_SAMPLER_ARG, tracecontext, injectAllowed,
    sameHost: sameHost?.linking ?? false, socket: socket?.started ?? false,
  });
  const probes: InstrumentationProbe[] = [];
  try {
    // event types from 2 (1 is the self-test's), by place in the list: bpf/include/event.h
    const types = core.obj.btf().enumValues("gotel_event_type");
    const first = Number(types.get("GOTEL_EVENT_FIRST_INSTRUMENTATION"));
    if (!Number.isInteger(first)) throw new Error("core.bpf.o: no GOTEL_EVENT_FIRST_INSTRUMENTATION in its BTF");
    // each event type has its own loss counters in `drops`, up to GOTEL_EVENT_TYPES_MAX
    if (first + instrumentations.length > Number(types.get("GOTEL_EVENT_TYPES_MAX"))) throw new Error("bpf/include/event.h: GOTEL_EVENT_TYPES_MAX is below the number of instrumentations");
    for (const [n, i] of instrumentations.entries()) {
      const eventType = first + n;
      probes.push(new LazyProbe(i, eventType, (): LoadContext => {
        // a connection's client side is what the connection paths are for: they start before the first one's object
        if (i.sameHost?.some((r) => r !== "reads")) sameHost?.start();
        if (i.sameHost?.includes("sends")) socket?.start();
        const object = { mode, showVerifierLog, constants: constants(), shareWith: core.obj, eventType };
        return { object, env, memory, inject: tracecontext && injectAllowed, writeAllowed: injectAllowed, fileRequests: sameHost?.started ?? false, linkStreams: sameHost?.linking ?? false };
      }));
    }
  } catch (e) {
    for (const p of probes.reverse()) p.close();
    sameHost?.close();
    socket?.close();
    core.close();
    throw e;
  }
  if (!tracecontext) log.info("trace context propagation is off (OTEL_PROPAGATORS has no tracecontext)");
  else if (!env.GOTEL_WRITE_TRACEPARENT) log.info("traceparent is not written into outgoing requests (GOTEL_WRITE_TRACEPARENT=false)");
  else if (!injectAllowed) {
    log.warn("outgoing requests will not carry traceparent: the kernel forbids bpf_probe_write_user", {
      lockdown: lockdownMode() ?? "unknown (securityfs not mounted)",
      hint: `spans are still produced; ${linkedBy(sameHost, socket)}; boot with lockdown=none to allow it`,
    });
  }
  return { core, probes, ...(sameHost ? { sameHost } : {}), ...(socket ? { socket } : {}) };
}

function linkedBy(sameHost: ConnectionTracepoint | undefined, socket: SocketInsertion | undefined): string {
  const ways = [
    ...(socket ? ["plaintext HTTP/1 requests carry it inserted into their bytes"] : []),
    ...(sameHost?.uses.link ? ["services on this host are linked through their connections (HTTP/1, HTTP/2, gRPC)"] : []),
  ];
  return ways.length ? ways.join(", ") : "services are not linked";
}

/** The paths that link services without writing into processes, where they are wanted; each starts when the first
 * instrumentation that needs it loads, and where it cannot, says why once and goes on without. */
function connectionPaths(core: CoreObject, env: EnvConfig, showVerifierLog: boolean): { sameHost?: ConnectionTracepoint; socket?: SocketInsertion } {
  const uses = { link: env.GOTEL_SAME_HOST_LINKING, insert: env.GOTEL_SOCKET_TRACEPARENT };
  if (!uses.link && !uses.insert) return {};
  const sameHost = new ConnectionTracepoint(core, showVerifierLog, uses);
  return { sameHost, ...(uses.insert ? { socket: new SocketInsertion(core, sameHost, showVerifierLog) } : {}) };
}

/**
 * The connection tracepoint (same-host linking, which socket insertion needs too), started with the first
 * instrumentation on a connection's client side (a role other than "reads"): without a traced client there is no
 * client span for a server to continue, and the tracepoint would slow every system call of the host for nothing.
 * Processes tracked before it starts are tracked when it does; it is tried once.
 */
export class ConnectionTracepoint {
  private tracepoint: SameHostLinking | undefined;
  private tried = false;
  private readonly tracked = new Map<number, ReadonlySet<SameHostRole>>();

  constructor(private readonly core: CoreObject, private readonly showVerifierLog: boolean, readonly uses: ConnectionUses) {}

  get started(): boolean {
    return this.tracepoint !== undefined;
  }

  /** server spans may continue client spans through connections: wanted, and started or not tried yet (an object
   * loaded before it starts looks in maps that stay empty if it cannot) */
  get linking(): boolean {
    return this.uses.link && (this.started || !this.tried);
  }

  start(): void {
    if (this.tried) return;
    this.tried = true;
    this.tracepoint = startPath("same-host linking", () => SameHostLinking.start(this.core.obj, { showVerifierLog: this.showVerifierLog, uses: this.uses }));
    if (!this.tracepoint) return;
    if (this.uses.link) log.info("same-host linking is on: server spans continue the client spans of traced processes on this host (HTTP/1, HTTP/2, gRPC)");
    for (const [pid, roles] of this.tracked) this.tracepoint.track(pid, roles);
  }

  /** Socket insertion could not start: requests are no longer filed for it. */
  stopInserting(): void {
    this.uses.insert = false;
  }

  track(pid: number, roles: ReadonlySet<SameHostRole>): void {
    this.tracked.set(pid, roles);
    this.tracepoint?.track(pid, roles);
  }

  forget(pid: number): void {
    this.tracked.delete(pid);
    this.tracepoint?.forget(pid);
  }

  close(): void {
    this.tracepoint?.close();
    this.tracepoint = undefined;
  }
}

/**
 * Socket insertion, started for the first instrumentation whose processes send HTTP/1 requests (its object is one
 * of the slowest to verify, ~25 ms, and a program that only serves needs none of it); tried once.
 */
export class SocketInsertion {
  private socket: SocketTraceparent | undefined;
  private tried = false;

  constructor(private readonly core: CoreObject, private readonly sameHost: ConnectionTracepoint, private readonly showVerifierLog: boolean) {}

  /** it is on: started, and the connection tracepoint files requests for it */
  get started(): boolean {
    return this.socket !== undefined;
  }

  start(): void {
    if (this.tried) return;
    this.tried = true;
    this.sameHost.start();
    if (!this.sameHost.started) {
      log.info("socket insertion is off", { reason: "it needs the connection tracepoint of same-host linking, which could not start" });
      return;
    }
    this.socket = startPath("socket insertion", () => SocketTraceparent.start(this.core.obj, { showVerifierLog: this.showVerifierLog }));
    if (!this.socket) {
      this.sameHost.stopInserting();
      return;
    }
    log.info("socket insertion is on: plaintext HTTP/1 requests of traced processes carry traceparent in their bytes", { cgroup: this.socket.cgroup });
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}

function startPath<T>(name: string, start: () => T): T | undefined {
  try {
    return start();
  } catch (e) {
    log.info(`${name} is off`, { reason: e instanceof GotelError ? e.oneLine : String(e) });
    return undefined;
  }
}

/** An instrumentation's probe, loaded or not yet, and its own loss counters once it is. */
export type InstrumentationProbe = SpanProbe & { ownCounters(): readonly OwnCounter[] };

/** One of an instrumentation's own loss counters: `own` is its value in the instrumentation's enum. */
export interface OwnCounter {
  reason: string;
  own: number;
}

function ownCounters(object: string, losses: Losses, probe: SpanProbe): OwnCounter[] {
  const values = probe.enumValues?.(losses.enum) ?? new Map<string, bigint>();
  return Object.entries(losses.reasons).map(([member, reason]) => {
    const own = values.get(member);
    if (own === undefined) throw new Error(`${object}.bpf.o: no ${member} in its enum ${losses.enum}`);
    return { reason, own: Number(own) };
  });
}

/**
 * An instrumentation as a SpanProbe whose object is loaded for the first executable that needs it: planExecutable
 * asks every probe to begin (beginLoad) before it prepares the first, so their objects load side by side in
 * threads of their own (the kernel's verifier, most of a start, runs in the thread that asks), and prepare()
 * waits for its own.
 */
class LazyProbe implements SpanProbe {
  private probe: SpanProbe | undefined;
  private counters: readonly OwnCounter[] | undefined;
  /** its object loading in a thread of its own (beginLoad), until prepare() waits for it */
  private loading: (PendingLoad<SpanProbe> & { made: SpanProbe }) | undefined;
  /** why loading failed: not tried again */
  private failed: string | undefined;
  /** absentFrom's answers, asked by beginLoad and again by prepare (weak: an executable is dropped after planning) */
  private readonly absence = new WeakMap<GoExecutable, string | undefined>();

  /** context: what its object gets, asked for when it loads */
  constructor(private readonly instrumentation: Instrumentation, readonly eventType: number, private readonly context: () => LoadContext) {}

  get name(): string {
    return this.instrumentation.name;
  }

  get sameHost(): readonly SameHostRole[] | undefined {
    return this.instrumentation.sameHost;
  }

  beginLoad(exe: GoExecutable): void {
    if (this.probe || this.failed || this.loading || this.absentFrom(exe)) return;
    try {
      // asked first: the connection paths it may start load here, on this thread, before the object's thread begins
      const context = this.context();
      this.loading = BpfObject.sideBySide(() => this.instrumentation.load(context), (p) => p.close());
    } catch (e) {
      this.failed = this.loadFailed(e);
    }
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    if (this.probe) return this.probe.prepare(exe);
    if (this.failed) return { skipped: this.failed };
    const absent = this.loading ? undefined : this.absentFrom(exe);
    if (absent) return { skipped: absent, absent: true };
    this.beginLoad(exe);
    const loading = this.loading;
    if (!loading) return { skipped: this.failed ?? `${this.name}: its object was not loaded` };
    // planned while the object loads (a plan needs its BTF, there since open; whatever needs it loaded waits)
    let prepared: ReturnType<SpanProbe["prepare"]> | undefined;
    let planError: unknown;
    try {
      prepared = loading.made.prepare(exe);
    } catch (e) {
      planError = e;
    }
    this.finishLoad(loading);
    if (this.failed) return { skipped: this.failed };
    if (planError !== undefined) throw planError;
    return prepared!;
  }

  private finishLoad(loading: PendingLoad<SpanProbe>): void {
    this.loading = undefined;
    try {
      const probe = loading.finish();
      try {
        this.counters = this.instrumentation.losses && ownCounters(this.instrumentation.object, this.instrumentation.losses, probe);
      } catch (e) {
        probe.close();
        throw e;
      }
      this.probe = probe;
    } catch (e) {
      this.failed = this.loadFailed(e);
    }
  }

  /** why the executable has nothing for it, as the loaded probe would say (cheap: it stops there) */
  private absentFrom(exe: GoExecutable): string | undefined {
    if (this.absence.has(exe)) return this.absence.get(exe);
    let reason: string | undefined;
    if (!this.instrumentation.present(exe)) {
      const r = this.instrumentation.readiness(exe);
      if (r.status === "skipped") reason = r.reason;
    }
    this.absence.set(exe, reason);
    return reason;
  }

  private loadFailed(e: unknown): string {
    return `its eBPF object ${this.instrumentation.object}.bpf.o could not be loaded: ${e instanceof GotelError ? e.oneLine : String(e)}`;
  }

  forget(tgid: number): void {
    this.probe?.forget(tgid);
  }

  record(v: DataView, tgid: number, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord | undefined {
    if (!this.probe) throw new Error(`${this.name}: an event before its object was loaded`);
    return this.probe.record(v, tgid, toUnixNs);
  }

  unfinished(tgid: number, endNs: bigint, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord[] {
    return this.probe?.unfinished(tgid, endNs, toUnixNs) ?? [];
  }

  sweep(nowNs: bigint): Readonly<Record<string, number>> {
    return this.probe?.sweep?.(nowNs) ?? {};
  }

  /** Its own loss counters (Instrumentation.losses) as each reason and its member's value; none before it is loaded. */
  ownCounters(): readonly OwnCounter[] {
    return this.counters ?? [];
  }

  close(): void {
    if (this.loading) this.finishLoad(this.loading);
    this.probe?.close();
  }
}
