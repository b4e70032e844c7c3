/**
 * net/http client spans (nethttp_client.bpf.c beside it): one CLIENT span per request sent through
 * net/http.(*Transport).roundTrip — http.Get, http.Client.Do and every client built on http.Transport — and
 * the W3C context written into HTTP/1 requests at net/http.Header.writeSubset, into HTTP/2 requests' HEADERS
 * frames by net/http's own HTTP/2 client (the C file says how).
 */
import { SpanKind, SpanStatusCode, type Attributes } from "@opentelemetry/api";
import type { SpanRecord } from "../../traces/span.ts";
import { fieldNeeds, offsetsOrigin, planProbe, spanEnds, type PlanResult, type ProbeSpec } from "../../probes/plan.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import { recordContext, type SpanEventContext } from "../../probes/span-event.ts";
import { KNOWN_METHODS, MAP_FIELDS, MAP_FIELD_KEYS, SCOPE, protocolVersion, splitHostPort } from "../http.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import { bundledTable } from "../../offsets/bundled.ts";

export const ROUND_TRIP = "net/http.(*Transport).roundTrip";
export const WRITE_HEADERS = "net/http.Header.writeSubset";
/** where an HTTP/1 request's span is filed for the send that follows (same-host linking, socket insertion) */
export const WRITE_REQUEST = "net/http.(*Request).write";

/**
 * net/http's own HTTP/2 client: bundled into net/http before Go 1.27 (encodeAndWriteHeaders takes the
 * *http.Request), net/http/internal/http2 from 1.27 (it takes a *ClientRequest, whose Header is the request's
 * map: h2_request_header).
 */
const H2_CLIENTS: readonly { encode: string; writeHeaders: string; internal?: true }[] = [
  { encode: "net/http.(*http2clientStream).encodeAndWriteHeaders", writeHeaders: "net/http.(*http2ClientConn).writeHeaders" },
  {
    encode: "net/http/internal/http2.(*clientStream).encodeAndWriteHeaders", writeHeaders: "net/http/internal/http2.(*ClientConn).writeHeaders",
    internal: true,
  },
];
const FLUSH = "bufio.(*Writer).Flush";

/** C config field -> the Go struct field it holds the offset of */
export const FIELDS = {
  request_method: "net/http.Request.Method",
  request_url: "net/http.Request.URL",
  request_header: "net/http.Request.Header",
  request_ctx: "net/http.Request.ctx",
  url_scheme: "net/url.URL.Scheme",
  url_opaque: "net/url.URL.Opaque",
  url_user: "net/url.URL.User",
  url_host: "net/url.URL.Host",
  url_path: "net/url.URL.Path",
  url_raw_path: "net/url.URL.RawPath",
  url_raw_query: "net/url.URL.RawQuery",
  url_fragment: "net/url.URL.Fragment",
  url_raw_fragment: "net/url.URL.RawFragment",
  response_status_code: "net/http.Response.StatusCode",
  response_proto_major: "net/http.Response.ProtoMajor",
  response_proto_minor: "net/http.Response.ProtoMinor",
  bufio_writer_err: "bufio.Writer.err",
  bufio_writer_buf: "bufio.Writer.buf",
  bufio_writer_n: "bufio.Writer.n",
  h2_request_header: "net/http/internal/http2.ClientRequest.Header",
  ...MAP_FIELDS,
} as const;

/**
 * Without the map fields the application's own traceparent cannot be seen, so nothing is injected; without the
 * fragment's, url.full goes without the URL's fragment.
 */
const OPTIONAL: ReadonlySet<string> = new Set([...MAP_FIELD_KEYS, "url_fragment", "url_raw_fragment", "h2_request_header"]);

export const PROGRAMS = {
  entry: "nethttp_client_entry", return: "nethttp_client_return", result: "nethttp_client_result", inject: "nethttp_client_inject_entry", link: "nethttp_client_link_request",
  // HTTP/2: the request's span for its stream (injection and same-host linking), and the HEADERS frame's edit
  h2Encode: "nethttp_client_h2_encode", h2Headers: "nethttp_client_h2_headers", h2Flush: "nethttp_client_inject_h2_flush",
} as const;

const SPEC: ProbeSpec = {
  function: ROUND_TRIP,
  absent: "it sends no HTTP requests",
  extra: { [PROGRAMS.inject]: WRITE_HEADERS, [PROGRAMS.link]: WRITE_REQUEST },
  fields: FIELDS,
  optional: OPTIONAL,
};

/** What the probe reads, for the offsets resolver and the table's generator. */
export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

/**
 * A request succeeds where roundTrip checks its connection's answer (`if err == nil` after pconn.roundTrip or
 * the HTTP/2 connection's RoundTrip): the span ends at that JE, which the kernel emulates; the success path's RET
 * gets no probe. Failures (retried or not) still end at the other RETs. Go 1.19-1.27 have this shape.
 */
const RESULT_CHECK = { kind: "result-check", callee: "net/http.(*persistConn).roundTrip" } as const;

/** program -> the sites where roundTrip's span ends, and how, for readiness */
export function endSites(exe: GoExecutable, returns: readonly number[]): { programs: Record<string, number[]>; how: string } {
  return spanEnds(exe, ROUND_TRIP, RESULT_CHECK, returns, PROGRAMS.result, PROGRAMS.return);
}

/** The binary sends HTTP with net/http at all (whether the object is worth loading). */
export const present = (exe: GoExecutable): boolean => exe.functions().get(ROUND_TRIP) !== undefined;

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): PlanResult {
  return planProbe(exe, SPEC, table);
}

export const H2_ABSENT = "no HTTP/2 client in the binary";

/** Where an HTTP/2 request's stream is seen: its span found (encode), its stream id (headers), its flush. */
export interface H2Sites {
  encode: number;
  headers: number;
  /** writeHeaders' calls of bufio's Flush: injection needs exactly one */
  flush: number[];
}

/**
 * Where HTTP/2 requests' streams are seen, or why they cannot be: the binary has no HTTP/2 client (a program
 * that never sends HTTP/2), or not the shape the probes expect.
 */
export function h2Sites(exe: GoExecutable, offsets: Record<string, number | undefined>): H2Sites | { missing: string } {
  const h2 = H2_CLIENTS.find((c) => exe.functions().get(c.encode));
  if (!h2) return { missing: H2_ABSENT };
  const encode = exe.entrySite(h2.encode);
  const headers = exe.entrySite(h2.writeHeaders);
  if (!encode || !headers) return { missing: `${encode ? h2.writeHeaders : h2.encode} is not in the binary` };
  if (h2.internal && offsets.h2_request_header === undefined) return { missing: `no offset for ${FIELDS.h2_request_header}` };
  return { encode: encode.offset, headers: headers.offset, flush: exe.callSites(h2.writeHeaders, FLUSH) ?? [] };
}

/** The programs that put traceparent into HTTP/2 requests' HEADERS frames, or why they cannot. */
export function h2InjectionSites(exe: GoExecutable, offsets: Record<string, number | undefined>): Record<string, number[]> | { missing: string } {
  const h2 = h2Sites(exe, offsets);
  if ("missing" in h2) return h2;
  if (h2.flush.length !== 1) return { missing: `it makes ${h2.flush.length} calls of ${FLUSH} in writeHeaders, not one` };
  return { ...h2StreamSites(h2), [PROGRAMS.h2Flush]: h2.flush };
}

/** The programs that find an HTTP/2 request's span and stream (for same-host linking, and for injection). */
export function h2StreamSites(h2: H2Sites): Record<string, number[]> {
  return { [PROGRAMS.h2Encode]: [h2.encode], [PROGRAMS.h2Headers]: [h2.headers] };
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const { sites } = r.plan;
  const inject = r.plan.extra[PROGRAMS.inject];
  const h2 = h2InjectionSites(exe, r.plan.offsets);
  return {
    status: "ready",
    reason: `${ROUND_TRIP}: entry ${sites.entry.emulated ? "(emulated)" : "(single-stepped)"}; ends ${endSites(exe, sites.returns).how}` +
      (inject ? `; traceparent injection at ${WRITE_HEADERS}` : `; ${WRITE_HEADERS} not found: no traceparent injection`) +
      (!("missing" in h2) ? "; HTTP/2: into the HEADERS frame" : `; HTTP/2: no traceparent injection (${h2.missing})`),
    ...offsetsOrigin(r.plan),
  };
}

/** The raw event as the kernel sent it. */
export interface ClientEvent extends SpanEventContext {
  method: string;
  scheme: string;
  host: string;
  /** URL.RawPath when set (already escaped), URL.Opaque when set, else URL.Path */
  path: string;
  pathKind: "path" | "raw" | "opaque";
  query: string;
  hasUser: boolean;
  /** URL.Fragment, and URL.RawFragment (its encoded form, when not the default one) */
  fragment: string;
  rawFragment: string;
  status: number;
  protoMajor: number;
  protoMinor: number;
  /** the returned error's dynamic type name; undefined when the call succeeded */
  errorType?: string;
}

/** Query parameters whose values semantic conventions ask to redact in url.full (signed URLs). */
const SENSITIVE_QUERY = new Set(["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"]);

function redactQuery(q: string): string {
  return q.split("&").map((kv) => {
    const eq = kv.indexOf("=");
    return eq > 0 && SENSITIVE_QUERY.has(kv.slice(0, eq)) ? `${kv.slice(0, eq)}=REDACTED` : kv;
  }).join("&");
}

/**
 * URL.EscapedFragment: RawFragment when it is a valid encoding of Fragment, else Fragment escaped (every byte
 * but these as %XX).
 */
function escapedFragment(fragment: string, raw: string): string {
  if (raw && /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@[\]/?]|%[0-9A-Fa-f]{2})*$/.test(raw) && unescaped(raw) === fragment) return raw;
  return fragment.replace(/[^A-Za-z0-9\-._~$&+,/:;=?@!()*]/g, (c) => [...Buffer.from(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""));
}

function unescaped(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Go's url.PathEscape rules for a path (what URL.EscapedPath does when RawPath is unset). */
function escapePath(p: string): string {
  return p.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g, (c) => encodeURIComponent(c));
}

/**
 * url.full as net/url's URL.String() would write it, with credentials and signed query values redacted, and the
 * fragment, which the conventions keep when it is known (a client sends none: it is the request URL's own).
 */
export function fullUrl(e: Pick<ClientEvent, "scheme" | "host" | "path" | "pathKind" | "query" | "hasUser" | "fragment" | "rawFragment">): string {
  const query = e.query ? `?${redactQuery(e.query)}` : "";
  const fragment = e.fragment ? `#${escapedFragment(e.fragment, e.rawFragment)}` : "";
  if (e.pathKind === "opaque") return `${e.scheme}:${e.path}${query}${fragment}`;
  const path = e.pathKind === "raw" ? e.path : escapePath(e.path);
  const slash = path && !path.startsWith("/") && e.host ? "/" : "";
  const user = e.hasUser ? "REDACTED:REDACTED@" : "";
  return `${e.scheme}://${user}${e.host}${slash}${path}${query}${fragment}`;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/** Semantic conventions for an HTTP client span. */
export function toSpanRecord(e: ClientEvent): SpanRecord {
  const known = KNOWN_METHODS.has(e.method);
  const method = known ? e.method : "_OTHER";
  const attributes: Attributes = {
    "http.request.method": method,
    "url.full": fullUrl(e),
  };
  if (!known) attributes["http.request.method_original"] = e.method;
  if (e.pathKind !== "opaque") attributes["url.path"] = e.path || "/";
  const server = splitHostPort(e.host);
  if (server.host) attributes["server.address"] = server.host;
  const port = server.port ?? DEFAULT_PORTS[e.scheme];
  if (port !== undefined) attributes["server.port"] = port;
  if (e.status > 0) {
    attributes["http.response.status_code"] = e.status;
    attributes["network.protocol.version"] = protocolVersion(e.protoMajor, e.protoMinor);
  }
  let status: SpanRecord["status"] = { code: SpanStatusCode.UNSET };
  if (e.errorType !== undefined) {
    attributes["error.type"] = e.errorType;
    status = { code: SpanStatusCode.ERROR };
  } else if (e.status >= 400) {
    attributes["error.type"] = String(e.status);
    status = { code: SpanStatusCode.ERROR };
  }
  return {
    ...recordContext(e),
    name: known ? method : "HTTP",
    kind: SpanKind.CLIENT,
    attributes,
    status,
    scope: SCOPE,
  };
}
