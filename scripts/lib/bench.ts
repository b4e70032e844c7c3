/** What the benchmark scripts share: the `--before PATH` option and the gotel binaries it makes them measure, and
 * a process's memory from /proc. */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
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

/**
 * A memory cgroup with a limit of `mb` MB (cgroup v2 where the host has it unified, else v1's memory controller),
 * as a container with a memory limit gives gotel: `wrap` makes a command join it before it execs (same pid).
 * JavaScriptCore sizes its heap from the memory it may use, so gotel's peak under load follows the limit.
 */
export function memoryCgroup(mb: number): { label: string; wrap: (cmd: string[]) => string[]; remove: () => void } {
  const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
  const dir = v2 ? `/sys/fs/cgroup/gotel-bench-${process.pid}` : `/sys/fs/cgroup/memory/gotel-bench-${process.pid}`;
  mkdirSync(dir);
  writeFileSync(join(dir, v2 ? "memory.max" : "memory.limit_in_bytes"), String(mb * 2 ** 20));
  return {
    label: `${mb}MB`,
    wrap: (cmd) => ["/bin/sh", "-c", `echo $$ > ${dir}/cgroup.procs && exec "$@"`, "sh", ...cmd],
    remove: () => rmdirSync(dir),
  };
}
