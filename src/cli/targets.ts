import { MAX_PID, type EnvConfig } from "../config/env.ts";
import type { TargetSpec } from "../discovery/watcher.ts";
import { UsageError } from "./usage.ts";

/** Flags shared by run, trace: --pid N (repeatable), --exe PATH (repeatable), --all. */
export const TARGET_FLAGS = {
  pid: { type: "string", multiple: true },
  exe: { type: "string", multiple: true },
  all: { type: "boolean" },
} as const;

/** A --pid value: decimal digits, 1 to Linux's PID_MAX_LIMIT (2^22). */
export function parsePid(text: string, flag = "--pid"): number {
  const n = /^[1-9]\d*$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(n <= MAX_PID)) throw new UsageError(`${flag} needs a process id from 1 to ${MAX_PID}, got '${text}'`);
  return n;
}

/**
 * Targets from the flags, or else from upstream's OTEL_GO_AUTO_TARGET_PID / OTEL_GO_AUTO_TARGET_EXE. `raw` is
 * the environment as given, to tell an empty variable (which counts as unset) from an absent one.
 */
export function targetSpec(
  values: { pid?: string[]; exe?: string[]; all?: boolean },
  env: EnvConfig,
  raw: Record<string, string | undefined> = process.env,
): TargetSpec {
  const pids = (values.pid ?? []).map((p) => parsePid(p));
  const exes = values.exe ?? [];
  for (const e of exes) if (e.trim() === "") throw new UsageError("--exe needs the path of an executable, got ''");
  const all = values.all === true;
  if (pids.length || exes.length || all) return { pids, exes, all };
  if (env.OTEL_GO_AUTO_TARGET_PID !== undefined || env.OTEL_GO_AUTO_TARGET_EXE !== undefined) {
    return {
      pids: env.OTEL_GO_AUTO_TARGET_PID !== undefined ? [env.OTEL_GO_AUTO_TARGET_PID] : [],
      exes: env.OTEL_GO_AUTO_TARGET_EXE !== undefined ? [env.OTEL_GO_AUTO_TARGET_EXE] : [],
      all: false,
    };
  }
  const empty = ["OTEL_GO_AUTO_TARGET_PID", "OTEL_GO_AUTO_TARGET_EXE"].filter((n) => raw[n] !== undefined && raw[n]!.trim() === "");
  const why = empty.length ? ` (${empty.join(" and ")} ${empty.length > 1 ? "are" : "is"} set but empty, which counts as unset)` : "";
  throw new UsageError(`no target${why}: give --pid N, --exe PATH or --all (or set OTEL_GO_AUTO_TARGET_PID / OTEL_GO_AUTO_TARGET_EXE)`);
}
