import { join } from "node:path";
import { ROOT } from "./go.ts";

export const GOTEL = join(ROOT, "dist/gotel");

export interface Run { code: number; stdout: string; stderr: string }

/** Runs a command to completion, with exactly the given environment. */
export function runCommand(cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Run {
  const r = Bun.spawnSync(cmd, { env: opts.env ?? {}, cwd: opts.cwd ?? "/", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** What a user sees on stderr must be one line and carry no stack trace. */
export function expectOneLineError(r: Run): string {
  const lines = r.stderr.trimEnd().split("\n");
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got:\n${r.stderr}`);
  if (/^\s+at /m.test(r.stderr)) throw new Error(`stack trace on stderr:\n${r.stderr}`);
  return lines[0]!;
}
