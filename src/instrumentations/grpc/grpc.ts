/**
 * What gRPC's server and client instrumentations share: the module and its version gates, the status fields
 * both read (grpc_status.h), the status codes and how the semantic conventions treat them, and the method name.
 *
 * Semantic conventions: v1.45.0's stable RPC conventions (rpc.system.name, rpc.method = "pkg.Service/Method",
 * rpc.status_code = "NOT_FOUND", error.type), plus the older experimental attributes the system gotel
 * replaces emits (rpc.system, rpc.service, rpc.grpc.status_code), so dashboards built on those keep working.
 */
import { SpanStatusCode } from "@opentelemetry/api";
import type { FieldsProgram } from "../../offsets/fields-program.ts";
import { compareVersions } from "../../offsets/table.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";

export const GRPC = "google.golang.org/grpc";
/** the oldest release gotel instruments */
export const MIN_GRPC = "v1.40.0";
/** upstream's instrumentation scope for gRPC */
export const SCOPE = "go.opentelemetry.io/auto/google.golang.org/grpc";

export const TRANSPORT = "google.golang.org/grpc/internal/transport";
const STATUS = "google.golang.org/grpc/internal/status";
/** genproto's google.rpc.Status; read from the DWARF, or from the table built with grpc's own required genproto
 * (its generated layout — state, sizeCache, unknownFields, Code, Message — is the same in every genproto since
 * 2020, the oldest grpc v1.40 accepts) */
const SPB = "google.golang.org/genproto/googleapis/rpc/status";

export const STATUS_FIELDS = {
  "status.error_s": `${STATUS}.Error.s`,
  "status.status_s": `${STATUS}.Status.s`,
  "status.spb_code": `${SPB}.Status.Code`,
  "status.spb_message": `${SPB}.Status.Message`,
} as const;

/** for the offsets generator: its transport's streams, the status it sends and returns (with genproto's
 * google.rpc.Status at the version grpc requires, and net.TCPAddr and errors.errorString, which no Go release
 * changed) */
export const FIELDS_PROGRAM: FieldsProgram = {
  module: GRPC, since: MIN_GRPC, imports: ['"context"', '"net"', `"${GRPC}"`],
  body: "\t\ts := grpc.NewServer()\n\t\tlis, _ := net.Listen(\"tcp\", os.Args[1])\n\t\t_ = s.Serve(lis)\n" +
    "\t\tcc, _ := grpc.Dial(os.Args[2], grpc.WithInsecure())\n\t\tsink = append(sink, cc.Invoke(context.Background(), os.Args[3], nil, nil))",
};

/** grpc's version in the binary, when it is a release gotel knows how to read (>= MIN_GRPC); else why not. */
export function grpcVersion(exe: GoExecutable): { version: string } | { skipped: string } {
  const version = exe.moduleVersion(GRPC);
  if (version === undefined) return { skipped: `the version of ${GRPC} is not in the binary's build info` };
  if (!/^v\d+\.\d+\.\d+/.test(version)) return { skipped: `${GRPC} ${version} is not a release gotel knows` };
  if (compareVersions(version, MIN_GRPC) < 0) return { skipped: `${GRPC} ${version} is older than ${MIN_GRPC}, the oldest gotel instruments` };
  return { version };
}

export const CODE_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
  "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
] as const;
export const UNKNOWN = 2;

/** The conventions' name of a code ("NOT_FOUND"); a code outside gRPC's list as its number. */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? String(code);
}

/** Server side: only the codes that mean the server failed are errors (semantic conventions). */
const SERVER_ERRORS: ReadonlySet<number> = new Set([2, 4, 12, 13, 14, 15]);

/** Span status and the attributes of a call's outcome, for either side. */
export function outcome(code: number, message: string, side: "client" | "server"): {
  attributes: Record<string, string | number>;
  status: { code: SpanStatusCode; message?: string };
} {
  const attributes: Record<string, string | number> = { "rpc.status_code": codeName(code), "rpc.grpc.status_code": code };
  const error = side === "client" ? code !== 0 : SERVER_ERRORS.has(code);
  if (!error) return { attributes, status: { code: SpanStatusCode.UNSET } };
  attributes["error.type"] = codeName(code);
  return { attributes, status: { code: SpanStatusCode.ERROR, ...(message ? { message } : {}) } };
}

/**
 * "/pkg.Service/Method" -> the attributes naming it and the span name ("pkg.Service/Method"). A method the
 * server does not know is `_OTHER` (its original in rpc.method_original) and the span is named `grpc`.
 */
export function methodAttributes(fullMethod: string, known: boolean): { name: string; attributes: Record<string, string> } {
  const m = fullMethod.startsWith("/") ? fullMethod.slice(1) : fullMethod;
  const slash = m.lastIndexOf("/");
  const attributes: Record<string, string> = { "rpc.system.name": "grpc", "rpc.system": "grpc" };
  if (!known || slash <= 0) {
    attributes["rpc.method"] = "_OTHER";
    if (m) attributes["rpc.method_original"] = m;
    return { name: "grpc", attributes };
  }
  attributes["rpc.method"] = m;
  attributes["rpc.service"] = m.slice(0, slash);
  return { name: m, attributes };
}
