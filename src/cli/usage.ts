import { parseArgs } from "node:util";
import { GotelError } from "../errors.ts";

/** One subcommand's help: the synopsis (after `gotel `), what it does, and its options in detail. */
interface CommandHelp {
  synopsis: string;
  /** the short description in the general help */
  summary: string;
  /** `gotel <command> --help`: options and notes, one per line */
  details: string[];
}

const TARGETS = [
  "  --pid N        a process id; repeatable",
  "  --exe PATH     every process running this executable, also ones started later; repeatable",
  "  --all          every Go process on this machine",
  "  without these: OTEL_GO_AUTO_TARGET_PID / OTEL_GO_AUTO_TARGET_EXE",
];

export const COMMANDS = {
  run: {
    synopsis: "run --pid N | --exe PATH | --all",
    summary: "trace those Go processes (also ones started later) and export over OTLP\nuntil SIGINT/SIGTERM; targets also from OTEL_GO_AUTO_TARGET_PID/EXE",
    details: [...TARGETS, "  exports over OTLP (OTEL_EXPORTER_OTLP_* settings) until SIGINT/SIGTERM, then exits 0"],
  },
  trace: {
    synopsis: "trace --pid N | --exe PATH | --all [--duration 30s] [--count N] [--format tree|jsonl] [--otlp]",
    summary: "print spans as they complete (a tree on a terminal, JSON lines otherwise),\nthen a one-line summary; --otlp also exports them",
    details: [
      ...TARGETS,
      "  --duration D   stop after D: 500ms, 30s, 2m, 1h (a bare number is seconds); at most 24 days",
      "  --count N      stop after N spans",
      "  --format F     tree (default on a terminal) or jsonl",
      "  --otlp         also export the spans over OTLP",
      "  Ctrl-C stops too; the summary line goes to stderr",
    ],
  },
  exec: {
    synopsis: "exec -- CMD ARGS...",
    summary: "run a Go program traced from its first instruction; exits with its exit code",
    details: ["  CMD is a path or a name looked up in $PATH; signals are forwarded to it"],
  },
  inspect: {
    synopsis: "inspect PATH | --pid N [--json] [--function NAME]... [--field pkg.Type.field]...",
    summary: "what gotel would instrument in a Go executable, and why not (no root needed)",
    details: [
      "  --pid N                the executable of a running process",
      "  --json                 the same as one JSON object",
      "  --function NAME        also where gotel would probe this function (file offsets); repeatable",
      "  --field pkg.Type.field also this struct field's offset from the binary's DWARF; repeatable",
    ],
  },
  doctor: {
    synopsis: "doctor [--object FILE]...",
    summary: "check that this machine can run gotel (kernel, privileges, probes)",
    details: ["  --object FILE  also load this eBPF object (.o); repeatable", "  exits 0 when gotel can run here"],
  },
  version: {
    synopsis: "version",
    summary: "print gotel's version, libbpf's version and the architecture",
    details: [],
  },
} satisfies Record<string, CommandHelp>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

/** `gotel <command> --help`. */
export function commandUsage(name: CommandName): string {
  const c: CommandHelp = COMMANDS[name];
  return [`usage: gotel ${c.synopsis}`, "", ...c.summary.split("\n"), ...(c.details.length ? ["", ...c.details] : [])].join("\n");
}

const COLUMN = 30;

function generalUsage(): string {
  const lines: string[] = [];
  const entry = (synopsis: string, summary: string[]) => {
    const head = `  ${synopsis}`;
    const pad = " ".repeat(COLUMN);
    if (head.length < COLUMN) lines.push(head.padEnd(COLUMN) + summary[0]);
    else lines.push(head, pad + summary[0]);
    for (const s of summary.slice(1)) lines.push(pad + s);
  };
  for (const c of Object.values(COMMANDS) as CommandHelp[]) entry(c.synopsis, c.summary.split("\n"));
  entry("help [COMMAND]", ["print this help, or a command's (also: gotel COMMAND --help)"]);
  return `gotel — OpenTelemetry traces from unmodified Go programs, through eBPF

usage: gotel <command> [options]

commands:
${lines.join("\n")}

environment:
  OTEL_LOG_LEVEL                   debug | info | warn | error (default info)
  OTEL_GO_AUTO_SHOW_VERIFIER_LOG   true prints the kernel verifier's log for every program loaded
  OTEL_GO_AUTO_INCLUDE_DB_STATEMENT  true adds SQL statements to database spans (db.query.text, up to 4 KiB)
  OTEL_GO_AUTO_PARSE_DB_STATEMENT    true names database spans from the statement ("SELECT users")`;
}

export const USAGE = generalUsage();

/** Wrong command line: exit code 2. */
export class UsageError extends GotelError {
  constructor(message: string) {
    super(message, "see `gotel help`");
    this.name = "UsageError";
  }
}

/** `--help` or `-h` among a command's arguments (before a `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}

type ParseArgsConfig = NonNullable<Parameters<typeof parseArgs>[0]>;
type Options = NonNullable<ParseArgsConfig["options"]>;

function isOption(arg: string, options: Options): boolean {
  if (arg === "--help" || arg === "-h") return true;
  const m = /^--([^=]+)/.exec(arg);
  return m !== null && Object.hasOwn(options, m[1]!);
}

/**
 * `--pid -5`: node's parseArgs refuses a value that starts with '-' (a three-line "ambiguous" error). Such a
 * value is joined to its option (`--pid=-5`) so that the command's own check names what it expected; a known
 * option in that place means the value is missing.
 */
function joinDashValues(args: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    const name = /^--([^=]+)$/.exec(a)?.[1];
    const next = args[i + 1];
    if (name !== undefined && Object.hasOwn(options, name) && options[name]!.type === "string" && next !== undefined && next.startsWith("-") && next !== "-") {
      if (next === "--" || isOption(next, options)) throw new UsageError(`--${name} needs a value, got the option '${next}'`);
      out.push(`${a}=${next}`);
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** node:util's parseArgs, with its errors turned into UsageErrors (one line, exit code 2). */
export function parseFlags<T extends ParseArgsConfig["options"]>(args: string[], options: T, allowPositionals = false) {
  const joined = joinDashValues(args, options ?? {});
  try {
    return parseArgs({ args: joined, options, strict: true, allowPositionals });
  } catch (e) {
    const message = (e as Error).message;
    const missing = /^Option '(-[^' ]+)(?:, -[^' ]+)? <value>' argument missing/.exec(message);
    if (missing) throw new UsageError(`${missing[1]} needs a value`);
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    if (unknown) throw new UsageError(`Unknown option '${unknown[1]}'`);
    throw new UsageError(message.replace(/\s*\n\s*/g, " "));
  }
}
