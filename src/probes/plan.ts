/**
 * Whether a probe can attach to an executable, and where: its function's entry and return sites, the entry of
 * any extra function it probes, and the struct offsets it reads (src/offsets/resolver.ts). Pure: no kernel.
 */
import type { GoExecutable, ProbeSites } from "../gobin/analyze.ts";
import type { SuccessShape } from "../gobin/return-sites.ts";
import { resolveOffsets, type FieldNeed, type TableLookup } from "../offsets/resolver.ts";
import type { OffsetsSource } from "../offsets/resolver.ts";
import type { Readiness } from "./instrumentation.ts";

/** Go versions whose register ABI and struct layouts gotel knows */
export const MIN_GO: [number, number] = [1, 19];

export interface ProbePlan {
  sites: ProbeSites;
  /** program -> entry site of an extra function, undefined when the binary does not have it */
  extra: Record<string, ProbeSites["entry"] | undefined>;
  /** config struct member -> offset; undefined = the field does not exist in this version */
  offsets: Record<string, number | undefined>;
  offsetsSource: OffsetsSource;
  /** table-interpolated: which built versions stood in for the binary's ("Go 1.23.5 is not in the table; …") */
  offsetsNote?: string;
}

/** `absent`: the binary does not have the probed function at all (it does not use that library): not a problem */
export type PlanResult = { plan: ProbePlan } | { skipped: string; absent?: true };

export interface ProbeSpec {
  /** the function whose entry and returns are probed */
  function: string;
  /** why a binary would lack it, for the skip reason */
  absent: string;
  /** program -> function probed at its entry only, when present */
  extra?: Record<string, string>;
  /** config struct member -> "import/path.Type.field" */
  fields: Record<string, string>;
  /** members whose field may be missing */
  optional: ReadonlySet<string>;
  /** member -> the module its field belongs to, when not the standard library */
  modules?: Record<string, string>;
}

export function goAtLeast(version: string, [major, minor]: [number, number]): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m !== null && (Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor));
}

export function fieldNeeds(spec: Pick<ProbeSpec, "fields" | "optional" | "modules">): FieldNeed[] {
  return Object.entries(spec.fields).map(([key, field]) => ({ key, field, module: spec.modules?.[key] ?? "std", optional: spec.optional.has(key) }));
}

export function planProbe(exe: GoExecutable, spec: ProbeSpec, table: TableLookup | undefined): PlanResult {
  if (!goAtLeast(exe.goVersion, MIN_GO)) return { skipped: `Go ${exe.goVersion} is older than ${MIN_GO.join(".")}` };
  const sites = exe.probeSites(spec.function);
  if (!sites) return { skipped: `${spec.function} is not in the binary (${spec.absent})`, absent: true };
  const r = resolveOffsets(exe, fieldNeeds(spec), table);
  if ("skipped" in r) return r;
  const extra: ProbePlan["extra"] = {};
  for (const [program, fn] of Object.entries(spec.extra ?? {})) extra[program] = exe.entrySite(fn);
  return { plan: { sites, extra, offsets: r.offsets, offsetsSource: r.source, ...(r.note ? { offsetsNote: r.note } : {}) } };
}

/** Where a plan's offsets came from, as readiness (inspect) and the `attached` log line show it. */
export function offsetsOrigin(plan: ProbePlan): Required<Pick<Readiness, "offsetsSource">> & Pick<Readiness, "offsetsNote"> {
  return { offsetsSource: plan.offsetsSource, ...(plan.offsetsNote ? { offsetsNote: plan.offsetsNote } : {}) };
}

/** How a function is probed at its entry and returns, for readiness: "F: entry (emulated) and 3 return sites". */
export function entryAndReturns(fn: string, sites: ProbeSites): string {
  const n = sites.returns.length;
  return `${fn}: entry ${sites.entry.emulated ? "(emulated)" : "(single-stepped)"} and ${n} return site${n === 1 ? "" : "s"}`;
}

/**
 * Where a function's span ends: its success path at `successProgram`'s emulated sites when the code has the
 * shape (amd64; src/gobin/return-sites.ts findSuccessEnd), every other path at `returnProgram`'s RETs; else
 * every RET. `how` says which, for readiness.
 */
export function spanEnds(exe: GoExecutable, fn: string, shape: SuccessShape, returns: readonly number[], successProgram: string, returnProgram: string): { programs: Record<string, number[]>; how: string } {
  const s = exe.successEnd(fn, shape);
  const ret = exe.arch === "amd64" ? "single-stepped" : "simulated";
  if (!s || "missing" in s) {
    return { programs: { [returnProgram]: [...returns] }, how: `at ${plural(returns.length, "return site")} (${ret}${s && exe.arch === "amd64" ? `: ${s.missing}` : ""})` };
  }
  const skip = new Set(s.returns);
  const rest = returns.filter((r) => !skip.has(r));
  const at = shape.kind === "result-check" ? `the JE checking ${shape.callee}'s error` : `the call${s.sites.length === 1 ? "" : "s"} of ${shape.callee}`;
  return {
    programs: { [successProgram]: s.sites, [returnProgram]: rest },
    how: `success at ${at} (emulated), other paths at ${plural(rest.length, "return site")} (${ret})`,
  };
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}
