import type { EnvConfig } from "../config/env.ts";
import type { TargetSpec } from "../discovery/watcher.ts";
import { UsageError } from "./usage.ts";

/** Flags shared by run, trace: --pid N (repeatable), --exe PATH (repeatable), --all. */
export const TARGET_FLAGS = {
  pid: { type: "string", multiple: true },
  exe: { type: "string", multiple: true },
  all: { type: "boolean" },
} as const;

/** Targets from the flags, or else from upstream's OTEL_GO_AUTO_TARGET_PID / OTEL_GO_AUTO_TARGET_EXE. */
export function targetSpec(values: { pid?: string[]; exe?: string[]; all?: boolean }, env: EnvConfig): TargetSpec {
  const pids = (values.pid ?? []).map((p) => {
    if (!/^[1-9]\d*$/.test(p)) throw new UsageError(`--pid needs a process id, got '${p}'`);
    return Number(p);
  });
  const exes = values.exe ?? [];
  const all = values.all === true;
  if (pids.length || exes.length || all) return { pids, exes, all };
  if (env.OTEL_GO_AUTO_TARGET_PID !== undefined || env.OTEL_GO_AUTO_TARGET_EXE !== undefined) {
    return {
      pids: env.OTEL_GO_AUTO_TARGET_PID !== undefined ? [env.OTEL_GO_AUTO_TARGET_PID] : [],
      exes: env.OTEL_GO_AUTO_TARGET_EXE !== undefined ? [env.OTEL_GO_AUTO_TARGET_EXE] : [],
      all: false,
    };
  }
  throw new UsageError("no target: give --pid N, --exe PATH or --all (or set OTEL_GO_AUTO_TARGET_PID / OTEL_GO_AUTO_TARGET_EXE)");
}
