/** The loaded net/http server object (nethttp_server.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { PANIC_TEXT_MAX, panicMessage, type GoPanic } from "../../probes/go-panic.ts";
import { H2_WRITER_TYPES, type H2Server, degraded, h2LinkSites, plan, serverPrograms, toSpanRecord, type ServerEvent } from "./plan.ts";
import { offsetsOrigin } from "../../probes/plan.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { errorTypeName, i64Field, itabTypeName, spanContextDecoder, stringField, unfinishedSpan } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { Losses } from "../../probes/instrumentation.ts";
import type { RouteKind } from "../http-routes/route.ts";
import { httpRouterTrees } from "../http-routes/httprouter-trees.ts";

export interface ServerLoadOptions extends LoadOptions {
  /** a live target's memory, to tell which HTTP/2 ResponseWriter a request had */
  memory?: (tgid: number) => TargetMemory | undefined;
  /** name each HTTP/2 connection for its streams (same-host linking is on) */
  linkStreams?: boolean;
}

/** what the kernel read at runtime.gopanic, before the type is named */
interface RawPanic { type: bigint; ns: bigint; value: DataView; text: Uint8Array }

/** the event as decoded; `record` completes it in place into a ServerEvent (no copies: this runs for every span) */
type RawEvent = ServerEvent & { statusXnet: number; writerItab: bigint; writerXnet: boolean; rawPanic: RawPanic | undefined };

/** whose HTTP/2 writers this process's offsets can read */
type H2Readable = Record<H2Server, boolean>;

/** distinct ResponseWriter itabs remembered per process (a program has a handful) */
const MAX_WRITER_ITABS = 64;

/** nethttp_server.bpf.c's own reasons for losing spans */
export const NETHTTP_SERVER_LOSSES = {
  enum: "nethttp_server_counter",
  reasons: {
    NETHTTP_SERVER_COUNTER_NO_END: "server span not ended (its end program was not in place)",
    NETHTTP_SERVER_COUNTER_NO_START: "server span not started (its start program was not in place)",
  },
} as const satisfies Losses;

export class NethttpServerProbe extends ObjectSpanProbe {
  readonly name = "net/http server";
  private readonly decode: (v: DataView) => RawEvent;
  private readonly abandonedOffset: number;
  /** tgid -> HTTP/2 ResponseWriter itab -> whose writer it is (undefined: neither server gotel knows) */
  private readonly h2Writers = new Map<number, Map<bigint, H2Server | undefined>>();
  private readonly h2Readable = new Map<number, H2Readable>();

  private constructor(object: ProbeObject, private readonly opts: ServerLoadOptions) {
    super(object);
    const btf = object.obj.btf();
    const layout = new StructView(btf.structLayout("nethttp_server_event"));
    this.decode = eventDecoder(layout, routeKinds(btf.enumValues("gotel_http_route_kind")));
    this.abandonedOffset = layout.offset("abandoned", 4);
  }

  static load(opts: ServerLoadOptions): NethttpServerProbe {
    return new NethttpServerProbe(ProbeObject.load("nethttp_server", opts), opts);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const r = plan(exe);
    if ("skipped" in r) return r;
    const p = r.plan;
    const programs = { ...serverPrograms(exe, p).programs, ...(this.opts.linkStreams ? h2LinkSites(exe, p.offsets) : {}) };
    const has = (...keys: string[]): boolean => keys.every((k) => p.offsets[k] !== undefined);
    const readable: H2Readable = {
      std: has("h2_writer_rws", "h2_rws_status") || has("h2_internal_writer_rws", "h2_internal_rws_status"),
      xnet: has("xnet_writer_rws", "xnet_rws_status"),
    };
    return {
      ...offsetsOrigin(p),
      sites: siteCount(programs),
      note: degraded(exe, p.offsets),
      attach: (tgid, path) => {
        this.h2Readable.set(tgid, readable);
        return this.object.attach(tgid, path, p.offsets, programs);
      },
    };
  }

  override forget(tgid: number): void {
    super.forget(tgid);
    this.h2Writers.delete(tgid);
    this.h2Readable.delete(tgid);
  }

  /** abandoned, so that no status code is made up: the handler never finished */
  override unfinished(tgid: number, endNs: bigint, toUnixNs: (ns: bigint) => bigint): SpanRecord[] {
    return this.object.inflightEvents(tgid, "event", endNs).map((v) => {
      v.setUint32(this.abandonedOffset, 1, true);
      return unfinishedSpan(this.record(v, tgid, toUnixNs));
    });
  }

  record(v: DataView, tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const e = this.decode(v);
    // HTTP/1 (every span of most services) takes the status as read; only HTTP/2 asks whose writer it was
    if (e.protoMajor === 2) e.status = this.h2Status(tgid, e.writerXnet ? "xnet" : this.h2Server(tgid, e.writerItab), e.status, e.statusXnet);
    if (e.rawPanic) e.panic = this.goPanic(tgid, e.rawPanic, toUnixNs);
    // the path, looked up again in the tree it was looked up in; a 405 looked it up in other methods' trees after
    if (e.route.kind === "httprouter") e.route.text = (e.status !== 405 && httpRouterTrees.route(tgid, e.route.node ?? 0, e.route.text)) || "";
    e.startNs = toUnixNs(e.startNs);
    e.endNs = toUnixNs(e.endNs);
    return toSpanRecord(e);
  }

  private goPanic(tgid: number, p: RawPanic, toUnixNs: (ns: bigint) => bigint): GoPanic {
    const type = errorTypeName(this.opts.memory?.(tgid), p.type) ?? "_OTHER";
    const message = panicMessage(type, p.value, p.text);
    return { type, ...(message !== undefined ? { message } : {}), timeUnixNs: toUnixNs(p.ns) };
  }

  /** An HTTP/2 status as read through the offsets of the server whose writer the request had, if known. */
  private h2Status(tgid: number, server: H2Server | undefined, std: number | undefined, xnet: number): number | undefined {
    if (!server || !this.h2Readable.get(tgid)?.[server]) return undefined;
    return server === "std" ? std : xnet;
  }

  /** Whose HTTP/2 server made this writer, from its type's name (read once per itab). */
  private h2Server(tgid: number, itab: bigint): H2Server | undefined {
    let writers = this.h2Writers.get(tgid);
    if (!writers) this.h2Writers.set(tgid, (writers = new Map()));
    if (writers.has(itab)) return writers.get(itab);
    const server = H2_WRITER_TYPES.get(itabTypeName(this.opts.memory?.(tgid), itab) ?? "");
    if (writers.size < MAX_WRITER_ITABS) writers.set(itab, server);
    return server;
  }
}

/** enum gotel_http_route_kind's values -> their names as RouteKind ("GOTEL_ROUTE_SERVEMUX" -> "servemux") */
function routeKinds(values: ReadonlyMap<string, bigint>): Map<number, RouteKind> {
  const kinds = new Map<number, RouteKind>();
  for (const [name, value] of values) kinds.set(Number(value), name.replace(/^GOTEL_ROUTE_/, "").toLowerCase() as RouteKind);
  return kinds;
}

function eventDecoder(s: StructView, kinds: ReadonlyMap<number, RouteKind>): (v: DataView) => RawEvent {
  const context = spanContextDecoder(s);
  const tls = s.u32("tls");
  const [method, path, host, remote, pattern, userAgent] = [
    stringField(s, "method", "method_len"), stringField(s, "path", "path_len"), stringField(s, "host", "host_len"),
    stringField(s, "remote", "remote_len"), stringField(s, "pattern", "pattern_len"), stringField(s, "user_agent", "user_agent_len"),
  ];
  const [status, major, minor] = [i64Field(s, "status"), i64Field(s, "proto_major"), i64Field(s, "proto_minor")];
  const statusXnet = i64Field(s, "status_xnet");
  const writerItab = s.u64("writer_itab");
  const writerXnet = s.u32("writer_xnet");
  const abandoned = s.u32("abandoned");
  const [routeKind, routePathLength, routeNode] = [s.u32("route_kind"), s.u32("route_path_len"), s.u64("route_node")];
  const panic = panicDecoder(s);
  return (v) => ({
    ...context(v),
    method: method(v),
    path: path(v),
    host: host(v),
    remoteAddr: remote(v),
    route: { kind: kinds.get(routeKind(v)) ?? "none", text: pattern(v), pathLength: routePathLength(v), node: Number(routeNode(v)) },
    protoMajor: major(v),
    protoMinor: minor(v),
    status: status(v),
    statusXnet: statusXnet(v),
    writerItab: writerItab(v),
    writerXnet: writerXnet(v) !== 0,
    tls: tls(v) !== 0,
    userAgent: userAgent(v),
    abandoned: abandoned(v) !== 0,
    rawPanic: panic(v),
  });
}

function panicDecoder(s: StructView): (v: DataView) => RawPanic | undefined {
  const [panicked, type, ns, textLen] = [s.u32("panicked"), s.u64("panic_type"), s.u64("panic_ns"), s.u32("panic_text_len")];
  const value = s.offset("panic_value", 24);
  const text = s.offset("panic_text", PANIC_TEXT_MAX);
  return (v) => {
    if (panicked(v) === 0) return undefined;
    return {
      type: type(v),
      ns: ns(v),
      value: new DataView(v.buffer, v.byteOffset + value, 24),
      text: new Uint8Array(v.buffer, v.byteOffset + text, Math.min(textLen(v), PANIC_TEXT_MAX)),
    };
  };
}
