/** The compiled binary, as a user runs it: doctor, version, and bad input. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectOneLineError, GOTEL, runCommand } from "../support/cli.ts";
import { buildGoFixture, ROOT } from "../support/go.ts";
import { requireRoot } from "../support/kernel.ts";
import { startServer } from "../support/processes.ts";

const REJECTED = join(ROOT, "build/test-bpf", process.arch, "rejected.bpf.o");
/** runs the rest of the command line as nobody:nogroup, without supplementary groups or inheritable capabilities */
const UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"];
let scratch: string;

beforeAll(() => {
  requireRoot();
  scratch = mkdtempSync(join(tmpdir(), "gotel-cli-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function emptyDir(name: string): string {
  const d = join(scratch, name);
  Bun.spawnSync(["mkdir", "-p", d]);
  return d;
}

describe("gotel doctor (compiled binary)", () => {
  test("passes on this machine with an empty environment, from /, leaving $TMPDIR empty", () => {
    const tmp = emptyDir("tmp");
    const r = runCommand([GOTEL, "doctor"], { env: { TMPDIR: tmp } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^gotel \d+\.\d+\.\d+, libbpf 1\.4\.6, linux\/x64$/);
    for (const check of ["kernel", "BPF permission", "uprobe PMU", "ring buffer", "eBPF object selftest", "uprobe round trip (classic)"]) {
      expect(lines.find((l) => l.includes(` ${check} `))).toMatch(/^ {2}ok {4}/);
    }
    for (const check of ["uprobe.multi", "kernel BTF", "context propagation", "bpffs"]) {
      expect(lines.find((l) => l.includes(` ${check} `))).toMatch(/^ {2}(ok|warn) /);
    }
    expect(lines.at(-1)).toBe("gotel can run here");
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("works when $TMPDIR is mounted noexec", () => {
    const tmp = emptyDir("noexec");
    expect(Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "noexec,size=16m", "tmpfs", tmp]).exitCode).toBe(0);
    try {
      const r = runCommand([GOTEL, "doctor"], { env: { TMPDIR: tmp } });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("gotel can run here");
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      Bun.spawnSync(["umount", tmp]);
    }
  });

  test("an object the verifier rejects: a FAIL line with the verifier's reason, exit 1", () => {
    const r = runCommand([GOTEL, "doctor", "--object", REJECTED]);
    expect(r.code).toBe(1);
    // names are padded to the longest check's name
    expect(r.stdout).toMatch(/FAIL  eBPF object rejected\.bpf\.o +the kernel's verifier rejected program 'rejected_unbounded_index' of rejected\.bpf\.o: /);
    expect(r.stdout).toContain("— set OTEL_GO_AUTO_SHOW_VERIFIER_LOG=true to print the full verifier log");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("gotel cannot run here: eBPF object rejected.bpf.o failed");
    expect(r.stderr).toBe("");
  });

  test("OTEL_GO_AUTO_SHOW_VERIFIER_LOG=true prints the verifier log", () => {
    const r = runCommand([GOTEL, "doctor", "--object", REJECTED], { env: { OTEL_GO_AUTO_SHOW_VERIFIER_LOG: "true" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--- verifier log: rejected.bpf.o/rejected_unbounded_index ---");
    expect(r.stderr).toMatch(/^\d+: \(\w+\) /m); // instruction lines of the log
  });

  test("a missing object file: one line, exit 1", () => {
    const r = runCommand([GOTEL, "doctor", "--object", "/nonexistent/probe.o"]);
    expect(r.code).toBe(1);
    expect(expectOneLineError(r)).toBe(
      "gotel: cannot read eBPF object /nonexistent/probe.o: no such file; pass the path of a .o file built with clang -target bpf",
    );
  });

  test("a file that is not an ELF object: a FAIL line naming it", () => {
    const r = runCommand([GOTEL, "doctor", "--object", join(ROOT, "package.json")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FAIL  eBPF object package.json");
    expect(r.stdout).toContain("package.json is not an eBPF object (not an ELF file) — pass a .o file built by clang -target bpf");
  });

  test("as an unprivileged user: BPF permission fails with what to grant, exit 1", () => {
    const r = runCommand([...UNPRIVILEGED, GOTEL, "doctor"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const line = r.stdout.split("\n").find((l) => l.includes(" BPF permission "));
    expect(line).toMatch(/^ {2}FAIL {2}BPF permission +effective capabilities: none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN — run gotel as root, or grant it CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE/);
    expect(r.stdout).toMatch(/gotel cannot run here: BPF permission, ring buffer, (eBPF object \w+, )*eBPF object selftest, uprobe round trip failed\n$/);
  });
});

describe("gotel version and bad command lines (compiled binary)", () => {
  test("version with an empty environment, also unprivileged", () => {
    for (const prefix of [[], UNPRIVILEGED]) {
      const r = runCommand([...prefix, GOTEL, "version"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^gotel \d+\.\d+\.\d+ \(libbpf 1\.4\.6, linux\/x64, bun \d+\.\d+\.\d+\)\n$/);
    }
  });

  test("an invalid environment value", () => {
    const r = runCommand([GOTEL, "version"], { env: { OTEL_LOG_LEVEL: "loud" } });
    expect(r.code).toBe(1);
    expect(expectOneLineError(r)).toBe('gotel: OTEL_LOG_LEVEL="loud" is not valid: expected one of debug, info, warn, error');
  });

  test("unknown command and unknown flag: exit 2 with a pointer to help", () => {
    const a = runCommand([GOTEL, "frobnicate"]);
    expect(a.code).toBe(2);
    expect(expectOneLineError(a)).toBe("gotel: unknown command 'frobnicate'; see `gotel help`");
    const b = runCommand([GOTEL, "doctor", "--frob"]);
    expect(b.code).toBe(2);
    expect(expectOneLineError(b)).toBe("gotel: Unknown option '--frob'; see `gotel help`");
  });
});

describe("gotel run (compiled binary)", () => {
  test("run --pid of a real Go process as an unprivileged user: one line naming what is missing and what to grant, exit 1", async () => {
    const server = await startServer(buildGoFixture("http-server", { goVersion: "1.27.4" }));
    try {
      const r = runCommand([...UNPRIVILEGED, GOTEL, "run", "--pid", String(server.proc.pid)]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(expectOneLineError(r)).toMatch(
        /^gotel: not allowed to load eBPF programs \(effective capabilities: none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN\); run gotel as root, or grant it CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE \(CAP_SYS_ADMIN on kernels before 5\.8\)$/,
      );
    } finally {
      await server.proc.stop();
    }
  }, 120_000);
});

// gotel from source: the compiled binary cannot be run under Bun's profiler
describe("gotel doctor under a sampling profiler", () => {
  test("a verifier interrupted by signals on every attempt is said to be, not to have rejected anything", () => {
    // a sampling profiler's SIGPROF every 50 µs: the verifier stops with EAGAIN whenever a signal is pending
    const prof = emptyDir("prof");
    const r = runCommand([process.execPath, "--cpu-prof", "--cpu-prof-interval=50", `--cpu-prof-dir=${prof}`, join(ROOT, "src/cli/main.ts"), "doctor"], { cwd: ROOT, env: { PATH: process.env.PATH ?? "" } });
    expect(r.code).toBe(1);
    expect(r.stdout.split("\n").map((l) => l.replace(/^(\s+FAIL  eBPF object nethttp_server) +/, "$1 "))).toContain(
      "  FAIL  eBPF object nethttp_server bpf_object__load failed for nethttp_server.bpf.o: the kernel's verifier was interrupted by signals on every attempt (EAGAIN) — run gotel again; something sends it signals while it loads (a profiler's SIGPROF, for one)",
    );
    expect(r.stdout).not.toContain("rejected");
  });
});
