/** Kernel tests run as root on the real kernel. Without root they fail and say why (they never skip silently). */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("kernel tests need root: run the test command as root (sudo npm test)");
}

/** Polls until cond() is true or the time is up; returns whether it became true. */
export async function waitFor(cond: () => boolean, ms = 5000, step = 10): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await Bun.sleep(step);
  }
  return cond();
}

/** A child process speaking lines on stdin/stdout. */
export class LineProcess {
  readonly lines: string[] = [];
  private readonly proc: ReturnType<typeof Bun.spawn>;

  constructor(cmd: string[]) {
    this.proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    void this.read();
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async read(): Promise<void> {
    const stdout = this.proc.stdout as ReadableStream<Uint8Array>;
    let buf = "";
    for await (const chunk of stdout) {
      buf += new TextDecoder().decode(chunk);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
  }

  send(line: string): void {
    const stdin = this.proc.stdin as import("bun").FileSink;
    stdin.write(line + "\n");
    stdin.flush();
  }

  /** Sends a line and waits for the n-th output line to appear. */
  async call(line: string): Promise<string> {
    const n = this.lines.length;
    this.send(line);
    if (!(await waitFor(() => this.lines.length > n))) throw new Error(`no answer to '${line}'`);
    return this.lines[n]!;
  }

  kill(): void {
    this.proc.kill();
  }
}
