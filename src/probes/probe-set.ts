/**
 * The core object, loaded at start, then every instrumentation's object, loaded once for the agent when the first
 * executable that has the code it instruments is planned (objects no target needs cost neither start-up time,
 * 10–50 ms each through the verifier, nor memory): the core owns the maps all objects share (ring buffer,
 * counters, span contexts), the instrumentations reuse them. Settings that the kernel applies (sampling,
 * propagation) are written into each object before load.
 */
import { existsSync } from "node:fs";
import type { EnvConfig } from "../config/env.ts";
import { lockdownMode, probeWriteUserAllowed } from "../ebpf/kernel-checks.ts";
import type { AttachMode } from "../ebpf/link.ts";
import type { TargetMemory } from "../gobin/runtime-types.ts";
import { log } from "../log.ts";
import { traceConstants } from "../traces/sampling.ts";
import { CoreObject } from "./core-object.ts";
import { BpfObject, type PendingLoad } from "../ebpf/object.ts";
import { SameHostLinking, type ConnectionUses, type SameHostRole } from "../propagation/same-host.ts";
import { cgroup2Root, SocketTraceparent } from "../propagation/socket-traceparent.ts";
import { GotelError } from "../errors.ts";
import type { GoExecutable } from "../gobin/analyze.ts";
import type { SpanRecord } from "../traces/span.ts";
import type { Instrumentation, LoadContext } from "./instrumentation.ts";
import type { Prepared, SpanProbe } from "./span-probe.ts";

export interface ProbeSet {
  /** owns the shared maps: the ring buffer ("events"), the counters ("drops"), the span contexts; their BTF */
  core: CoreObject;
  probes: readonly SpanProbe[];
  /**
   * The paths that link services without writing into processes. Socket insertion's object loads in a thread of
   * its own while the instrumentations' objects load (the verifier is most of a start); this waits for it, once.
   */
  connectionPaths(): ConnectionPaths;
}

export interface ConnectionPaths {
  /** the connection tracepoint: server spans continue client spans of this host, and it files the spans socket
   * insertion puts on the wire; undefined when both are off or the kernel cannot */
  sameHost?: SameHostLinking;
  /** plaintext HTTP/1 requests carry traceparent inserted into their bytes; undefined when off or the kernel cannot */
  socket?: SocketTraceparent;
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
  const wanted = tracecontext && !injectAllowed ? wantedPaths(env) : { link: false, insert: false };
  const pending = beginConnectionPaths(core, wanted, showVerifierLog);
  // the instrumentations' objects are told what is wanted, not what started, as they load meanwhile: a path that
  // then fails to load (rare: the host looked able) leaves them filing spans nobody reads, a cost and no harm
  const constants = traceConstants({
    sampler: env.OTEL_TRACES_SAMPLER, ratio: env.OTEL_TRACES_SAMPLER_ARG, tracecontext, injectAllowed,
    sameHost: wanted.link, socket: wanted.insert,
  });
  const base = { mode, showVerifierLog, constants };
  const probes: SpanProbe[] = [];
  let paths: ConnectionPaths | undefined;
  const connectionPaths = (): ConnectionPaths => {
    if (paths) return paths;
    paths = finishConnectionPaths(pending, wanted);
    if (!tracecontext) log.info("trace context propagation is off (OTEL_PROPAGATORS has no tracecontext)");
    else if (!env.GOTEL_WRITE_TRACEPARENT) log.info("traceparent is not written into outgoing requests (GOTEL_WRITE_TRACEPARENT=false)");
    else if (!injectAllowed) {
      log.warn("outgoing requests will not carry traceparent: the kernel forbids bpf_probe_write_user", {
        lockdown: lockdownMode() ?? "unknown (securityfs not mounted)",
        hint: `spans are still produced; ${linkedBy(paths.sameHost, paths.socket)}; boot with lockdown=none to allow it`,
      });
    }
    return paths;
  };
  try {
    // event types from 2 (1 is the self-test's), by place in the list: bpf/include/event.h
    const first = Number(core.obj.btf().enumValues("gotel_event_type").get("GOTEL_EVENT_FIRST_INSTRUMENTATION"));
    if (!Number.isInteger(first)) throw new Error("core.bpf.o: no GOTEL_EVENT_FIRST_INSTRUMENTATION in its BTF");
    for (const [n, i] of instrumentations.entries()) {
      const object = { ...base, shareWith: core.obj, eventType: first + n };
      probes.push(new LazyProbe(i, { object, env, memory, inject: tracecontext && injectAllowed, writeAllowed: injectAllowed, fileRequests: wanted.link || wanted.insert, linkStreams: wanted.link }));
    }
  } catch (e) {
    for (const p of probes.reverse()) p.close();
    const { sameHost, socket } = connectionPaths();
    sameHost?.close();
    socket?.close();
    core.close();
    throw e;
  }
  return { core, probes, connectionPaths };
}

/**
 * The paths wanted, where the host looks able to run them: a kernel with BTF for the connection tracepoint, a
 * cgroup v2 hierarchy for socket insertion (the cheap checks; the kernel may still refuse, said when it does).
 */
function wantedPaths(env: EnvConfig): { link: boolean; insert: boolean } {
  const btf = existsSync("/sys/kernel/btf/vmlinux");
  const insert = env.GOTEL_SOCKET_TRACEPARENT && btf && cgroup2Root() !== undefined;
  const link = env.GOTEL_SAME_HOST_LINKING && btf;
  const noBtf = "the kernel has no BTF (/sys/kernel/btf/vmlinux); a kernel built with CONFIG_DEBUG_INFO_BTF has it";
  if (env.GOTEL_SOCKET_TRACEPARENT && !insert) {
    log.info("socket insertion is off", { reason: btf ? "no cgroup v2 hierarchy is mounted; mount one (mount -t cgroup2 none /sys/fs/cgroup)" : noBtf });
  }
  if (env.GOTEL_SAME_HOST_LINKING && !link) log.info("same-host linking is off", { reason: noBtf });
  return { link, insert };
}

function linkedBy(sameHost: SameHostLinking | undefined, socket: SocketTraceparent | undefined): string {
  const ways = [
    ...(socket ? ["plaintext HTTP/1 requests carry it inserted into their bytes"] : []),
    ...(sameHost?.uses.link ? ["services on this host are linked through their connections (HTTP/1, HTTP/2, gRPC)"] : []),
  ];
  return ways.length ? ways.join(", ") : "services are not linked";
}

interface PendingPaths {
  socket?: PendingLoad<SocketTraceparent>;
  /** the connection tracepoint, which both paths need */
  sameHost?: PendingLoad<SameHostLinking, [ConnectionUses]>;
}

/**
 * Loads the paths wanted: socket insertion's in a thread of its own, the connection tracepoint's here (see
 * SameHostLinking.load); a path that cannot even begin is off, said once.
 */
function beginConnectionPaths(core: CoreObject, wanted: { link: boolean; insert: boolean }, showVerifierLog: boolean): PendingPaths {
  const sameHost = wanted.link || wanted.insert ? startPath("same-host linking", () => SameHostLinking.load(core.obj, { showVerifierLog })) : undefined;
  const socket = wanted.insert ? startPath("socket insertion", () => SocketTraceparent.begin(core.obj, { showVerifierLog })) : undefined;
  return { ...(socket ? { socket } : {}), ...(sameHost ? { sameHost } : {}) };
}

/**
 * Waits for the paths' objects and attaches them, each where it loaded; where one could not, says why once and
 * goes on without. Socket insertion needs the connection tracepoint.
 */
function finishConnectionPaths(pending: PendingPaths, wanted: { link: boolean; insert: boolean }): ConnectionPaths {
  const socket = pending.socket && startPath("socket insertion", () => pending.socket!.finish());
  const uses = { link: wanted.link, insert: socket !== undefined };
  let sameHost = pending.sameHost && startPath("same-host linking", () => pending.sameHost!.finish(uses));
  if (sameHost && !uses.link && !uses.insert) {
    sameHost.close(); // loaded for socket insertion, which did not start
    sameHost = undefined;
  }
  if (socket && !sameHost) {
    log.info("socket insertion is off", { reason: "it needs the connection tracepoint of same-host linking, which could not start" });
    socket.close();
    return {};
  }
  if (socket) log.info("socket insertion is on: plaintext HTTP/1 requests of traced processes carry traceparent in their bytes", { cgroup: socket.cgroup });
  if (sameHost?.uses.link) log.info("same-host linking is on: server spans continue the client spans of traced processes on this host (HTTP/1, HTTP/2, gRPC)");
  return { ...(sameHost ? { sameHost } : {}), ...(socket ? { socket } : {}) };
}

function startPath<T>(name: string, start: () => T): T | undefined {
  try {
    return start();
  } catch (e) {
    log.info(`${name} is off`, { reason: e instanceof GotelError ? e.oneLine : String(e) });
    return undefined;
  }
}

/** An instrumentation as a SpanProbe whose object is loaded by the first prepare() of a binary that needs it. */
class LazyProbe implements SpanProbe {
  private probe: SpanProbe | undefined;
  /** its object loading in a thread of its own (beginLoad), until prepare() waits for it */
  private loading: PendingLoad<SpanProbe> | undefined;
  /** why loading failed: not tried again */
  private failed: string | undefined;

  constructor(private readonly instrumentation: Instrumentation, private readonly ctx: LoadContext) {}

  get name(): string {
    return this.instrumentation.name;
  }

  get eventType(): number {
    return this.ctx.object.eventType;
  }

  get sameHost(): readonly SameHostRole[] | undefined {
    return this.instrumentation.sameHost;
  }

  /** Starts loading its object for an executable that needs it, in a thread of its own: planExecutable starts
   * every instrumentation's before it prepares the first, so they load side by side. */
  beginLoad(exe: GoExecutable): void {
    if (this.probe || this.failed || this.loading || this.absentFrom(exe)) return;
    try {
      this.loading = BpfObject.sideBySide(() => this.instrumentation.load(this.ctx), (p) => p.close());
    } catch (e) {
      this.failed = this.loadFailed(e);
    }
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    if (this.loading) {
      const loading = this.loading;
      this.loading = undefined;
      try {
        this.probe = loading.finish();
      } catch (e) {
        this.failed = this.loadFailed(e);
      }
    }
    if (this.probe) return this.probe.prepare(exe);
    if (this.failed) return { skipped: this.failed };
    const absent = this.absentFrom(exe);
    if (absent) return { skipped: absent, absent: true };
    try {
      this.probe = this.instrumentation.load(this.ctx);
    } catch (e) {
      this.failed = this.loadFailed(e);
      return { skipped: this.failed };
    }
    return this.probe.prepare(exe);
  }

  /** why the executable has nothing for it, as the loaded probe would say (cheap: it stops there) */
  private absentFrom(exe: GoExecutable): string | undefined {
    if (this.instrumentation.present(exe)) return undefined;
    const r = this.instrumentation.readiness(exe);
    return r.status === "skipped" ? r.reason : undefined;
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

  sweep(nowNs: bigint): number {
    return this.probe?.sweep?.(nowNs) ?? 0;
  }

  close(): void {
    if (this.loading) {
      try {
        this.loading.finish().close();
      } catch {
        // closed by finish()
      }
      this.loading = undefined;
    }
    this.probe?.close();
  }
}
