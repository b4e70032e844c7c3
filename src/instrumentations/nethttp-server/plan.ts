/**
 * net/http server spans (nethttp_server.bpf.c beside it): one SERVER span per request served through
 * net/http.serverHandler.ServeHTTP, which every net/http server and the frameworks on it (chi, gin,
 * gorilla/mux, …) go through. A span ends at the entry of what net/http runs right after the handler (no RET
 * probe: those are single-stepped, ~10x dearer); a handler that panics gets an ERROR span with the panic.
 */
import { SpanKind, SpanStatusCode, type Attributes } from "@opentelemetry/api";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { GoFunction } from "../../gobin/functions.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldsProgram } from "../../offsets/fields-program.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import { fieldNeeds, offsetsOrigin, planProbe, type PlanResult, type ProbePlan, type ProbeSpec } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import type { SpanRecord, SpanRecordEvent } from "../../traces/span.ts";
import { KNOWN_METHODS, MAP_FIELDS, MAP_FIELD_KEYS, SCOPE, protocolVersion, splitHostPort } from "../http.ts";
import { recordContext, type SpanEventContext } from "../../probes/span-event.ts";
import type { GoPanic } from "../../probes/go-panic.ts";
import { routeOf, type RouteNote } from "../http-routes/route.ts";

export const FUNCTION = "net/http.serverHandler.ServeHTTP";
/** C config field -> the Go struct field it holds the offset of */
export const FIELDS = {
  request_method: "net/http.Request.Method",
  request_url: "net/http.Request.URL",
  request_proto_major: "net/http.Request.ProtoMajor",
  request_proto_minor: "net/http.Request.ProtoMinor",
  request_host: "net/http.Request.Host",
  request_remote_addr: "net/http.Request.RemoteAddr",
  request_tls: "net/http.Request.TLS",
  request_pattern: "net/http.Request.Pattern",
  request_pat: "net/http.Request.pat",
  pattern_str: "net/http.pattern.str",
  url_path: "net/url.URL.Path",
  response_status: "net/http.response.status",
  h2_writer_rws: "net/http.http2responseWriter.rws",
  h2_rws_status: "net/http.http2responseWriterState.status",
  h2_internal_writer_rws: "net/http/internal/http2.responseWriter.rws",
  h2_internal_rws_status: "net/http/internal/http2.responseWriterState.status",
  xnet_writer_rws: "golang.org/x/net/http2.responseWriter.rws",
  xnet_rws_status: "golang.org/x/net/http2.responseWriterState.status",
  // same-host linking of HTTP/2 streams: the writer's state -> its connection and its stream's id
  h2_rws_conn: "net/http.http2responseWriterState.conn",
  h2_rws_stream: "net/http.http2responseWriterState.stream",
  h2_stream_id: "net/http.http2stream.id",
  h2_internal_rws_conn: "net/http/internal/http2.responseWriterState.conn",
  h2_internal_rws_stream: "net/http/internal/http2.responseWriterState.stream",
  h2_internal_stream_id: "net/http/internal/http2.stream.id",
  xnet_rws_conn: "golang.org/x/net/http2.responseWriterState.conn",
  xnet_rws_stream: "golang.org/x/net/http2.responseWriterState.stream",
  xnet_stream_id: "golang.org/x/net/http2.stream.id",
  request_header: "net/http.Request.Header",
  request_ctx: "net/http.Request.ctx",
  ...MAP_FIELDS,
} as const;
export type ConfigField = keyof typeof FIELDS;

/**
 * Fields that exist only in some versions: the route comes from Pattern (>= 1.23) or pat.str (1.22); maps are
 * runtime.hmap before Go 1.24 and Swiss tables (internal/runtime/maps) from 1.24. Without them the span just
 * lacks http.route, user_agent.original, its incoming parent or an HTTP/2 status code.
 */
const OPTIONAL: ReadonlySet<string> = new Set([
  "request_pattern", "request_pat", "pattern_str", "request_header", ...MAP_FIELD_KEYS,
  // HTTP/2's writer: bundled into net/http before Go 1.27, net/http/internal/http2 from 1.27
  "h2_writer_rws", "h2_rws_status", "h2_internal_writer_rws", "h2_internal_rws_status",
  "h2_rws_conn", "h2_rws_stream", "h2_stream_id", "h2_internal_rws_conn", "h2_internal_rws_stream", "h2_internal_stream_id",
  // golang.org/x/net's HTTP/2 server, when the binary has it
  "xnet_writer_rws", "xnet_rws_status", "xnet_rws_conn", "xnet_rws_stream", "xnet_stream_id",
]);

/**
 * golang.org/x/net's own HTTP/2 server runs each stream's handler through these (entry probes only): with its
 * h2c handler the application's handler is called directly, never through serverHandler.ServeHTTP.
 */
const XNET_RUN_HANDLER = "golang.org/x/net/http2.(*serverConn).runHandler";
const XNET_HANDLER_DONE = "golang.org/x/net/http2.(*responseWriter).handlerDone";

const SERVEMUX_SERVE = "net/http.(*ServeMux).ServeHTTP";

const XNET = "golang.org/x/net";
/** for the offsets generator: x/net's own HTTP/2 server (http2.ConfigureServer), whose ResponseWriter the probe reads;
 * tagged releases only (binaries built from a pseudo-version get its offsets from their DWARF) */
export const FIELDS_PROGRAM: FieldsProgram = {
  module: XNET, since: "v0.1.0", imports: ['"net/http"', `"${XNET}/http2"`],
  body: "\t\tsink = append(sink, http2.ConfigureServer(&http.Server{}, &http2.Server{}))",
};
const MODULES: Record<string, string> = {
  xnet_writer_rws: XNET, xnet_rws_status: XNET, xnet_rws_conn: XNET, xnet_rws_stream: XNET, xnet_stream_id: XNET,
};

/**
 * An HTTP/2 request's ResponseWriter type -> whose offsets read its status. net/http's own server: before Go
 * 1.27 *http.http2responseWriter; from 1.27 http.http2ResponseWriter (one pointer to internal/http2's writer).
 * golang.org/x/net's server (http2.ConfigureServer before Go 1.27): *http2.responseWriter.
 */
export type H2Server = "std" | "xnet";
export const H2_WRITER_TYPES: ReadonlyMap<string, H2Server> = new Map<string, H2Server>([
  ["*http.http2responseWriter", "std"], ["http.http2ResponseWriter", "std"], ["*http2.responseWriter", "xnet"],
]);

export const PROGRAMS = {
  entry: "nethttp_server_entry", xnetStream: "nethttp_server_xnet_stream",
  finish: "nethttp_server_finish", connectionDone: "nethttp_server_connection_done", streamDone: "nethttp_server_stream_done",
  panic: "nethttp_server_panic", recovered: "nethttp_server_recovered",
  // the request a ServeMux served (a middleware's copy too), whose Pattern is the route: Go >= 1.22
  serveMux: "nethttp_server_servemux",
  // same-host linking: an HTTP/2 connection's serve goroutine, which read its handshake or preface
  h2Serve: "nethttp_server_h2_serve",
  // where the functions above cannot be found: every RET of ServeHTTP, and x/net's handlerDone
  return: "nethttp_server_return", xnetDone: "nethttp_server_xnet_done",
} as const;

/** HTTP/1: what net/http's connection goroutine runs right after the handler returned */
const FINISH_REQUEST = "net/http.(*response).finishRequest";
/** conn.serve's first closure, its deferred recover-and-close, in every Go version gotel supports */
const CONNECTION_DONE = "net/http.(*conn).serve.func1";
/** HTTP/2 servers that run each stream's handler through runHandler, on a goroutine of its own */
const RUN_HANDLERS = ["net/http.(*http2serverConn).runHandler", "net/http/internal/http2.(*serverConn).runHandler", XNET_RUN_HANDLER];
/** HTTP/2 servers' connection loops: bundled before Go 1.27, internal from 1.27, x/net's */
const H2_SERVES = ["net/http.(*http2serverConn).serve", "net/http/internal/http2.(*serverConn).serve", "golang.org/x/net/http2.(*serverConn).serve"];
const GOPANIC = "runtime.gopanic";
const RECOVERY = "runtime.recovery";

/**
 * runHandler's deferred closure, which recovers a handler's panic and calls handlerDone. Its name depends on
 * the compiler and the server's version: with `defer sc.sendServeMsg(…)` before it, Go >= 1.22 names that
 * wrapper deferwrap1 and the closure func1, older Go names them func1 and func2; without it, it is func1.
 * Wrappers are a few instructions, so the largest runHandler.funcN is the one.
 */
export function streamDoneClosure(functions: readonly GoFunction[], runHandler: string): GoFunction | undefined {
  const prefix = `${runHandler}.func`;
  let best: GoFunction | undefined;
  for (const f of functions) {
    if (!f.name.startsWith(prefix) || !/^\d+$/.test(f.name.slice(prefix.length))) continue;
    if (!best || f.end - f.entry > best.end - best.entry) best = f;
  }
  return best;
}

/** Program -> file offsets to attach it at, and how the spans end, for the log and inspect. */
export interface ServerPrograms {
  programs: Record<string, number[]>;
  ends: string;
}

/**
 * Where this binary's requests end. Every supported Go version has the functions the cheap way needs; if one
 * is missing (a Go release that renamed them), the span ends at ServeHTTP's RETs as before, said in `ends`.
 */
export function serverPrograms(exe: GoExecutable, plan: ProbePlan): ServerPrograms {
  const serveMux = plan.extra[PROGRAMS.serveMux];
  const patterns = plan.offsets.request_pattern !== undefined || plan.offsets.request_pat !== undefined;
  const entry = { [PROGRAMS.entry]: [plan.sites.entry.offset], ...(serveMux && patterns ? { [PROGRAMS.serveMux]: [serveMux.offset] } : {}) };
  const xnet = xnetStreamSites(plan);
  const xnetStream: Record<string, number[]> = xnet ? { [PROGRAMS.xnetStream]: [xnet.stream] } : {};
  const site = (name: string): number | undefined => exe.entrySite(name)?.offset;
  const [finish, connectionDone, panic, recovered] = [FINISH_REQUEST, CONNECTION_DONE, GOPANIC, RECOVERY].map(site);
  const runHandlers = RUN_HANDLERS.filter((f) => exe.functions().get(f));
  const closures = runHandlers.map((f) => streamDoneClosure(exe.functions().withPrefix(`${f}.func`), f));
  const streamDone = closures.map((c) => (c ? site(c.name) : undefined));
  if (finish !== undefined && connectionDone !== undefined && panic !== undefined && recovered !== undefined && streamDone.every((o) => o !== undefined)) {
    return {
      programs: {
        ...entry, ...xnetStream,
        [PROGRAMS.finish]: [finish], [PROGRAMS.connectionDone]: [connectionDone], [PROGRAMS.streamDone]: streamDone as number[],
        [PROGRAMS.panic]: [panic], [PROGRAMS.recovered]: [recovered],
      },
      ends: `ends at the entries of (*response).finishRequest, (*conn).serve.func1${streamDone.length ? ` and ${streamDone.length} HTTP/2 stream closure${streamDone.length === 1 ? "" : "s"}` : ""} (no return probes); panics at runtime.gopanic and runtime.recovery`,
    };
  }
  const missing = [
    ...[FINISH_REQUEST, CONNECTION_DONE, GOPANIC, RECOVERY].filter((_, i) => [finish, connectionDone, panic, recovered][i] === undefined),
    ...runHandlers.filter((_, i) => streamDone[i] === undefined).map((f) => `${f}.funcN`),
  ];
  const n = plan.sites.returns.length;
  return {
    programs: { ...entry, [PROGRAMS.return]: plan.sites.returns, ...xnetStream, ...(xnet ? { [PROGRAMS.xnetDone]: [xnet.done] } : {}) } as Record<string, number[]>,
    ends: `${n} return site${n === 1 ? "" : "s"} (not in the binary: ${missing.join(", ")})`,
  };
}

const SPEC: ProbeSpec = {
  function: FUNCTION, absent: "it serves no HTTP", fields: FIELDS, optional: OPTIONAL, modules: MODULES,
  extra: { [PROGRAMS.xnetStream]: XNET_RUN_HANDLER, [PROGRAMS.xnetDone]: XNET_HANDLER_DONE, [PROGRAMS.serveMux]: SERVEMUX_SERVE },
};

/** What the probe reads, for the offsets resolver and the table's generator. */
export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

/** The binary serves HTTP with net/http at all (whether the object is worth loading). */
export const present = (exe: GoExecutable): boolean => exe.functions().get(FUNCTION) !== undefined;

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  return planProbe(exe, SPEC, table);
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const { sites } = r.plan;
  const note = degraded(exe, r.plan.offsets);
  const xnet = xnetStreamSites(r.plan) ? "; x/net's HTTP/2 streams start at (*serverConn).runHandler" : "";
  return {
    status: "ready",
    reason: `${FUNCTION}: entry ${sites.entry.emulated ? "(emulated)" : "(single-stepped)"}; ${serverPrograms(exe, r.plan).ends}${xnet}${note ? `; ${note}` : ""}`,
    ...offsetsOrigin(r.plan),
  };
}

/**
 * Same-host linking of HTTP/2 streams: the entries of the binary's HTTP/2 servers' serve, where each connection
 * is named; none when no server's writer state has the offsets that find a stream's connection and id.
 */
export function h2LinkSites(exe: GoExecutable, offsets: Record<string, number | undefined>): Record<string, number[]> {
  const has = (...keys: string[]): boolean => keys.every((k) => offsets[k] !== undefined);
  const readable = has("h2_writer_rws", "h2_rws_conn", "h2_rws_stream", "h2_stream_id") ||
    has("h2_internal_writer_rws", "h2_internal_rws_conn", "h2_internal_rws_stream", "h2_internal_stream_id") ||
    has("xnet_writer_rws", "xnet_rws_conn", "xnet_rws_stream", "xnet_stream_id");
  const sites = readable ? H2_SERVES.flatMap((f) => exe.entrySite(f)?.offset ?? []) : [];
  return sites.length ? { [PROGRAMS.h2Serve]: sites } : {};
}

/** The entry sites of x/net's stream handler and its end, when the binary has x/net's own HTTP/2 server. */
export function xnetStreamSites(plan: ProbePlan): { stream: number; done: number } | undefined {
  const stream = plan.extra[PROGRAMS.xnetStream];
  const done = plan.extra[PROGRAMS.xnetDone];
  return stream && done ? { stream: stream.offset, done: done.offset } : undefined;
}

/** What spans of this binary will lack for want of offsets, for inspect and the attach log; undefined: nothing. */
export function degraded(exe: GoExecutable, offsets: Record<string, number | undefined>): string | undefined {
  if (offsets.xnet_writer_rws !== undefined && offsets.xnet_rws_status !== undefined) return undefined;
  if (!exe.functions().get(XNET_RUN_HANDLER)) return undefined;
  return `HTTP/2 responses of golang.org/x/net's server get no status code (no offsets for ${XNET} ${exe.moduleVersion(XNET) ?? "(version unknown)"}: not in the binary's DWARF nor in gotel's table)`;
}

/** The raw event as the kernel sent it (strings already cut to their lengths). */
export interface ServerEvent extends SpanEventContext {
  method: string;
  path: string;
  host: string;
  remoteAddr: string;
  /** where its route was read (the ServeMux pattern, or a router's note) */
  route: RouteNote;
  protoMajor: number;
  protoMinor: number;
  /** undefined when it could not be read (an HTTP/2 writer gotel has no layout for); 0 when none was written */
  status: number | undefined;
  tls: boolean;
  userAgent: string;
  /** HTTP/1: it ended with its connection, its handler unfinished (hijacked, panicked, or runtime.Goexit) */
  abandoned: boolean;
  /** the panic that unwound its handler */
  panic?: GoPanic;
}

/** Semantic conventions for an HTTP server span. */
export function toSpanRecord(e: ServerEvent): SpanRecord {
  const known = KNOWN_METHODS.has(e.method);
  const method = known ? e.method : "_OTHER";
  const route = routeOf(e.route);
  // a handler that writes nothing gets 200 from net/http after it returns; one that never returned gets none
  const status = e.status === 0 ? (e.abandoned || e.panic ? undefined : 200) : e.status;
  const attributes: Attributes = {
    "http.request.method": method,
    "url.path": e.path,
    "url.scheme": e.tls ? "https" : "http",
    "network.protocol.version": protocolVersion(e.protoMajor, e.protoMinor),
  };
  if (status !== undefined) attributes["http.response.status_code"] = status;
  if (!known) attributes["http.request.method_original"] = e.method;
  if (e.userAgent) attributes["user_agent.original"] = e.userAgent;
  if (route) attributes["http.route"] = route;
  const server = splitHostPort(e.host);
  if (server.host) attributes["server.address"] = server.host;
  if (server.port !== undefined) attributes["server.port"] = server.port;
  const peer = splitHostPort(e.remoteAddr);
  if (peer.host) attributes["network.peer.address"] = peer.host;
  if (peer.port !== undefined) attributes["network.peer.port"] = peer.port;
  if (e.panic) attributes["error.type"] = e.panic.type;
  return {
    ...recordContext(e),
    name: route ? `${method === "_OTHER" ? "HTTP" : method} ${route}` : method === "_OTHER" ? "HTTP" : method,
    kind: SpanKind.SERVER,
    attributes,
    status: e.panic
      ? { code: SpanStatusCode.ERROR, message: `panic: ${e.panic.message ?? e.panic.type}` }
      : status !== undefined && status >= 500 ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.UNSET },
    ...(e.panic ? { events: [exceptionEvent(e.panic)] } : {}),
    scope: SCOPE,
  };
}

/** The semantic conventions' exception event, as the Go SDK's span.End records a panic */
function exceptionEvent(p: GoPanic): SpanRecordEvent {
  return {
    name: "exception",
    timeUnixNs: p.timeUnixNs,
    attributes: { "exception.type": p.type, ...(p.message !== undefined ? { "exception.message": p.message } : {}) },
  };
}
