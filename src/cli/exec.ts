/**
 * `gotel exec -- CMD ARGS…`: runs a Go program with every probe attached before its first instruction, so even
 * its first request is traced. A shell stops itself (SIGSTOP) and then exec-s the program, keeping its pid; the
 * probes are attached to the program's file for that pid while it is stopped, then it continues. Signals are
 * forwarded; gotel exits with the program's exit code (128+N when a signal N ended it).
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { Agent } from "../agent.ts";
import type { EnvConfig } from "../config/env.ts";
import { GotelError } from "../errors.ts";
import { spanExporter } from "../export/exporter.ts";
import { log } from "../log.ts";
import { stoppedFields } from "./stop-report.ts";
import { UsageError } from "./usage.ts";

const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGTERM: 15, SIGABRT: 6 };

/** CMD as the shell would find it: a path, or the first executable of that name on $PATH. */
export function resolveCommand(cmd: string, path = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"): string {
  const candidates = cmd.includes("/") ? [resolve(cmd)] : path.split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch { /* next */ }
  }
  throw new GotelError(`${cmd}: command not found or not executable`, "give the path of a Go program");
}

function stopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "T";
  } catch {
    return false;
  }
}

export async function execCommand(args: string[], env: EnvConfig): Promise<number> {
  const cmd = args[0] === "--" ? args.slice(1) : args;
  if (cmd.length === 0 || cmd[0] === undefined || cmd[0] === "") throw new UsageError("exec needs a command: gotel exec -- CMD ARGS…");
  // exec has no options of its own: `gotel exec --verbose prog` is a mistake, not a program named --verbose
  if (args[0] !== "--" && cmd[0].startsWith("-")) throw new UsageError(`exec takes no option '${cmd[0]}'; put the program after '--': gotel exec -- CMD ARGS…`);
  const program = resolveCommand(cmd[0]);
  // installed first: a signal that comes while attaching is held and forwarded once the program runs
  const pending: NodeJS.Signals[] = [];
  let forward = (sig: NodeJS.Signals): void => {
    pending.push(sig);
  };
  for (const sig of FORWARDED) process.on(sig, (s: NodeJS.Signals) => forward(s));
  const exporter = await spanExporter(env);
  const agent = await Agent.start({ env, exporters: exporter ? [{ exporter }] : [] });
  const child = Bun.spawn(["/bin/sh", "-c", 'kill -STOP $$ && exec "$0" "$@"', program, ...cmd.slice(1)], {
    stdin: "inherit", stdout: "inherit", stderr: "inherit",
  });
  try {
    const deadline = Date.now() + 5000;
    while (!stopped(child.pid)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new GotelError(`${program} did not start`);
      await Bun.sleep(1);
    }
    if (!agent.attach(child.pid, program, program)) log.warn("running the program without instrumentation", { exe: program });
    forward = (sig) => {
      child.kill(sig);
    };
    child.kill("SIGCONT");
    for (const sig of pending) child.kill(sig);
    const code = await child.exited;
    return child.signalCode ? 128 + (SIGNAL_NUMBERS[child.signalCode] ?? 0) : code;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await agent.stop();
    log.info("stopped", stoppedFields(agent.stats));
  }
}
