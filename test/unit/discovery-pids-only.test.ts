/**
 * With only pids to follow (`--pid`), discovery reads no other process: each scan still lists /proc and reads
 * every process's stat (to see exits and execs), but the exe and status of the host's other processes are read
 * only when an --exe or --all could match them. Counted through the reader the watcher uses.
 */
import { expect, mock, test } from "bun:test";
import * as proc from "../../src/discovery/proc.ts";

const read: number[] = [];
const real = proc.readProcessResult;
mock.module("../../src/discovery/proc.ts", () => ({
  ...proc,
  readProcessResult: (pid: number, opts?: Parameters<typeof real>[1]) => {
    read.push(pid);
    return real(pid, opts);
  },
}));
const { ProcessWatcher } = await import("../../src/discovery/watcher.ts");

test("--pid alone: of all the host's processes only the given one is read, over several scans", async () => {
  const child = Bun.spawn(["sleep", "30"]);
  const started: number[] = [];
  const w = new ProcessWatcher({ pids: [child.pid], exes: [], all: false }, { onStart: (p) => void started.push(p.pid), onExit: () => {} }, { intervalMs: 50 });
  try {
    await w.start();
    await Bun.sleep(300);
    expect(started).toEqual([child.pid]);
    expect(w.stats().scans).toBeGreaterThan(3);
    expect(new Set(read)).toEqual(new Set([child.pid]));
  } finally {
    w.stop();
    child.kill("SIGKILL");
  }
});

test("--all reads the others (the test's own process among them)", async () => {
  read.length = 0;
  const w = new ProcessWatcher({ pids: [], exes: [], all: true }, { onStart: () => {}, onExit: () => {} }, { intervalMs: 50, accept: () => false });
  try {
    await w.start();
    expect(read.length).toBeGreaterThan(1);
  } finally {
    w.stop();
  }
});
