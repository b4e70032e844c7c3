/** Long-running processes for e2e tests: gotel itself and the Go servers it traces. */
import { readdirSync, readFileSync } from "node:fs";
import { waitFor } from "./kernel.ts";
import { GOTEL } from "./cli.ts";

export class Proc {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly proc: ReturnType<typeof Bun.spawn>;
  exitCode: number | null = null;

  constructor(cmd: string[], env: Record<string, string> = {}) {
    this.proc = Bun.spawn(cmd, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    void this.pump(this.proc.stdout as ReadableStream<Uint8Array>, this.stdout);
    void this.pump(this.proc.stderr as ReadableStream<Uint8Array>, this.stderr);
    void this.proc.exited.then((c) => (this.exitCode = c));
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async pump(s: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of s) {
      buf += dec.decode(chunk);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) lines.push(buf);
  }

  /** Waits for a line matching re on stdout or stderr; returns it. */
  async waitForLine(re: RegExp, ms = 10_000): Promise<string> {
    let found: string | undefined;
    const ok = await waitFor(() => (found = [...this.stdout, ...this.stderr].find((l) => re.test(l))) !== undefined || this.exitCode !== null, ms);
    if (!ok || found === undefined) {
      throw new Error(`no line matching ${re} (exit ${this.exitCode});\nstdout:\n${this.stdout.join("\n")}\nstderr:\n${this.stderr.join("\n")}`);
    }
    return found;
  }

  countLines(re: RegExp): number {
    return [...this.stdout, ...this.stderr].filter((l) => re.test(l)).length;
  }

  /** Waits for the process to exit by itself; returns its exit code. */
  async wait(ms = 15_000): Promise<number> {
    if (!(await waitFor(() => this.exitCode !== null, ms))) throw new Error(`process ${this.pid} did not exit within ${ms} ms`);
    return this.exitCode!;
  }

  /** Sends a signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM", ms = 15_000): Promise<number> {
    if (this.exitCode === null) this.proc.kill(signal);
    if (!(await waitFor(() => this.exitCode !== null, ms))) {
      this.proc.kill("SIGKILL");
      throw new Error(`process ${this.pid} did not exit within ${ms} ms of ${signal}`);
    }
    return this.exitCode!;
  }
}

/** A Go HTTP server fixture; resolves once it prints "listening ADDR". */
export async function startServer(exe: string, args: string[] = []): Promise<{ proc: Proc; base: string; port: number }> {
  const proc = new Proc([exe, ...args]);
  const line = await proc.waitForLine(/^listening /);
  const addr = line.slice("listening ".length).trim();
  return { proc, base: `http://${addr}`, port: Number(addr.split(":").pop()) };
}

/** Starts `gotel run` and waits until it attached to pid (or, without one, until it runs). */
export async function runGotel(args: string[], env: Record<string, string>, attachedPid?: number): Promise<Proc> {
  const g = new Proc([GOTEL, "run", ...args], env);
  try {
    await g.waitForLine(attachedPid ? new RegExp(`attached pid=${attachedPid} `) : /gotel is running/, 20_000);
  } catch (e) {
    await g.stop("SIGKILL"); // a failed beforeAll runs no afterAll: do not leave it running
    throw e;
  }
  return g;
}

/** The /proc/PID/fdinfo text of each file descriptor the process holds (ids of its eBPF programs and maps, …). */
export function* fdInfos(pid: number): Generator<string> {
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      yield readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    } catch {
      // closed meanwhile
    }
  }
}
