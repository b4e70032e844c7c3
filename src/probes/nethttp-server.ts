/**
 * net/http server spans (bpf/nethttp_server.bpf.c): one SERVER span per request served through
 * net/http.serverHandler.ServeHTTP, which every net/http server and the frameworks on it (chi, gin,
 * gorilla/mux, …) go through.
 */
import { SpanKind, SpanStatusCode, type Attributes } from "@opentelemetry/api";
import type { GoExecutable } from "../gobin/analyze.ts";
import { bundledTable } from "../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../offsets/resolver.ts";
import { fieldNeeds, planProbe, type PlanResult, type ProbePlan, type ProbeSpec } from "./plan.ts";
import type { Readiness } from "./registry.ts";
import type { SpanRecord } from "../traces/span.ts";
import { MAP_FIELDS, MAP_FIELD_KEYS } from "./http-header-fields.ts";
import { recordContext, type SpanEventContext } from "./span-event.ts";

export const FUNCTION = "net/http.serverHandler.ServeHTTP";
export const SCOPE = "go.opentelemetry.io/auto/net/http";

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
  // golang.org/x/net's HTTP/2 server, when the binary has it
  "xnet_writer_rws", "xnet_rws_status",
]);

/**
 * golang.org/x/net's own HTTP/2 server runs each stream's handler through these (entry probes only): with its
 * h2c handler the application's handler is called directly, never through serverHandler.ServeHTTP.
 */
const XNET_RUN_HANDLER = "golang.org/x/net/http2.(*serverConn).runHandler";
const XNET_HANDLER_DONE = "golang.org/x/net/http2.(*responseWriter).handlerDone";

const XNET = "golang.org/x/net";
const MODULES: Record<string, string> = { xnet_writer_rws: XNET, xnet_rws_status: XNET };

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
  entry: "nethttp_server_entry", return: "nethttp_server_return",
  xnetStream: "nethttp_server_xnet_stream", xnetDone: "nethttp_server_xnet_done",
} as const;

const SPEC: ProbeSpec = {
  function: FUNCTION, absent: "it serves no HTTP", fields: FIELDS, optional: OPTIONAL, modules: MODULES,
  extra: { [PROGRAMS.xnetStream]: XNET_RUN_HANDLER, [PROGRAMS.xnetDone]: XNET_HANDLER_DONE },
};

/** What the probe reads, for the offsets resolver and the table's generator. */
export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  return planProbe(exe, SPEC, table);
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const { sites } = r.plan;
  const note = degraded(exe, r.plan.offsets);
  const xnet = xnetStreamSites(r.plan) ? "; x/net's HTTP/2 streams: entries of (*serverConn).runHandler and (*responseWriter).handlerDone" : "";
  return {
    status: "ready",
    reason: `${FUNCTION}: entry ${sites.entry.emulated ? "(emulated)" : "(single-stepped)"} and ${sites.returns.length} return site${sites.returns.length === 1 ? "" : "s"}${xnet}${note ? `; ${note}` : ""}`,
    offsetsSource: r.plan.offsetsSource,
  };
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
  pattern: string;
  protoMajor: number;
  protoMinor: number;
  /** undefined when it could not be read (an HTTP/2 writer gotel has no layout for); 0 when none was written */
  status: number | undefined;
  tls: boolean;
  userAgent: string;
}

export const KNOWN_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"]);

/** "host:port", "[v6]:port", "host" -> parts */
export function splitHostPort(s: string): { host: string; port?: number } {
  const m = /^\[([^\]]*)\](?::(\d+))?$/.exec(s) ?? /^([^:]*)(?::(\d+))?$/.exec(s);
  if (!m) return { host: s };
  return m[2] !== undefined ? { host: m[1] ?? "", port: Number(m[2]) } : { host: m[1] ?? "" };
}

/** A ServeMux pattern is "[METHOD ][HOST]/PATH"; http.route is its path. */
export function routeOfPattern(pattern: string): string | undefined {
  const p = pattern.trim();
  if (p === "") return undefined;
  const afterMethod = p.includes(" ") ? p.slice(p.indexOf(" ") + 1).trim() : p;
  const slash = afterMethod.indexOf("/");
  return slash >= 0 ? afterMethod.slice(slash) : undefined;
}

export function protocolVersion(major: number, minor: number): string {
  return major >= 2 ? String(major) : `${major}.${minor}`;
}

/** Semantic conventions for an HTTP server span. */
export function toSpanRecord(e: ServerEvent): SpanRecord {
  const known = KNOWN_METHODS.has(e.method);
  const method = known ? e.method : "_OTHER";
  const route = routeOfPattern(e.pattern);
  // a handler that writes nothing gets 200 from net/http after ServeHTTP returns
  const status = e.status === 0 ? 200 : e.status;
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
  return {
    ...recordContext(e),
    name: route ? `${method === "_OTHER" ? "HTTP" : method} ${route}` : method === "_OTHER" ? "HTTP" : method,
    kind: SpanKind.SERVER,
    attributes,
    status: status !== undefined && status >= 500 ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.UNSET },
    scope: SCOPE,
  };
}
