/**
 * gRPC server spans (grpc_server.bpf.c beside it): one SERVER span per RPC google.golang.org/grpc's server
 * handles, unary and streaming, from the stream's start (handleStream) to the status it sends (writeStatus),
 * the incoming W3C context read from the stream's HEADERS. Entry probes only.
 */
import { SpanKind, type Attributes } from "@opentelemetry/api";
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import { compareVersions } from "../../offsets/table.ts";
import { fieldNeeds, offsetsOrigin, planProbe, type PlanResult, type ProbeSpec } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import { recordContext, type SpanEventContext } from "../../probes/span-event.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { GRPC, SCOPE, STATUS_FIELDS, TRANSPORT, grpcVersion, methodAttributes, outcome } from "./grpc.ts";

export const HANDLE_STREAM = `${GRPC}.(*Server).handleStream`;
const OPERATE_HEADERS = `${TRANSPORT}.(*http2Server).operateHeaders`;
/** where the status is written: renamed writeStatus in v1.69; grpc's ServeHTTP transport has its own */
const WRITE_STATUS = [
  `${TRANSPORT}.(*http2Server).WriteStatus`, `${TRANSPORT}.(*http2Server).writeStatus`,
  `${TRANSPORT}.(*serverHandlerTransport).WriteStatus`, `${TRANSPORT}.(*serverHandlerTransport).writeStatus`,
];

const XNET = "golang.org/x/net";
/** C config field -> the Go struct field it holds the offset of */
export const FIELDS = {
  stream_method: `${TRANSPORT}.Stream.method`,
  stream_ctx: `${TRANSPORT}.Stream.ctx`,
  stream_id: `${TRANSPORT}.Stream.id`,
  server_stream_stream: `${TRANSPORT}.ServerStream.Stream`,
  http2_server_remote_addr: `${TRANSPORT}.http2Server.remoteAddr`,
  http2_server_peer: `${TRANSPORT}.http2Server.peer`,
  peer_addr: `${GRPC}/peer.Peer.Addr`,
  tcp_addr_ip: "net.TCPAddr.IP",
  tcp_addr_port: "net.TCPAddr.Port",
  meta_headers_frame: "golang.org/x/net/http2.MetaHeadersFrame.HeadersFrame",
  meta_fields: "golang.org/x/net/http2.MetaHeadersFrame.Fields",
  headers_frame_header: "golang.org/x/net/http2.HeadersFrame.FrameHeader",
  frame_stream_id: "golang.org/x/net/http2.FrameHeader.StreamID",
  header_field_name: "golang.org/x/net/http2/hpack.HeaderField.Name",
  header_field_value: "golang.org/x/net/http2/hpack.HeaderField.Value",
  header_field_sensitive: "golang.org/x/net/http2/hpack.HeaderField.Sensitive",
  ...STATUS_FIELDS,
} as const;

const FRAME_FIELDS = ["meta_headers_frame", "meta_fields", "headers_frame_header", "frame_stream_id", "header_field_name", "header_field_value", "header_field_sensitive"];

/** present in some releases only (ServerStream from v1.69; remoteAddr became peer), or only needed for a part */
const OPTIONAL: ReadonlySet<string> = new Set([
  "server_stream_stream", "http2_server_remote_addr", "http2_server_peer", "peer_addr", "tcp_addr_ip", "tcp_addr_port", ...FRAME_FIELDS,
]);

/**
 * Whose table entries answer for a field in a stripped binary. net.TCPAddr's layout (IP, Port, Zone) is the
 * same in every Go release, so it is read from grpc's entries (the table's std part is per Go release, built
 * with each toolchain). x/net's frame types are x/net's own.
 */
const MODULES: Record<string, string> = Object.fromEntries(
  Object.keys(FIELDS).map((k) => [k, FRAME_FIELDS.includes(k) ? XNET : GRPC]),
);

export const PROGRAMS = { headers: "grpc_server_headers", handleStream: "grpc_server_handle_stream", writeStatus: "grpc_server_write_status" } as const;

const SPEC: ProbeSpec = {
  function: HANDLE_STREAM, absent: "it serves no gRPC", fields: FIELDS, optional: OPTIONAL, modules: MODULES,
  extra: { [PROGRAMS.headers]: OPERATE_HEADERS },
};

/** What the probe reads, for the offsets resolver and the table's generator. */
export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

/** The binary serves gRPC at all (whether the object is worth loading). */
export const present = (exe: GoExecutable): boolean => exe.functions().get(HANDLE_STREAM) !== undefined;

/** enum grpc_stream_embed (grpc_server.bpf.c) */
const STREAM_EMBED = { isStream: 0, pointer: 1, value: 2 } as const;

export interface ServerPlan {
  offsets: Record<string, number | undefined>;
  programs: Record<string, number[]>;
  offsetsSource: ReturnType<typeof offsetsOrigin>;
  /** the incoming context is read (operateHeaders and x/net's frame offsets were found) */
  extracts: boolean;
  handleStreamEmulated: boolean;
}

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): ServerPlan | { skipped: string; absent?: true } {
  const r: PlanResult = planProbe(exe, SPEC, table);
  if ("skipped" in r) return r;
  const v = grpcVersion(exe);
  if ("skipped" in v) return v;
  const ends = WRITE_STATUS.map((f) => exe.entrySite(f)?.offset).filter((o): o is number => o !== undefined);
  if (ends.length === 0) return { skipped: `none of ${WRITE_STATUS.join(", ")} is in the binary: gotel cannot see where an RPC ends` };
  const { header_field_sensitive: sensitive, ...offsets } = r.plan.offsets;
  const headers = r.plan.extra[PROGRAMS.headers];
  const extracts = headers !== undefined && FRAME_FIELDS.every((k) => r.plan.offsets[k] !== undefined);
  const config: Record<string, number | undefined> = {
    ...offsets,
    stream_embed: compareVersions(v.version, "v1.69.0") < 0 ? STREAM_EMBED.isStream : compareVersions(v.version, "v1.77.0") < 0 ? STREAM_EMBED.pointer : STREAM_EMBED.value,
    frame_arg: compareVersions(v.version, "v1.60.0") < 0 ? 2 : 4,
    // hpack.HeaderField is {Name, Value string; Sensitive bool}: its size is Sensitive's offset rounded up to 8
    header_field_size: sensitive === undefined ? undefined : Math.ceil((sensitive + 1) / 8) * 8,
  };
  return {
    offsets: config,
    programs: {
      [PROGRAMS.handleStream]: [r.plan.sites.entry.offset],
      [PROGRAMS.writeStatus]: ends,
      ...(extracts && headers ? { [PROGRAMS.headers]: [headers.offset] } : {}),
    },
    offsetsSource: offsetsOrigin(r.plan),
    extracts,
    handleStreamEmulated: r.plan.sites.entry.emulated,
  };
}

export function readiness(exe: GoExecutable): Readiness {
  const p = plan(exe);
  if ("skipped" in p) return { status: "skipped", reason: p.skipped };
  const ends = p.programs[PROGRAMS.writeStatus]!.length;
  return {
    status: "ready",
    reason: `${HANDLE_STREAM}: entry ${p.handleStreamEmulated ? "(emulated)" : "(single-stepped)"}; ends at ${ends} writeStatus entr${ends === 1 ? "y" : "ies"} (no return probes); ` +
      (p.extracts ? "incoming traceparent from the HEADERS frame at (*http2Server).operateHeaders" : "no incoming traceparent (operateHeaders or x/net's frame offsets not found)"),
    ...p.offsetsSource,
  };
}

/** The raw event as the kernel sent it. */
export interface ServerEvent extends SpanEventContext {
  method: string;
  /** the status code sent; undefined when none was (the process exited first) */
  code: number | undefined;
  message: string;
  /** the peer's address when the HTTP/2 transport had a TCP one */
  peer?: { address: string; port: number };
}

/** The status message grpc's server writes for a method it does not have (server.go). */
const UNKNOWN_METHOD = /^unknown (service|method) /;

/** Semantic conventions for a gRPC server span. */
export function toSpanRecord(e: ServerEvent): SpanRecord {
  const known = !(e.code === 12 && UNKNOWN_METHOD.test(e.message));
  const { name, attributes: methodAttrs } = methodAttributes(e.method, known);
  const attributes: Attributes = { ...methodAttrs };
  if (e.peer) {
    attributes["network.peer.address"] = e.peer.address;
    attributes["network.peer.port"] = e.peer.port;
  }
  let status: SpanRecord["status"] = { code: 0 };
  if (e.code !== undefined) {
    const o = outcome(e.code, e.message, "server");
    Object.assign(attributes, o.attributes);
    status = o.status;
  }
  return { ...recordContext(e), name, kind: SpanKind.SERVER, attributes, status, scope: SCOPE };
}
