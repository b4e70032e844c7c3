/** What the benchmark scripts share: the `--before PATH` option and the gotel binaries it makes them measure, and
 * a process's memory from /proc. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../test/support/go.ts";

/**
 * Takes `--before PATH` out of args (a usage error without a path): the binaries to measure side by side, an
 * earlier build first when given, then this checkout's dist/gotel under `label`.
 */
export function gotelBuilds(script: string, args: string[], label: string): { label: string; path: string }[] {
  const at = args.indexOf("--before");
  const before = at >= 0 ? args.splice(at, 2)[1] : undefined;
  if (at >= 0 && !before) {
    console.error(`${script}: --before needs the path of a gotel binary`);
    process.exit(2);
  }
  const after = join(ROOT, "dist/gotel");
  return before ? [{ label: "before", path: before }, { label: "after", path: after }] : [{ label, path: after }];
}

/** A /proc/PID/status memory field in kB (VmHWM: peak RSS), NaN when unreadable. */
export function statusKb(pid: number, field: "VmHWM" | "VmRSS" | "RssAnon" | "RssFile" | "RssShmem"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}
