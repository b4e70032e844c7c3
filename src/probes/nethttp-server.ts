/**
 * net/http server spans (bpf/nethttp_server.bpf.c): one SERVER span per request served through
 * net/http.serverHandler.ServeHTTP, which every net/http server and the frameworks on it (chi, gin,
 * gorilla/mux, …) go through.
 */
import { SpanKind, SpanStatusCode, type Attributes } from "@opentelemetry/api";
import type { GoExecutable, ProbeSites } from "../gobin/analyze.ts";
import { bundledTable } from "../offsets/bundled.ts";
import { resolveOffsets, type FieldNeed, type TableLookup } from "../offsets/resolver.ts";
import type { OffsetsSource, Readiness } from "./registry.ts";
import type { SpanRecord } from "../traces/span.ts";

export const FUNCTION = "net/http.serverHandler.ServeHTTP";
export const SCOPE = "go.opentelemetry.io/auto/net/http";
/** Go versions the register ABI and these fields are known for */
const MIN_GO: [number, number] = [1, 19];

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
  request_header: "net/http.Request.Header",
  hmap_b: "runtime.hmap.B",
  hmap_buckets: "runtime.hmap.buckets",
  swiss_dir_ptr: "internal/runtime/maps.Map.dirPtr",
  swiss_dir_len: "internal/runtime/maps.Map.dirLen",
  swiss_table_groups: "internal/runtime/maps.table.groups",
  swiss_groups_data: "internal/runtime/maps.groupsReference.data",
  swiss_groups_mask: "internal/runtime/maps.groupsReference.lengthMask",
} as const;
export type ConfigField = keyof typeof FIELDS;

/**
 * Fields that exist only in some versions: the route comes from Pattern (>= 1.23) or pat.str (1.22); maps are
 * runtime.hmap before Go 1.24 and Swiss tables (internal/runtime/maps) from 1.24. Without them the span just
 * lacks http.route or user_agent.original.
 */
const OPTIONAL: ReadonlySet<ConfigField> = new Set([
  "request_pattern", "request_pat", "pattern_str", "request_header", "hmap_b", "hmap_buckets",
  "swiss_dir_ptr", "swiss_dir_len", "swiss_table_groups", "swiss_groups_data", "swiss_groups_mask",
]);

export interface NethttpServerPlan {
  sites: ProbeSites;
  /** undefined = the field does not exist in this version */
  offsets: Record<ConfigField, number | undefined>;
  offsetsSource: OffsetsSource;
}

export type PlanResult = { plan: NethttpServerPlan } | { skipped: string };

function goAtLeast(version: string, [major, minor]: [number, number]): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m !== null && (Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor));
}

/** What the probe reads, for the offsets resolver. */
export const NEEDS: readonly FieldNeed[] = (Object.entries(FIELDS) as [ConfigField, string][]).map(([key, field]) => ({
  key, field, module: "std", optional: OPTIONAL.has(key),
}));

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  if (!goAtLeast(exe.goVersion, MIN_GO)) return { skipped: `Go ${exe.goVersion} is older than ${MIN_GO.join(".")}` };
  const sites = exe.probeSites(FUNCTION);
  if (!sites) return { skipped: `${FUNCTION} is not in the binary (it serves no HTTP)` };
  const r = resolveOffsets(exe, NEEDS, table);
  if ("skipped" in r) return r;
  return { plan: { sites, offsets: r.offsets as Record<ConfigField, number | undefined>, offsetsSource: r.source } };
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const { sites } = r.plan;
  return {
    status: "ready",
    reason: `${FUNCTION}: entry ${sites.entry.emulated ? "(emulated)" : "(single-stepped)"} and ${sites.returns.length} return site${sites.returns.length === 1 ? "" : "s"}`,
    offsetsSource: r.plan.offsetsSource,
  };
}

/** The raw event as the kernel sent it (strings already cut to their lengths). */
export interface ServerEvent {
  traceId: string;
  spanId: string;
  startNs: bigint;
  endNs: bigint;
  method: string;
  path: string;
  host: string;
  remoteAddr: string;
  pattern: string;
  protoMajor: number;
  protoMinor: number;
  status: number;
  tls: boolean;
  userAgent: string;
}

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"]);

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

function protocolVersion(major: number, minor: number): string {
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
    "http.response.status_code": status,
    "network.protocol.version": protocolVersion(e.protoMajor, e.protoMinor),
  };
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
    traceId: e.traceId,
    spanId: e.spanId,
    name: route ? `${method === "_OTHER" ? "HTTP" : method} ${route}` : method === "_OTHER" ? "HTTP" : method,
    kind: SpanKind.SERVER,
    startUnixNs: e.startNs,
    endUnixNs: e.endNs,
    attributes,
    status: status >= 500 ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.UNSET },
    scope: SCOPE,
  };
}
