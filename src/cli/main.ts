/** gotel's entry point: picks the subcommand and turns expected failures into one line and an exit code. */
import { readEnv } from "../config/env.ts";
import { GotelError } from "../errors.ts";
import { enabled, setLogLevel } from "../log.ts";
import { doctorCommand } from "./doctor.ts";
import { inspectCommand } from "./inspect.ts";
import { runCommand } from "./run.ts";
import { execCommand } from "./exec.ts";
import { traceCommand } from "./trace.ts";
import { commandUsage, isCommand, USAGE, UsageError, wantsHelp } from "./usage.ts";
import { versionCommand } from "./version.ts";

/** `gotel <command> --help` / `-h`, and `gotel help <command>`: the command's usage, before anything else is read. */
function helpRequested(command: string | undefined, rest: string[]): string | undefined {
  if (command === "help" || command === "--help" || command === "-h") {
    const [topic, ...more] = rest;
    if (topic === undefined) return USAGE;
    if (more.length > 0) throw new UsageError("help takes one command name");
    if (!isCommand(topic)) throw new UsageError(`unknown command '${topic}'`);
    return commandUsage(topic);
  }
  if (!isCommand(command)) return undefined;
  // exec's arguments are the program's: only `gotel exec --help` itself asks for help
  const asks = command === "exec" ? rest[0] === "--help" || rest[0] === "-h" : wantsHelp(rest);
  return asks ? commandUsage(command) : undefined;
}

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const help = helpRequested(command, rest);
  if (help !== undefined) {
    console.log(help);
    return 0;
  }
  const env = readEnv();
  setLogLevel(env.OTEL_LOG_LEVEL);
  switch (command) {
    case "version":
      return versionCommand(rest);
    case "--version":
      return versionCommand([]);
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
      console.log(USAGE);
      return 2;
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
