import { parseArgs } from "node:util";
import { GotelError } from "../errors.ts";

export const USAGE = `gotel — OpenTelemetry traces from unmodified Go programs, through eBPF

usage: gotel <command> [options]

commands:
  run --pid N | --exe PATH | --all
                              trace those Go processes (also ones started later) and export over OTLP
                              until SIGINT/SIGTERM; targets also from OTEL_GO_AUTO_TARGET_PID/EXE
  trace --pid N | --exe PATH [--duration 30s] [--count N] [--format tree|jsonl] [--otlp]
                              print spans as they complete (a tree on a terminal, JSON lines otherwise),
                              then a one-line summary; --otlp also exports them
  exec -- CMD ARGS...          run a Go program traced from its first instruction; exits with its exit code
  inspect PATH | --pid N      what gotel would instrument in a Go executable, and why not (no root needed)
            [--json]          the same as one JSON object
            [--function NAME]...  also where gotel would probe these functions (file offsets)
            [--field pkg.Type.field]...  also these struct field offsets from the binary's DWARF
  doctor [--object FILE]...   check that this machine can run gotel (kernel, privileges, probes)
  version                     print gotel's version, libbpf's version and the architecture
  help                        print this help

environment:
  OTEL_LOG_LEVEL                   debug | info | warn | error (default info)
  OTEL_GO_AUTO_SHOW_VERIFIER_LOG   true prints the kernel verifier's log for every program loaded
  OTEL_GO_AUTO_INCLUDE_DB_STATEMENT  true adds SQL statements to database spans (db.query.text, up to 4 KiB)
  OTEL_GO_AUTO_PARSE_DB_STATEMENT    true names database spans from the statement ("SELECT users")`;

/** Wrong command line: exit code 2. */
export class UsageError extends GotelError {
  constructor(message: string) {
    super(message, "see `gotel help`");
    this.name = "UsageError";
  }
}

type ParseArgsConfig = NonNullable<Parameters<typeof parseArgs>[0]>;

/** node:util's parseArgs, with its errors turned into UsageErrors (one line, exit code 2). */
export function parseFlags<T extends ParseArgsConfig["options"]>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
