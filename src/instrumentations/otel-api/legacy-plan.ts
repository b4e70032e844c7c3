/**
 * Where gotel attaches to the global tracer of go.opentelemetry.io/otel before v1.33.0 (global_tracer_legacy.h):
 * `(*tracer).Start`'s entry and returns and the `(*nonRecordingSpan)` method wrappers, and the code addresses the
 * kernel and user space tell the API's option types by. Those types are told apart by code, not by names: an
 * option is an interface whose itab's first method says its type (attributeOption's applySpanStart/applyEvent),
 * or a closure (spanOptionFunc, tracerOptionFunc) whose code pointer says which With… made it. A closure is a
 * function of its own for every place the compiler inlined its With… into. Since Go 1.21 it is named after it
 * (`main.handler.WithSpanKind.func1`), so those are found by the end of their names; Go 1.19 and 1.20 name it
 * after the caller alone (`main.handler.func1`), so there it is found by its file and first line in the pclntab
 * (trace/config.go, a line closure-lines.json gives for that release). The pclntab has both in stripped binaries.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import { readPclntabEntries } from "../../gobin/pclntab.ts";
import { goAtLeast } from "../../probes/plan.ts";
import CLOSURE_LINES from "./closure-lines.json";

const OTEL = "go.opentelemetry.io/otel";
const TRACE = `${OTEL}/trace`;
const GLOBAL = `${OTEL}/internal/global`;
const START = `${GLOBAL}.(*tracer).Start`;
/** the hook of v1.33.0 on: its presence means the auto/sdk path (plan.ts) */
const NEW_SPAN = `${GLOBAL}.(*tracer).newSpan`;
const SPAN = `${GLOBAL}.(*nonRecordingSpan)`;

/** program -> the nonRecordingSpan method whose wrapper's entry it probes */
const METHODS = {
  otel_api_legacy_attributes: "SetAttributes",
  otel_api_legacy_name: "SetName",
  otel_api_legacy_status: "SetStatus",
  otel_api_legacy_event: "AddEvent",
  otel_api_legacy_error: "RecordError",
  otel_api_legacy_end: "End",
} as const;

/** the program at Start's returns, and its variant that writes gotel's IDs into the application's span */
export const LEGACY_STARTED = { plain: "otel_api_legacy_started", writing: "otel_api_legacy_started_inject" } as const;

/** What a closure's code pointer means (enum otel_api_legacy_closure for the first two, which the kernel needs). */
export type ClosureKind = "links" | "newRoot" | "kind" | "version" | "schema";
const CLOSURES: readonly [RegExp, ClosureKind][] = [
  [/\.WithLinks\.(func)?\d+$/, "links"],
  [/\.WithNewRoot\.(func)?\d+$/, "newRoot"],
  [/\.WithSpanKind\.(func)?\d+$/, "kind"],
  [/\.WithInstrumentationVersion\.(func)?\d+$/, "version"],
  [/\.WithSchemaURL\.(func)?\d+$/, "schema"],
];

export interface LegacyPlan {
  programs: Record<string, number[]>;
  /** link-time addresses (add the process's load bias) */
  spanMethod: number;
  attributesStart: number[];
  attributesEvent: number[];
  /** option methods that are WithTimestamp's (timestampOption's), for user space */
  timestamp: number[];
  closures: { entry: number; kind: ClosureKind }[];
  /** internal/global's tracer and nonRecordingSpan begin with an embedded interface (embedded.Tracer,
   * embedded.Span) from v1.20.0 on: where their first own field (name, sc) is */
  embedded: number;
}

/** The legacy plan, or undefined when the binary has no such global tracer (none, or v1.33.0 and later). */
export function legacyPlan(exe: GoExecutable): LegacyPlan | { missing: string } | undefined {
  const fns = exe.functions();
  if (!fns.get(START) || fns.get(NEW_SPAN)) return undefined;
  const start = exe.probeSites(START);
  const addEvent = fns.get(`${SPAN}.AddEvent`);
  if (!start || start.returns.length === 0 || !addEvent) return { missing: `${START}'s returns or ${SPAN}.AddEvent` };
  const programs: Record<string, number[]> = { otel_api_legacy_start: [start.entry.offset], [LEGACY_STARTED.plain]: start.returns };
  for (const [program, method] of Object.entries(METHODS)) {
    const site = exe.entrySite(`${SPAN}.${method}`);
    if (site) programs[program] = [site.offset];
  }
  if (!programs.otel_api_legacy_end) return { missing: `${SPAN}.End` };
  const entries = (...names: string[]): number[] => names.flatMap((n) => fns.get(n)?.entry ?? []);
  const closures = goAtLeast(exe.goVersion, [1, 21]) ? closuresByName(exe) : closuresByLine(exe);
  const otel = exe.moduleVersion(OTEL) ?? "";
  return {
    programs,
    spanMethod: addEvent.entry,
    attributesStart: entries(`${TRACE}.attributeOption.applySpanStart`, `${TRACE}.(*attributeOption).applySpanStart`),
    attributesEvent: entries(`${TRACE}.attributeOption.applyEvent`, `${TRACE}.(*attributeOption).applyEvent`),
    timestamp: [...fns.withPrefix(`${TRACE}.timestampOption.`), ...fns.withPrefix(`${TRACE}.(*timestampOption).`)].map((f) => f.entry),
    closures,
    embedded: goAtLeast(otel.replace(/^v/, ""), [1, 20]) ? 16 : 0,
  };
}

function closuresByName(exe: GoExecutable): LegacyPlan["closures"] {
  const closures: LegacyPlan["closures"] = [];
  for (const f of exe.functions().all()) {
    const kind = CLOSURES.find(([re]) => re.test(f.name))?.[1];
    if (kind) closures.push({ entry: f.entry, kind });
  }
  return closures;
}

const CONFIG_GO = /go\.opentelemetry\.io\/otel\/trace(@[^/]+)?\/config\.go$/;
const CLOSURE_NAME = /\.(func)?\d+$/;

/** The closures whose code is trace/config.go's at a line the table names for the binary's otel/trace. */
function closuresByLine(exe: GoExecutable): LegacyPlan["closures"] {
  const lines = (CLOSURE_LINES.lines as Record<string, Record<string, number>>)[exe.moduleVersion(TRACE) ?? ""];
  if (!lines) return [];
  const closures: LegacyPlan["closures"] = [];
  for (const e of readPclntabEntries(exe.elf)) {
    if (!CLOSURE_NAME.test(e.name) || !CONFIG_GO.test(e.file() ?? "")) continue;
    const option = lines[String(e.line())];
    const kind = option === undefined ? undefined : (CLOSURE_LINES.options[option] as ClosureKind | undefined);
    if (kind) closures.push({ entry: e.entry, kind });
  }
  return closures;
}
