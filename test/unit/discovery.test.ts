/**
 * Process discovery against the real /proc: these tests start real processes (copies of /bin/sleep, so each
 * test's executable has an inode of its own) and need to be able to read their /proc/pid/exe (root, or same user).
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GotelError } from "../../src/errors.ts";
import { isKernelThread, listPids, parseStat, readProcess, readStat } from "../../src/discovery/proc.ts";
import { matchesExe, type ProcessInfo, ProcessWatcher, type TargetSpec } from "../../src/discovery/watcher.ts";

const tmp = realpathSync(mkdtempSync(join(tmpdir(), "gotel-discovery-")));
const children: Subprocess[] = [];
const watchers: ProcessWatcher[] = [];

afterAll(() => {
  for (const w of watchers) w.stop();
  for (const c of children) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

/** A private copy of /bin/sleep: its inode belongs to this test alone. */
function copyOfSleep(name: string): string {
  const path = join(tmp, name);
  copyFileSync("/bin/sleep", path);
  chmodSync(path, 0o755);
  return path;
}

async function run(cmd: string[]): Promise<Subprocess> {
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore" });
  children.push(p);
  // Bun.spawn returns once the child exists; wait until it runs the new image.
  await waitFor(() => readProcess(p.pid)?.comm !== readProcess(process.pid)?.comm, 2000);
  return p;
}

async function waitFor(cond: () => boolean, timeoutMs = 1000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await Bun.sleep(5);
  }
  return performance.now() - t0;
}

/** Records events and checks their order: one start per image, at most one exit, exit after start. */
class Recorder {
  readonly log: { kind: "start" | "exit"; p: ProcessInfo }[] = [];
  readonly violations: string[] = [];
  private readonly open = new Set<string>();
  private readonly closed = new Set<string>();

  constructor(private readonly startDelayMs = 0) {}

  onStart = async (p: ProcessInfo): Promise<void> => {
    const key = `${p.pid}/${p.startTime}/${p.exeIno}`;
    if (this.open.has(key) || this.closed.has(key)) this.violations.push(`duplicate start ${key}`);
    this.open.add(key);
    if (this.startDelayMs) await Bun.sleep(this.startDelayMs);
    this.log.push({ kind: "start", p });
  };

  onExit = (p: ProcessInfo): void => {
    const key = `${p.pid}/${p.startTime}/${p.exeIno}`;
    if (!this.open.has(key)) this.violations.push(`exit without start (or twice) ${key}`);
    this.open.delete(key);
    this.closed.add(key);
    this.log.push({ kind: "exit", p });
  };

  count(kind: "start" | "exit", pid: number): number {
    return this.log.filter((e) => e.kind === kind && e.p.pid === pid).length;
  }
}

function watch(spec: Partial<TargetSpec>, rec: Recorder, opts?: ConstructorParameters<typeof ProcessWatcher>[2]) {
  const w = new ProcessWatcher({ pids: [], exes: [], all: false, ...spec }, rec, opts);
  watchers.push(w);
  return w;
}

async function startError(w: ProcessWatcher): Promise<GotelError> {
  try {
    await w.start();
  } catch (e) {
    if (e instanceof GotelError) return e;
    throw e;
  }
  throw new Error("start() did not fail");
}

describe("proc readers", () => {
  test("stat parsing copes with spaces and parentheses in comm", () => {
    const s = parseStat(7, "7 (a) b (c)) S 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0 0 4096 8192 65536");
    expect(s?.comm).toBe("a) b (c)");
    expect(s?.state).toBe("S");
    expect(s?.startTime).toBe(12345n);
    expect(s?.image).toBe("4096:65536");
  });

  test("our own process; kernel threads and missing pids read as undefined", () => {
    const me = readProcess(process.pid);
    expect(me?.exePath).toBe(realpathSync(process.execPath));
    expect(me?.deleted).toBe(false);
    expect(me?.startTime).toBeGreaterThan(0n);
    expect(typeof me?.nsPid).toBe("number");
    const kthread = listPids().find((pid) => {
      const s = readStat(pid);
      return s !== undefined && isKernelThread(s);
    });
    if (kthread !== undefined) expect(readProcess(kthread)).toBeUndefined();
    expect(readProcess(unusedPid())).toBeUndefined();
  });
});

function unusedPid(): number {
  const max = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
  for (let pid = max - 1; ; pid--) if (!existsSync(`/proc/${pid}`)) return pid;
}

describe("--exe", () => {
  const app = copyOfSleep("app");
  const rec = new Recorder();
  const w = watch({ exes: [app] }, rec);
  let a: Subprocess, b: Subprocess;

  test("(1) sees the instances already running when start() resolves", async () => {
    a = await run([app, "60"]);
    b = await run([app, "60"]);
    await w.start();
    expect(rec.count("start", a.pid)).toBe(1);
    expect(rec.count("start", b.pid)).toBe(1);
    expect(new Set(w.current().map((p) => p.pid))).toEqual(new Set([a.pid, b.pid]));
  });

  test("(2) a later instance is reported within 1 s", async () => {
    const t0 = performance.now();
    const c = await run([app, "60"]);
    await waitFor(() => rec.count("start", c.pid) === 1, 1000);
    console.log(`new process reported after ${(performance.now() - t0).toFixed(0)} ms (interval 200 ms)`);
  });

  test("(3) a killed instance is reported as exited, once", async () => {
    const t0 = performance.now();
    a.kill("SIGKILL");
    await waitFor(() => rec.count("exit", a.pid) === 1, 1000);
    console.log(`exit reported after ${(performance.now() - t0).toFixed(0)} ms`);
    await Bun.sleep(600);
    expect(rec.count("exit", a.pid)).toBe(1);
    expect(w.current().map((p) => p.pid)).not.toContain(a.pid);
  });

  test("(4) a binary replaced on disk: new instances match by path, old ones keep matching", async () => {
    const before = readProcess(b.pid);
    const next = copyOfSleep("app.next");
    renameSync(next, app);
    const d = await run([app, "60"]);
    await waitFor(() => rec.count("start", d.pid) === 1, 1000);
    const old = readProcess(b.pid);
    expect(old?.deleted).toBe(true);
    expect(old?.exePath).toBe(app);
    expect(old?.exeIno).toBe(before?.exeIno ?? -1n);
    expect(readProcess(d.pid)?.exeIno).not.toBe(old?.exeIno ?? -1n);
    expect(w.current().map((p) => p.pid)).toContain(b.pid);
    expect(rec.count("exit", b.pid)).toBe(0);

    // Moved away from the path: only the inode the watcher remembers still identifies it.
    renameSync(app, join(tmp, "app.moved"));
    const e = await run([join(tmp, "app.moved"), "60"]);
    await waitFor(() => rec.count("start", e.pid) === 1, 1000);
    expect(rec.violations).toEqual([]);
  });

  test("a process that execs into the target later is found (exec keeps pid and start time)", async () => {
    const app2 = copyOfSleep("app2");
    const rec2 = new Recorder();
    const w2 = watch({ exes: [app2] }, rec2);
    await w2.start();
    const sh = await run(["/bin/sh", "-c", `sleep 0.3; exec ${app2} 60`]);
    expect(rec2.count("start", sh.pid)).toBe(0);
    const ms = await waitFor(() => rec2.count("start", sh.pid) === 1, 2000);
    console.log(`exec into the target reported after ${ms.toFixed(0)} ms (~300 ms of it before the exec)`);
    expect(w2.current()[0]?.exePath).toBe(app2);
    w2.stop();
  });
});

describe("matchesExe", () => {
  const p: ProcessInfo = {
    pid: 1,
    exePath: "/a/app",
    deleted: true,
    exeDev: 1n,
    exeIno: 2n,
    startTime: 3n,
    comm: "app",
  };
  test("by inode, or by path", () => {
    expect(matchesExe(p, { dev: 1n, ino: 2n, realPath: "/b/app" })).toBe(true);
    expect(matchesExe(p, { dev: 1n, ino: 9n, realPath: "/a/app" })).toBe(true);
    expect(matchesExe(p, { dev: 9n, ino: 2n, realPath: "/b/app" })).toBe(false);
  });
});

describe("--pid and spec validation", () => {
  test("(5) a pid is followed until it exits", async () => {
    const other = copyOfSleep("other");
    const p = await run([other, "60"]);
    const rec = new Recorder();
    const w = watch({ pids: [p.pid] }, rec);
    await w.start();
    expect(rec.count("start", p.pid)).toBe(1);
    p.kill("SIGKILL");
    await waitFor(() => rec.count("exit", p.pid) === 1, 1000);
    await Bun.sleep(500);
    expect(rec.log.length).toBe(2);
    expect(w.current()).toEqual([]);
    w.stop();
  });

  test("a pid that does not exist", async () => {
    const pid = unusedPid();
    const e = await startError(watch({ pids: [pid] }, new Recorder()));
    expect(e.oneLine).toBe(`process ${pid} does not exist; check the pid`);
  });

  test("an --exe path that does not exist, or is not a file", async () => {
    const missing = join(tmp, "nope");
    expect((await startError(watch({ exes: [missing] }, new Recorder()))).oneLine).toBe(
      `${missing}: no such file; check the path given to --exe (OTEL_GO_AUTO_TARGET_EXE)`,
    );
    const dir = join(tmp, "dir");
    mkdirSync(dir);
    expect((await startError(watch({ exes: [dir] }, new Recorder()))).oneLine).toBe(
      `${dir}: not a regular file; --exe takes the path of an executable file`,
    );
  });

  test("a kernel thread, and an empty spec", async () => {
    const kthread = listPids().find((pid) => {
      const s = readStat(pid);
      return s !== undefined && isKernelThread(s);
    });
    if (kthread !== undefined) {
      expect((await startError(watch({ pids: [kthread] }, new Recorder()))).message).toBe(
        `process ${kthread} is a kernel thread`,
      );
    }
    expect((await startError(watch({}, new Recorder()))).message).toBe("no target process given");
  });
});

describe("--all", () => {
  test("(6) every process the predicate accepts, asked once per executable", async () => {
    const goish = copyOfSleep("goish");
    const ino = statSync(goish, { bigint: true }).ino;
    const asked = new Map<string, number>();
    const accept = (p: ProcessInfo): boolean => {
      const key = `${p.exeDev}:${p.exeIno}`;
      asked.set(key, (asked.get(key) ?? 0) + 1);
      expect(p.pid).not.toBe(process.pid);
      return p.exeIno === ino;
    };
    const x = await run([goish, "60"]);
    const rec = new Recorder();
    const w = watch({ all: true }, rec, { accept, intervalMs: 50 });
    await w.start();
    const y = await run([goish, "60"]);
    await waitFor(() => rec.count("start", y.pid) === 1, 1000);
    expect(new Set(w.current().map((p) => p.pid))).toEqual(new Set([x.pid, y.pid]));
    expect(Math.max(...asked.values())).toBe(1);
    w.stop();
  });
});

describe("events", () => {
  test("(7) no duplicates over many scans; a slow async onStart is followed by exactly one onExit", async () => {
    const app = copyOfSleep("dup");
    const rec = new Recorder(300);
    const w = watch({ exes: [app] }, rec, { intervalMs: 10 });
    const a = await run([app, "60"]);
    await w.start(); // waits for the 300 ms onStart of a
    expect(rec.count("start", a.pid)).toBe(1);
    const b = await run([app, "60"]);
    await waitFor(() => w.current().some((p) => p.pid === b.pid), 1000);
    b.kill("SIGKILL"); // while b's onStart is still sleeping
    await waitFor(() => rec.count("exit", b.pid) === 1, 2000);
    const order = rec.log.filter((e) => e.p.pid === b.pid).map((e) => e.kind);
    expect(order).toEqual(["start", "exit"]);
    await Bun.sleep(300);
    const scans = w.stats().scans;
    console.log(`${scans} scans, ${rec.log.length} events`);
    expect(scans).toBeGreaterThan(30);
    expect(rec.log.map((e) => `${e.kind} ${e.p.pid === a.pid ? "a" : e.p.pid === b.pid ? "b" : e.p.pid} ${e.p.exePath}`)).toEqual([
      `start a ${app}`, `start b ${app}`, `exit b ${app}`,
    ]);
    expect(rec.violations).toEqual([]);
    w.stop();
  });
});

describe("cost", () => {
  test("(8) scan time with the real /proc (printed, no threshold)", async () => {
    const app = copyOfSleep("cost");
    const sleepers: Subprocess[] = [];
    for (let i = 0; i < 250; i++) {
      const s = Bun.spawn(["/bin/sleep", "60"], { stdout: "ignore", stderr: "ignore" });
      sleepers.push(s);
      children.push(s);
    }
    await Bun.sleep(300);
    const report = async (label: string, spec: Partial<TargetSpec>, accept?: (p: ProcessInfo) => boolean) => {
      const w = watch(spec, new Recorder(), { intervalMs: 20, ...(accept ? { accept } : {}) });
      await w.start();
      await Bun.sleep(1000);
      w.stop();
      const s = w.stats();
      console.log(
        `${label}: ${listPids().length} processes, first scan ${s.firstScanMs.toFixed(2)} ms, ` +
          `last ${s.lastScanMs.toFixed(2)} ms, max ${s.maxScanMs.toFixed(2)} ms over ${s.scans} scans`,
      );
    };
    await report("--exe", { exes: [app] });
    await report("--all", { all: true }, () => false);
    for (const s of sleepers) s.kill("SIGKILL");
  });
});

describe("pid namespaces", () => {
  test("nsPid is the pid the process sees for itself", async () => {
    const app = copyOfSleep("ns");
    const rec = new Recorder();
    const w = watch({ exes: [app] }, rec, { intervalMs: 20 });
    await w.start();
    const u = Bun.spawn(["unshare", "--pid", "--fork", app, "60"], { stdout: "ignore", stderr: "pipe" });
    children.push(u);
    try {
      await waitFor(() => w.current().length === 1, 2000);
    } catch {
      console.log(`unshare --pid not possible here: ${await new Response(u.stderr).text()}`);
      return;
    }
    const p = w.current()[0];
    expect(p?.pid).not.toBe(1);
    expect(p?.nsPid).toBe(1);
    if (p) process.kill(p.pid, "SIGKILL");
    w.stop();
  });
});
