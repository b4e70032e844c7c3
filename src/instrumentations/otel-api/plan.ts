/**
 * Where the OpenTelemetry API instrumentation (otel_api.bpf.c beside it) attaches: the entry of the no-op start
 * and ended functions of each copy of go.opentelemetry.io/auto/sdk's SDK the binary has, and the switches that
 * send the API's spans there. The span arrives marshalled by the application; the only struct fields are
 * trace.SpanContext's, for writing gotel's IDs into the application's span where the kernel allows it.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldsProgram } from "../../offsets/fields-program.ts";
import { resolveOffsets, type FieldNeed, type OffsetsSource, type TableLookup } from "../../offsets/resolver.ts";
import { fieldNeeds, goAtLeast, MIN_GO } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import { PT_LOAD } from "../../gobin/elf.ts";
import { typesRange } from "../../gobin/runtime-types.ts";
import { LEGACY_STARTED, legacyPlan, type LegacyPlan } from "./legacy-plan.ts";

export const OTEL = "go.opentelemetry.io/otel";
const SDK = "go.opentelemetry.io/auto/sdk";
const TRACE = `${OTEL}/trace`;
/** for the offsets generator: trace.SpanContext, where gotel writes its IDs into the application's spans; from
 * v1.33.0, the first release whose global tracer hands its spans to an agent */
export const FIELDS_PROGRAM: FieldsProgram = {
  module: TRACE, since: "v1.33.0", imports: [`"${TRACE}"`],
  body: "\t\tsink = append(sink, trace.NewSpanContext(trace.SpanContextConfig{Remote: len(os.Args) > 100}))",
};
const GLOBAL = `${OTEL}/internal/global`;

/** The SDKs that marshal a span for the agent: auto/sdk, and its copy in otel/trace (v1.35.1 on). */
const SDKS = [
  { name: "go.opentelemetry.io/auto/sdk", start: `${SDK}.(*tracer).start`, ended: `${SDK}.(*span).ended` },
  { name: "otel/trace's autoTracer", start: `${TRACE}.(*autoTracer).start`, ended: `${TRACE}.(*autoSpan).ended` },
] as const;

/**
 * The library's "an agent is attached" bools (`var autoInstEnabled = new(bool)`), documented as the agent's to set:
 * while false, the global tracer (otel >= v1.33.0) and the provider of a context without a span (otel/trace >=
 * v1.35.1) make non-recording spans. The variable holds the bool's address; in a binary without a symbol table
 * the function that is handed that address reports it (its probe, `program`).
 */
const SWITCHES = [
  { name: "the global tracer (otel.Tracer)", variable: `${GLOBAL}.autoInstEnabled`, reporter: `${GLOBAL}.(*tracer).newSpan`, program: "otel_api_global_flag" },
  { name: "a context's span's provider", variable: `${TRACE}.autoInstEnabled`, reporter: `${TRACE}.noopSpan.tracerProvider`, program: "otel_api_trace_flag" },
] as const;

export const PROGRAMS = { start: "otel_api_start", startWriting: "otel_api_start_inject", ended: "otel_api_ended" } as const;

/** C config field -> the Go struct field it holds the offset of: where the IDs are written */
const FIELDS = {
  span_context_trace_id: `${TRACE}.SpanContext.traceID`,
  span_context_span_id: `${TRACE}.SpanContext.spanID`,
  span_context_trace_flags: `${TRACE}.SpanContext.traceFlags`,
} as const;

/** What the writes read, for the offsets resolver and the table's generator: optional, as the writes are. */
export const NEEDS: readonly FieldNeed[] = fieldNeeds({ fields: FIELDS, optional: new Set(Object.keys(FIELDS)), modules: Object.fromEntries(Object.keys(FIELDS).map((k) => [k, TRACE])) });

export interface Switch {
  name: string;
  /** link-time address of the pointer variable, when the symbol table has it */
  variable?: number;
}

export interface ApiPlan {
  /** program -> sites; the start program is PROGRAMS.start, `writing` says where PROGRAMS.startWriting would go */
  programs: Record<string, number[]>;
  /** where gotel's IDs can be written into the application's span: SpanContext's offsets were found */
  writing?: { offsets: Record<string, number | undefined>; source: OffsetsSource };
  /** the SDKs probed, for the log */
  sdks: string[];
  switches: Switch[];
  /** the lowest PT_LOAD address: with /proc/PID/maps, where a PIE binary's variables are */
  lowestLoad: number;
  /** [runtime.types, runtime.etypes), link-time: how the kernel tells a context.valueCtx (trace_context.h) */
  types: { start: number; end: number };
  /** the global tracer of otel before v1.33.0 (global_tracer_legacy.h), its programs among `programs` */
  legacy?: LegacyPlan;
}

export const present = (exe: GoExecutable): boolean =>
  SDKS.some((s) => exe.functions().get(s.start) !== undefined) || exe.functions().get(`${GLOBAL}.(*tracer).Start`) !== undefined;

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): ApiPlan | { skipped: string; absent?: true } {
  if (!goAtLeast(exe.goVersion, MIN_GO)) return { skipped: `Go ${exe.goVersion} is older than ${MIN_GO.join(".")}` };
  const sdks = SDKS.filter((s) => exe.entrySite(s.start) && exe.entrySite(s.ended));
  const legacy = legacyPlan(exe);
  if (legacy && "missing" in legacy) return { skipped: `${OTEL} ${exe.moduleVersion(OTEL) ?? ""}: its global tracer lacks ${legacy.missing}` };
  if (sdks.length === 0 && !legacy) {
    const otel = exe.moduleVersion(OTEL);
    return otel
      ? { skipped: `${OTEL} ${otel} hands its spans to no agent and has no global tracer gotel knows` }
      : { skipped: `${SDK} is not in the binary (it does not use the OpenTelemetry Go API)`, absent: true };
  }
  const programs: Record<string, number[]> = {
    ...(sdks.length ? { [PROGRAMS.start]: sdks.map((s) => exe.entrySite(s.start)!.offset), [PROGRAMS.ended]: sdks.map((s) => exe.entrySite(s.ended)!.offset) } : {}),
    ...legacy?.programs,
  };
  const variables = sdks.length ? symbolValues(exe, SWITCHES.map((s) => s.variable)) : new Map<string, number>();
  const switches: Switch[] = [];
  for (const s of SWITCHES) {
    const reporter = exe.entrySite(s.reporter);
    if (!reporter) continue; // a release without this hook
    const variable = variables.get(s.variable);
    if (variable === undefined) programs[s.program] = [reporter.offset];
    switches.push({ name: s.name, ...(variable === undefined ? {} : { variable }) });
  }
  const lowestLoad = Math.min(...exe.elf.segments.filter((g) => g.type === PT_LOAD).map((g) => g.vaddr));
  const types = typesRange(exe.elf, exe.goVersion);
  if (!types) return { skipped: "runtime.firstmoduledata was not found: gotel cannot tell which contexts carry the application's spans" };
  // the writes are the auto/sdk path's
  const r = sdks.length ? resolveOffsets(exe, NEEDS, table) : undefined;
  const writing = r && "offsets" in r && Object.values(r.offsets).every((o) => o !== undefined) ? { offsets: r.offsets, source: r.source } : undefined;
  return { programs, ...(writing ? { writing } : {}), sdks: sdks.map((s) => s.name), switches, lowestLoad, types, ...(legacy ? { legacy } : {}) };
}

/** The values of a few symbols of .symtab (none when stripped). */
function symbolValues(exe: GoExecutable, names: readonly string[]): Map<string, number> {
  const found = new Map<string, number>();
  exe.elf.walkSymbols(".symtab", (r) => {
    for (const n of names) if (r.value !== 0 && r.nameIs(n)) found.set(n, r.value);
  });
  return found;
}

export function readiness(exe: GoExecutable): Readiness {
  const p = plan(exe);
  if ("skipped" in p) return { status: "skipped", reason: p.skipped };
  const legacy = p.legacy
    ? `the global tracer of ${OTEL} ${exe.moduleVersion(OTEL) ?? ""} (before v1.33.0) read from its calls: (*tracer).Start's entry and ${p.programs[LEGACY_STARTED.plain]!.length} return sites (single-stepped on amd64), the entries of its span's methods; gotel's IDs written into those spans where the kernel allows it`
    : undefined;
  if (p.sdks.length === 0) return { status: "ready", reason: legacy! };
  const switches = p.switches.map((s) => `${s.name} switched on ${s.variable === undefined ? "when its first span starts (no symbol table: that span is not recorded)" : "at attach"}`);
  return {
    status: "ready",
    reason: `spans of ${p.sdks.join(" and ")} at its (*tracer).start and (*span).ended entries (no return probes)` +
      (switches.length ? `; ${switches.join("; ")}` : "") +
      (p.writing ? "; gotel's IDs written into the application's spans where the kernel allows it" : "; the application's spans keep a zero span context (trace.SpanContext's offsets not found)") +
      (legacy ? `; and ${legacy}` : switches.length ? "" : "; no global tracer hook: only spans made through go.opentelemetry.io/auto/sdk itself"),
    ...(p.writing ? { offsetsSource: p.writing.source } : {}),
  };
}
