/**
 * Before `run` or `trace` loads anything into the kernel: when the targets are only pids (nothing to wait for) and
 * not one of those processes can be instrumented — not a Go program, or a Go program none of whose libraries
 * gotel instruments — say why in one line at once instead of running with nothing attached. Whether a process
 * can be instrumented is what the registry's readiness says, as the agent decides it when attaching. A pid that
 * cannot be told about here (gone, unreadable) is left to the agent, which has its own errors for those.
 */
import { closeSync, openSync } from "node:fs";
import { readProcessResult, readStatus } from "../discovery/proc.ts";
import type { TargetSpec } from "../discovery/watcher.ts";
import { GotelError } from "../errors.ts";
import { GoExecutable } from "../gobin/analyze.ts";
import { INSTRUMENTATIONS, linksModuleOf, notInstrumented, type Instrumentation } from "../instrumentations/index.ts";
import { lendExecutable } from "../probes/executable-plans.ts";

/**
 * Why process `given` cannot be instrumented, or undefined when it can (or this cannot tell). `keep` takes the
 * executable of one that can, analysed and still open, instead of closing it.
 */
export function whyNotTraceable(
  given: number,
  instrumentations: readonly Instrumentation[] = INSTRUMENTATIONS,
  keep?: (file: string, exe: GoExecutable) => void,
): string | undefined {
  const pid = readStatus(given)?.tgid;
  if (pid === undefined) return undefined;
  const r = readProcessResult(pid, { nsPid: false });
  if (!r.ok) return undefined;
  const file = `/proc/${pid}/exe`;
  try {
    closeSync(openSync(file, "r"));
  } catch {
    return undefined;
  }
  const name = `process ${pid} (${r.info.exePath}${pid !== given ? `, the process of thread ${given}` : ""})`;
  let exe: GoExecutable;
  try {
    exe = GoExecutable.open(file);
  } catch (e) {
    let message = e instanceof GotelError ? e.message : String(e);
    if (message.startsWith(`${file}: `)) message = message.slice(file.length + 2);
    const notGo = "not a Go executable";
    return message.startsWith(notGo)
      ? `${name} is not a Go program${message.slice(notGo.length)}`
      : `${name}: its executable cannot be read as a Go program (${message})`;
  }
  let kept = false;
  try {
    const reasons: string[] = [];
    for (const i of instrumentations) {
      if (!linksModuleOf(exe, i)) continue;
      const r = i.readiness(exe);
      if (r.status === "ready") {
        if (keep) keep(file, exe);
        kept = keep !== undefined;
        return undefined;
      }
      if (!reasons.includes(r.reason)) reasons.push(r.reason);
    }
    const libs = notInstrumented(exe, instrumentations, () => false);
    const why = libs.length ? libs.map((l) => `${l.module} ${l.version}: ${l.note}`) : reasons;
    return `${name} is a Go program in which gotel instruments nothing: ${why.join(", ") || "no library gotel knows"}`;
  } finally {
    if (!kept) exe.close();
  }
}

/** Throws, naming every pid and why, when the targets are pids only and none of them can be instrumented. */
export function refuseUntraceable(targets: TargetSpec, instrumentations: readonly Instrumentation[] = INSTRUMENTATIONS): void {
  if (targets.exes.length > 0 || targets.all || targets.pids.length === 0) return;
  const why: string[] = [];
  for (const pid of targets.pids) {
    // the first traceable target's executable, analysed, goes to the agent's planner instead of being read twice
    const reason = whyNotTraceable(pid, instrumentations, lendExecutable);
    if (reason === undefined) return;
    why.push(reason);
  }
  throw new GotelError(`nothing to trace: ${why.join("; ")}`, "`gotel inspect --pid N` shows what gotel instruments in a Go program");
}
