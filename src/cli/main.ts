/** gotel's entry point: picks the subcommand and turns expected failures into one line and an exit code. */
import { readEnv } from "../config/env.ts";
import { GotelError } from "../errors.ts";
import { enabled, setLogLevel } from "../log.ts";
import { doctorCommand } from "./doctor.ts";
import { inspectCommand } from "./inspect.ts";
import { runCommand } from "./run.ts";
import { execCommand } from "./exec.ts";
import { traceCommand } from "./trace.ts";
import { USAGE, UsageError } from "./usage.ts";
import { versionCommand } from "./version.ts";

async function run(argv: string[]): Promise<number> {
  const env = readEnv();
  setLogLevel(env.OTEL_LOG_LEVEL);
  const [command, ...rest] = argv;
  switch (command) {
    case "version":
    case "--version":
      return versionCommand();
    case "doctor":
      return doctorCommand(rest, env);
    case "inspect":
      return inspectCommand(rest);
    case "run":
      return runCommand(rest, env);
    case "trace":
      return traceCommand(rest, env);
    case "exec":
      return execCommand(rest, env);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function exitCodeFor(e: unknown): number {
  return e instanceof UsageError ? 2 : 1;
}

function report(e: unknown): void {
  const debug = enabled("debug") || /^debug$/i.test(process.env.OTEL_LOG_LEVEL ?? "");
  const line = e instanceof GotelError
    ? e.oneLine
    : `unexpected error: ${(e as Error)?.message ?? String(e)}${debug ? "" : " (OTEL_LOG_LEVEL=debug shows the stack trace)"}`;
  process.stderr.write(`gotel: ${line}\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
}

let code: number;
try {
  code = await run(process.argv.slice(2));
} catch (e) {
  report(e);
  code = exitCodeFor(e);
}
process.exit(code);
