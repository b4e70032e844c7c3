/**
 * The compiled CLI refusing bad input: every numeric flag, flag values that start with '-', bad OTEL_*
 * values, `<command> --help`. Each mistake is exactly one line on stderr with no stack trace; command-line
 * mistakes exit 2, a bad environment value exits 1. None of these cases needs root: gotel refuses them before
 * it touches the kernel.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectOneLineError, GOTEL, runCommand } from "../support/cli.ts";

const SEE_HELP = "; see `gotel help`";
const PID_RANGE = "a process id from 1 to 4194304";

/** arguments, the line gotel prints (without "gotel: " and the help pointer) */
const USAGE_MISTAKES: [string[], string][] = [
  // --pid: run and trace share the target flags
  [["run", "--pid", "-5"], `--pid needs ${PID_RANGE}, got '-5'`],
  [["run", "--pid=-5"], `--pid needs ${PID_RANGE}, got '-5'`],
  [["run", "--pid", "99999999999999999999"], `--pid needs ${PID_RANGE}, got '99999999999999999999'`],
  [["run", "--pid", "4194305"], `--pid needs ${PID_RANGE}, got '4194305'`],
  [["run", "--pid", "0"], `--pid needs ${PID_RANGE}, got '0'`],
  [["run", "--pid", "1.5"], `--pid needs ${PID_RANGE}, got '1.5'`],
  [["run", "--pid", "1e3"], `--pid needs ${PID_RANGE}, got '1e3'`],
  [["run", "--pid", "0x10"], `--pid needs ${PID_RANGE}, got '0x10'`],
  [["run", "--pid", "Infinity"], `--pid needs ${PID_RANGE}, got 'Infinity'`],
  [["run", "--pid", "1", "--pid", "-2"], `--pid needs ${PID_RANGE}, got '-2'`],
  [["trace", "--pid", "-5"], `--pid needs ${PID_RANGE}, got '-5'`],
  [["run", "--pid"], "--pid needs a value"],
  [["run", "--pid", "--exe", "/bin/true"], "--pid needs a value, got the option '--exe'"],
  [["run", "--exe="], "--exe needs the path of an executable, got ''"],
  [["run", "--frob"], "Unknown option '--frob'"],
  // --count
  [["trace", "--count", "-1"], "--count needs a positive whole number of spans, got '-1'"],
  [["trace", "--pid", "1", "--count", "0"], "--count needs a positive whole number of spans, got '0'"],
  [["trace", "--pid", "1", "--count", "2.5"], "--count needs a positive whole number of spans, got '2.5'"],
  [["trace", "--pid", "1", "--count", "1e3"], "--count needs a positive whole number of spans, got '1e3'"],
  [["trace", "--pid", "1", "--count", "99999999999999999999"], "--count needs a positive whole number of spans, got '99999999999999999999'"],
  [["trace", "--pid", "1", "--count", "NaN"], "--count needs a positive whole number of spans, got 'NaN'"],
  // --duration
  [["trace", "--duration", "-1s"], "--duration needs a positive duration like 30s, 2m or 500ms, got '-1s'"],
  [["trace", "--pid", "1", "--duration", "0"], "--duration needs a positive duration like 30s, 2m or 500ms, got '0'"],
  [["trace", "--pid", "1", "--duration", "0s"], "--duration needs a positive duration like 30s, 2m or 500ms, got '0s'"],
  [["trace", "--pid", "1", "--duration", "soon"], "--duration needs a positive duration like 30s, 2m or 500ms, got 'soon'"],
  [["trace", "--pid", "1", "--duration", "Infinity"], "--duration needs a positive duration like 30s, 2m or 500ms, got 'Infinity'"],
  [["trace", "--pid", "1", "--duration", "1e3s"], "--duration needs a positive duration like 30s, 2m or 500ms, got '1e3s'"],
  [["trace", "--pid", "1", "--duration", "0.1ms"], "--duration needs at least 1ms, got '0.1ms'"],
  [["trace", "--pid", "1", "--duration", "1000h"], "--duration is at most 596h (2147483647 ms), got '1000h'"],
  [["trace", "--pid", "1", "--duration", "2147484s"], "--duration is at most 596h (2147483647 ms), got '2147484s'"],
  [["trace", "--pid", "1", "--format", "-x"], "--format is tree or jsonl, got '-x'"],
  // version, exec, help, doctor
  [["version", "--x"], "Unknown option '--x'"],
  [["version", "extra"], "Unexpected argument 'extra'. This command does not take positional arguments"],
  [["exec", "-x", "prog"], "exec takes no option '-x'; put the program after '--': gotel exec -- CMD ARGS…"],
  [["exec", "--"], "exec needs a command: gotel exec -- CMD ARGS…"],
  [["doctor", "--object"], "--object needs a value"],
  [["help", "frobnicate"], "unknown command 'frobnicate'"],
  [["frobnicate"], "unknown command 'frobnicate'"],
];

describe("command-line mistakes: one line, exit 2", () => {
  test.each(USAGE_MISTAKES)("gotel %p", (args, line) => {
    const r = runCommand([GOTEL, ...args]);
    expect(expectOneLineError(r)).toBe(`gotel: ${line}${SEE_HELP}`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
  });

  test("an empty OTEL_GO_AUTO_TARGET_EXE counts as unset, and the 'no target' line says it was empty", () => {
    const noTarget = "give --pid N, --exe PATH or --all (or set OTEL_GO_AUTO_TARGET_PID / OTEL_GO_AUTO_TARGET_EXE)";
    const cases: [Record<string, string>, string][] = [
      [{ OTEL_GO_AUTO_TARGET_EXE: "" }, `no target (OTEL_GO_AUTO_TARGET_EXE is set but empty, which counts as unset): ${noTarget}`],
      [{ OTEL_GO_AUTO_TARGET_EXE: "  " }, `no target (OTEL_GO_AUTO_TARGET_EXE is set but empty, which counts as unset): ${noTarget}`],
      [{ OTEL_GO_AUTO_TARGET_EXE: "", OTEL_GO_AUTO_TARGET_PID: "" },
        `no target (OTEL_GO_AUTO_TARGET_PID and OTEL_GO_AUTO_TARGET_EXE are set but empty, which counts as unset): ${noTarget}`],
      [{}, `no target: ${noTarget}`],
    ];
    for (const [env, line] of cases) {
      for (const command of ["run", "trace"]) {
        const r = runCommand([GOTEL, command], { env });
        expect(expectOneLineError(r)).toBe(`gotel: ${line}${SEE_HELP}`);
        expect(r.code).toBe(2);
      }
    }
  });
});

const HEADERS = "header=value pairs separated by commas (values %-encoded)";

/** environment, the line gotel prints (without "gotel: ") */
const ENV_MISTAKES: [Record<string, string>, string][] = [
  [{ OTEL_EXPORTER_OTLP_HEADERS: "a b=c" }, `OTEL_EXPORTER_OTLP_HEADERS is not valid: expected ${HEADERS}; "a b" is not an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~ only)`],
  [{ OTEL_EXPORTER_OTLP_HEADERS: "a=b\r\nX-Evil: 1" }, `OTEL_EXPORTER_OTLP_HEADERS is not valid: expected ${HEADERS}; the value of 'a' contains CR (U+000D) once %-decoded`],
  [{ OTEL_EXPORTER_OTLP_HEADERS: "a=b\nX-Evil: 1" }, `OTEL_EXPORTER_OTLP_HEADERS is not valid: expected ${HEADERS}; the value of 'a' contains LF (U+000A) once %-decoded`],
  [{ OTEL_EXPORTER_OTLP_HEADERS: "a=%0d%0aX-Evil:1" }, `OTEL_EXPORTER_OTLP_HEADERS is not valid: expected ${HEADERS}; the value of 'a' contains CR (U+000D) once %-decoded`],
  [{ OTEL_EXPORTER_OTLP_TRACES_HEADERS: "api-key=s3cret,a=%00" }, `OTEL_EXPORTER_OTLP_TRACES_HEADERS is not valid: expected ${HEADERS}; the value of 'a' contains NUL (U+0000) once %-decoded`],
  [{ OTEL_RESOURCE_ATTRIBUTES: "team=a%0ab" }, `OTEL_RESOURCE_ATTRIBUTES="team=a%0ab" is not valid: expected key=value pairs separated by commas (values %-encoded); the value of 'team' contains LF (U+000A) once %-decoded`],
  [{ OTEL_BSP_SCHEDULE_DELAY: "3000000000" }, `OTEL_BSP_SCHEDULE_DELAY="3000000000" is not valid: expected a delay in milliseconds from 1 to 2147483647`],
  [{ OTEL_BSP_EXPORT_TIMEOUT: "2147483648" }, `OTEL_BSP_EXPORT_TIMEOUT="2147483648" is not valid: expected a timeout in milliseconds from 1 to 2147483647`],
  [{ OTEL_EXPORTER_OTLP_TIMEOUT: "1e12" }, `OTEL_EXPORTER_OTLP_TIMEOUT="1e12" is not valid: expected a timeout in milliseconds from 1 to 2147483647`],
  [{ OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "-1" }, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="-1" is not valid: expected a timeout in milliseconds from 1 to 2147483647`],
  [{ OTEL_BSP_MAX_QUEUE_SIZE: "99999999999" }, `OTEL_BSP_MAX_QUEUE_SIZE="99999999999" is not valid: expected a number of spans from 1 to 16777216`],
  [{ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "16777217" }, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE="16777217" is not valid: expected a number of spans from 1 to 16777216`],
  [{ OTEL_GO_AUTO_TARGET_PID: "99999999999999999999" }, `OTEL_GO_AUTO_TARGET_PID="99999999999999999999" is not valid: expected a process id from 1 to 4194304`],
];

describe("bad environment values: one line naming the variable, exit 1", () => {
  test.each(ENV_MISTAKES)("%p", (env, line) => {
    for (const command of [["version"], ["run", "--pid", "1"]]) {
      const r = runCommand([GOTEL, ...command], { env });
      expect(expectOneLineError(r)).toBe(`gotel: ${line}`);
      expect(r.code).toBe(1);
      expect(r.stderr).not.toContain("s3cret");
    }
  });
});

test("settings come from the environment only: a .env or bunfig.toml where gotel starts is not read", () => {
  const dir = mkdtempSync(join(tmpdir(), "gotel-cwd-"));
  try {
    // each would make `version` fail if read: a bad value in .env, a preload that writes a file and throws
    writeFileSync(join(dir, ".env"), "OTEL_BSP_SCHEDULE_DELAY=3000000000\n");
    writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
    writeFileSync(join(dir, "preload.ts"), 'require("node:fs").writeFileSync(__dirname + "/preloaded", "yes"); throw new Error("preloaded");\n');
    const r = runCommand([GOTEL, "version"], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith("gotel ");
    expect(existsSync(join(dir, "preloaded"))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("gotel <command> --help", () => {
  const commands = ["run", "trace", "exec", "inspect", "doctor", "version"];
  test.each(commands)("%s --help and -h print that command's usage on stdout, exit 0", (command) => {
    const outputs = new Set<string>();
    for (const args of [[command, "--help"], [command, "-h"], ["help", command]]) {
      const r = runCommand([GOTEL, ...args]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout.split("\n")[0]).toStartWith(`usage: gotel ${command}`);
      outputs.add(r.stdout);
    }
    expect(outputs.size).toBe(1);
  });

  test("--help wins over other flags, even invalid ones, and over a bad environment", () => {
    for (const args of [["run", "--pid", "-5", "--help"], ["trace", "--frob", "-h"], ["inspect", "/nonexistent", "--help"]]) {
      const r = runCommand([GOTEL, ...args], { env: { OTEL_BSP_SCHEDULE_DELAY: "3000000000" } });
      expect(r.code).toBe(0);
      expect(r.stdout).toStartWith(`usage: gotel ${args[0]}`);
    }
  });

  test("trace's usage lists --all, --duration and --count", () => {
    const r = runCommand([GOTEL, "trace", "--help"]);
    for (const flag of ["--all", "--duration", "--count", "--format", "--otlp", "--pid", "--exe"]) expect(r.stdout).toContain(flag);
  });

  test("the general help lists every command's synopsis", () => {
    const general = runCommand([GOTEL, "help"]);
    expect(general.code).toBe(0);
    for (const command of commands) {
      const synopsis = runCommand([GOTEL, command, "--help"]).stdout.split("\n")[0]!.slice("usage: gotel ".length);
      expect(general.stdout).toContain(`  ${synopsis}`);
    }
  });

  test("after `exec --`, --help belongs to the program", () => {
    const r = runCommand([GOTEL, "exec", "--", "/nonexistent/prog", "--help"]);
    expect(r.stdout).toBe("");
    expect(expectOneLineError(r)).toStartWith("gotel: /nonexistent/prog: command not found");
    expect(r.code).toBe(1);
  });
});
