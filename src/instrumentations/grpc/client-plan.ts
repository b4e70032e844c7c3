/**
 * gRPC client spans (grpc_client.bpf.c beside it): one CLIENT span per RPC made through google.golang.org/grpc,
 * unary and streaming alike, from newClientStream to the stream's finish (or to newClientStream's return when
 * the call failed before it had a stream); and, where the kernel allows writing into the target, the call's
 * traceparent added to its HEADERS as grpc's loopy writer HPACK-encodes them.
 */
import { SpanKind, type Attributes } from "@opentelemetry/api";
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import { fieldNeeds, offsetsOrigin, planProbe, type ProbeSpec } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import { recordContext, type SpanEventContext } from "../../probes/span-event.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { splitHostPort } from "../http.ts";
import { GRPC, SCOPE, STATUS_FIELDS, TRANSPORT, UNKNOWN, grpcVersion, methodAttributes, outcome } from "./grpc.ts";

export const NEW_CLIENT_STREAM = `${GRPC}.newClientStream`;
const WITH_RETRY = `${GRPC}.(*clientStream).withRetry`;
const FINISH = `${GRPC}.(*clientStream).finish`;

/**
 * injection and same-host linking: where a call's header fields are made, encoded, and each field written. The
 * fields are read where NewStream tests createHeaderFields' error (an emulated Jcc with the results still in
 * their registers), else at createHeaderFields' RETs (single-stepped on amd64).
 */
const CREATE_HEADER_FIELDS = `${TRANSPORT}.(*http2Client).createHeaderFields`;
const NEW_TRANSPORT_STREAM = `${TRANSPORT}.(*http2Client).NewStream`;
const WRITE_HEADER = `${TRANSPORT}.(*loopyWriter).writeHeader`;
const WRITE_FIELD = "golang.org/x/net/http2/hpack.(*Encoder).WriteField";

/** C config field -> the Go struct field it holds the offset of */
export const FIELDS = {
  client_conn_target: `${GRPC}.ClientConn.target`,
  error_string_s: "errors.errorString.s",
  loopy_hbuf: `${TRANSPORT}.loopyWriter.hBuf`,
  buffer_buf: "bytes.Buffer.buf",
  header_field_name: "golang.org/x/net/http2/hpack.HeaderField.Name",
  header_field_sensitive: "golang.org/x/net/http2/hpack.HeaderField.Sensitive",
  ...STATUS_FIELDS,
} as const;

/** only injection reads these: without them, calls carry no traceparent */
const INJECT_FIELDS = ["loopy_hbuf", "buffer_buf", "header_field_name", "header_field_sensitive"];

/**
 * errors.errorString (io.EOF's type) and bytes.Buffer are the same in every Go release: read from grpc's entries
 * in the table; hpack's HeaderField is x/net's.
 */
const MODULES: Record<string, string> = Object.fromEntries(
  Object.keys(FIELDS).map((k) => [k, k.startsWith("header_field_") ? "golang.org/x/net" : GRPC]),
);

export const PROGRAMS = {
  newStream: "grpc_client_new_stream", withRetry: "grpc_client_with_retry", finish: "grpc_client_finish",
  newStreamReturn: "grpc_client_new_stream_return",
  // write into the target: loaded only where the kernel allows it (src/ebpf/kernel-checks.ts)
  injectFields: "grpc_client_inject_fields", injectHeader: "grpc_client_inject_header", injectField: "grpc_client_inject_field",
  // same-host linking, where writing is refused: the same sites, nothing written
  linkFields: "grpc_client_link_fields", linkHeader: "grpc_client_link_header",
} as const;

const SPEC: ProbeSpec = {
  function: NEW_CLIENT_STREAM, absent: "it makes no gRPC calls", fields: FIELDS, optional: new Set(INJECT_FIELDS), modules: MODULES,
  extra: { [PROGRAMS.withRetry]: WITH_RETRY, [PROGRAMS.finish]: FINISH, [PROGRAMS.injectHeader]: WRITE_HEADER, [PROGRAMS.injectField]: WRITE_FIELD },
};

/** What the probe reads, for the offsets resolver and the table's generator. */
export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

/** The binary makes gRPC calls at all (whether the object is worth loading). */
export const present = (exe: GoExecutable): boolean => exe.functions().get(NEW_CLIENT_STREAM) !== undefined;

export interface ClientPlan {
  offsets: Record<string, number | undefined>;
  programs: Record<string, number[]>;
  /** the injection's programs, attached where the kernel allows writing; undefined when this binary lacks a part */
  inject?: Record<string, number[]>;
  /** same-host linking's programs, attached where writing is refused and it is on; undefined when a part is missing */
  link?: Record<string, number[]>;
  offsetsSource: ReturnType<typeof offsetsOrigin>;
  entryEmulated: boolean;
  /** where a call's header fields are read, for readiness */
  fieldsAt: string;
}

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): ClientPlan | { skipped: string; absent?: true } {
  const r = planProbe(exe, SPEC, table);
  if ("skipped" in r) return r;
  const v = grpcVersion(exe);
  if ("skipped" in v) return v;
  const [withRetry, finish] = [r.plan.extra[PROGRAMS.withRetry], r.plan.extra[PROGRAMS.finish]];
  if (!withRetry || !finish) return { skipped: `${!withRetry ? WITH_RETRY : FINISH} is not in the binary: gotel cannot follow a call's stream` };
  const { header_field_sensitive: sensitive, ...offsets } = r.plan.offsets;
  // hpack.HeaderField is {Name, Value string; Sensitive bool}: its size is Sensitive's offset rounded up to 8
  const config = { ...offsets, header_field_size: sensitive === undefined ? undefined : Math.ceil((sensitive + 1) / 8) * 8 };
  const tests = exe.resultTests(NEW_TRANSPORT_STREAM, CREATE_HEADER_FIELDS, "DI");
  const fields = Array.isArray(tests) ? tests : exe.probeSites(CREATE_HEADER_FIELDS)?.returns;
  const [header, field] = [r.plan.extra[PROGRAMS.injectHeader], r.plan.extra[PROGRAMS.injectField]];
  const injects = fields?.length && header && field && INJECT_FIELDS.every((k) => r.plan.offsets[k] !== undefined);
  return {
    offsets: config,
    programs: {
      [PROGRAMS.newStream]: [r.plan.sites.entry.offset],
      [PROGRAMS.withRetry]: [withRetry.offset],
      [PROGRAMS.finish]: [finish.offset],
      [PROGRAMS.newStreamReturn]: r.plan.sites.returns,
    },
    ...(injects ? { inject: { [PROGRAMS.injectFields]: fields, [PROGRAMS.injectHeader]: [header.offset], [PROGRAMS.injectField]: [field.offset] } } : {}),
    ...(fields?.length && header && r.plan.offsets.header_field_name !== undefined
      ? { link: { [PROGRAMS.linkFields]: fields, [PROGRAMS.linkHeader]: [header.offset] } } : {}),
    offsetsSource: offsetsOrigin(r.plan),
    entryEmulated: r.plan.sites.entry.emulated,
    fieldsAt: Array.isArray(tests) ? "NewStream's test of createHeaderFields' error (emulated)" : `createHeaderFields' RETs (${exe.arch === "amd64" ? "single-stepped" : "simulated"})`,
  };
}

export function readiness(exe: GoExecutable): Readiness {
  const p = plan(exe);
  if ("skipped" in p) return { status: "skipped", reason: p.skipped };
  const n = p.programs[PROGRAMS.newStreamReturn]!.length;
  return {
    status: "ready",
    reason: `${NEW_CLIENT_STREAM}: entry ${p.entryEmulated ? "(emulated)" : "(single-stepped)"} and ${n} return site${n === 1 ? "" : "s"} (calls that fail before their stream); ` +
      "ends at (*clientStream).finish; " +
      (p.inject ? "traceparent injection into the HEADERS at (*loopyWriter).writeHeader" : "createHeaderFields, writeHeader, hpack's WriteField or their offsets not found: no traceparent injection") +
      (p.link ? "; where writing is refused, same-host linking files each call's stream at writeHeader's entry" : "; no same-host linking (createHeaderFields, writeHeader or hpack's HeaderField not found)") +
      (p.inject || p.link ? `; header fields read at ${p.fieldsAt}` : ""),
    ...p.offsetsSource,
  };
}

/** The raw event as the kernel sent it. */
export interface ClientEvent extends SpanEventContext {
  method: string;
  target: string;
  /** the name of the error's Go type; undefined when the call ended without one */
  errorType?: string;
  /** read as if the error were a *status.Error */
  code: number;
  message: string;
  /** read as if the error were an *errors.errorString */
  errorText: string;
}

/**
 * server.address and server.port from a dial target, as the conventions read gRPC's naming: host:port (with
 * dns:// or passthrough:// before it), a unix socket's path; anything else is the whole target without a port.
 */
export function serverOfTarget(target: string): { address: string; port?: number } {
  const unix = /^unix(?:-abstract)?:(?:\/\/)?(.+)$/.exec(target);
  if (unix) return { address: unix[1]! };
  const named = /^(?:dns|passthrough):(?:\/\/[^/]*\/)?(.+)$/.exec(target);
  const hostPort = named ? named[1]! : /^[a-z][a-z0-9+.-]*:/i.test(target) && !/^[^:]+:\d+$/.test(target) ? undefined : target;
  if (hostPort === undefined || hostPort.includes(",") || hostPort.includes("/")) return { address: target };
  const { host, port } = splitHostPort(hostPort);
  return host ? { address: host, ...(port !== undefined ? { port } : {}) } : { address: target };
}

/** The call's status code as grpc's status.Code(err) gives it. */
function codeOf(e: ClientEvent): number {
  if (e.errorType === undefined) return 0;
  if (e.errorType === "*status.Error") return e.code;
  if (e.errorType === "*errors.errorString" && e.errorText === "EOF") return 0; // io.EOF: the stream ended well
  return UNKNOWN;
}

/** Semantic conventions for a gRPC client span. */
export function toSpanRecord(e: ClientEvent): SpanRecord {
  const { name, attributes: methodAttrs } = methodAttributes(e.method, true);
  const attributes: Attributes = { ...methodAttrs };
  const server = serverOfTarget(e.target);
  attributes["server.address"] = server.address;
  if (server.port !== undefined) attributes["server.port"] = server.port;
  const code = codeOf(e);
  const o = outcome(code, e.errorType === "*status.Error" ? e.message : "", "client");
  Object.assign(attributes, o.attributes);
  // an error that is not a gRPC status: its Go type says what it was
  if (code === UNKNOWN && e.errorType !== "*status.Error" && e.errorType) attributes["error.type"] = e.errorType;
  return { ...recordContext(e), name, kind: SpanKind.CLIENT, attributes, status: o.status, scope: SCOPE };
}
