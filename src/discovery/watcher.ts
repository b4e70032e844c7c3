/**
 * Follows the set of target processes as it changes: polls /proc and reports each process image that matches the
 * target spec once when it appears and once when it goes away.
 *
 * A process image is (pid, start time, executable). Cost is kept low by never re-reading what cannot have changed:
 * a known pid costs one read of /proc/pid/stat (start time: exit or pid reuse; code/stack addresses: execve), and
 * known non-matching pids are re-checked only every ~800 ms, staggered across scans, so that a process which
 * execs into a target later (`sh -c '…; exec app'`, or one caught between fork and exec) is still found in time.
 */
import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { GotelError } from "../errors.ts";
import { log } from "../log.ts";
import {
  addNsPid,
  isKernelThread,
  isZombie,
  listPids,
  type ProcessInfo,
  readProcessResult,
  readStat,
  readStatus,
} from "./proc.ts";

export type { ProcessInfo } from "./proc.ts";

export interface TargetSpec {
  pids: number[];
  exes: string[];
  all: boolean;
}

export interface WatcherEvents {
  onStart(p: ProcessInfo): void | Promise<void>;
  onExit(p: ProcessInfo): void | Promise<void>;
}

export interface WatcherOptions {
  /** How often /proc is scanned; default 200 ms. */
  intervalMs?: number;
  /** For `all`: whether a process is a target (e.g. "is a Go executable"); asked once per executable (dev, ino). */
  accept?: (p: ProcessInfo) => boolean;
}

/** One identity of an --exe file: its inode, or its canonical path (a replaced binary has a new inode). */
export interface ExeIdentity {
  dev: bigint;
  ino: bigint;
  realPath: string;
}

export interface ScanStats {
  scans: number;
  firstScanMs: number;
  lastScanMs: number;
  maxScanMs: number;
}

/** Same inode, or same path: the latter is a restart after the binary was replaced on disk. */
export function matchesExe(p: ProcessInfo, exe: ExeIdentity): boolean {
  return (p.exeDev === exe.dev && p.exeIno === exe.ino) || p.exePath === exe.realPath;
}

interface ExeTarget {
  path: string;
  /** Every identity the path has had since start: processes of an older binary still match by its inode. */
  identities: ExeIdentity[];
}

interface Known {
  startTime: bigint;
  image: string;
  /** Scan number when last seen in /proc; entries not seen in a scan have exited. */
  seen: number;
  /** Set when the process is a target; onStart was fired for it. */
  info?: ProcessInfo;
}

type ForgetReason = "exit" | "exec";

const MAX_IDENTITIES = 16;

function statExe(path: string): ExeIdentity {
  const s = statSync(path, { bigint: true });
  return { dev: s.dev, ino: s.ino, realPath: realpathSync(path) };
}

function sameIdentity(a: ExeIdentity, b: ExeIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.realPath === b.realPath;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class ProcessWatcher {
  private readonly intervalMs: number;
  private readonly accept: (p: ProcessInfo) => boolean;
  /** Non-matching pids are re-checked every this many scans. */
  private readonly recheckPeriod: number;
  /** --pid targets: pid -> the start time it had at start(); removed on exit so a reused pid is never adopted. */
  private readonly pidTargets = new Map<number, bigint>();
  private exeTargets: ExeTarget[] = [];
  private readonly known = new Map<number, Known>();
  private readonly acceptCache = new Map<string, boolean>();
  /** Per pid, the tail of its event handlers: events of one pid run in order, one at a time. */
  private readonly chains = new Map<number, Promise<void>>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private state: "new" | "running" | "stopped" = "new";
  private readonly scanStats: ScanStats = { scans: 0, firstScanMs: 0, lastScanMs: 0, maxScanMs: 0 };

  constructor(
    private readonly spec: TargetSpec,
    private readonly events: WatcherEvents,
    opts: WatcherOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 200;
    this.accept = opts.accept ?? (() => true);
    this.recheckPeriod = Math.max(1, Math.floor(800 / this.intervalMs));
  }

  /**
   * Validates the spec, scans once and waits for the onStart handlers of every process already running, then
   * keeps scanning every intervalMs until stop().
   */
  async start(): Promise<void> {
    if (this.state !== "new") throw new GotelError("process watcher already started", "create a new ProcessWatcher");
    this.validate();
    this.state = "running";
    try {
      this.scan();
    } catch (e) {
      this.state = "stopped";
      throw new GotelError(`cannot scan /proc (${message(e)})`, "gotel needs procfs mounted at /proc", { cause: e });
    }
    await this.settled();
    if (this.state === "running") this.schedule();
  }

  /** Stops scanning. Handlers already queued still run; no onExit is fired for the processes still running. */
  stop(): void {
    this.state = "stopped";
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The targets running now (as of the last scan), including any whose onStart is still in progress. */
  current(): ProcessInfo[] {
    const out: ProcessInfo[] = [];
    for (const k of this.known.values()) if (k.info) out.push(k.info);
    return out;
  }

  /** Resolves when every event handler queued so far has finished. */
  async settled(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }

  stats(): ScanStats {
    return { ...this.scanStats };
  }

  private validate(): void {
    const { pids, exes, all } = this.spec;
    if (pids.length === 0 && exes.length === 0 && !all) {
      throw new GotelError(
        "no target process given",
        "pass --pid, --exe or --all (or set OTEL_GO_AUTO_TARGET_PID or OTEL_GO_AUTO_TARGET_EXE)",
      );
    }
    for (const given of pids) this.validatePid(given);
    this.exeTargets = exes.map((path) => this.validateExe(path));
  }

  private validatePid(given: number): void {
    if (!Number.isSafeInteger(given) || given <= 0) {
      throw new GotelError(`invalid pid ${given}`, "a pid is a positive integer");
    }
    // /proc/TID exists for every thread, but only the thread-group leader is a process.
    const tgid = readStatus(given)?.tgid ?? given;
    if (tgid !== given) log.info("pid is a thread; tracing its process", { pid: given, process: tgid });
    const r = readProcessResult(tgid);
    if (r.ok) {
      this.pidTargets.set(tgid, r.info.startTime);
      return;
    }
    switch (r.reason) {
      case "gone":
        throw new GotelError(`process ${given} does not exist`, "check the pid");
      case "zombie":
        throw new GotelError(`process ${given} has exited`, "check the pid");
      case "kernel thread":
        throw new GotelError(`process ${given} is a kernel thread`, "give the pid of a user-space process");
      case "unreadable":
        throw new GotelError(
          `cannot read the executable of process ${given} (${r.detail ?? "unknown error"})`,
          "run gotel as root, or grant it CAP_SYS_PTRACE",
        );
    }
  }

  private validateExe(given: string): ExeTarget {
    const path = resolve(given);
    let identity: ExeIdentity;
    try {
      if (!statSync(path).isFile()) {
        throw new GotelError(`${given}: not a regular file`, "--exe takes the path of an executable file");
      }
      identity = statExe(path);
    } catch (e) {
      if (e instanceof GotelError) throw e;
      const code = e instanceof Error && "code" in e ? e.code : undefined;
      if (code === "ENOENT" || code === "ENOTDIR") {
        throw new GotelError(`${given}: no such file`, "check the path given to --exe (OTEL_GO_AUTO_TARGET_EXE)");
      }
      throw new GotelError(`${given}: cannot stat (${message(e)})`, "check the path and gotel's permissions", {
        cause: e,
      });
    }
    return { path, identities: [identity] };
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      if (this.state !== "running") return;
      try {
        this.scan();
      } catch (e) {
        log.error("process scan failed", { error: message(e) });
      }
      if (this.state === "running") this.schedule();
    }, this.intervalMs);
  }

  /** One pass over /proc; fires events, does not wait for their handlers. */
  private scan(): void {
    const t0 = performance.now();
    const n = ++this.scanStats.scans;
    this.refreshExeIdentities();

    for (const pid of listPids()) {
      let known = this.known.get(pid);
      if (known && !known.info && (pid + n) % this.recheckPeriod !== 0) {
        known.seen = n;
        continue;
      }
      const st = readStat(pid);
      if (!st) continue; // gone since the listing; the sweep below reports it
      if (known) {
        if (st.startTime === known.startTime && st.image === known.image && !isZombie(st)) {
          known.seen = n;
          continue;
        }
        // Read while its execve was still building the new image: the exe was already the new one but the code
        // and stack addresses were not set yet (so the image fell back to comm). That is the same image
        // settling, not another exec (seen as a spurious exit + start under load).
        if (st.startTime === known.startTime && !isZombie(st) && known.image.startsWith("comm:") && !st.image.startsWith("comm:")) {
          known.image = st.image;
          known.seen = n;
          continue;
        }
        this.forget(pid, known, st.startTime === known.startTime && !isZombie(st) ? "exec" : "exit");
        known = undefined;
      }
      // Zombies are not recorded, so a reaped-late zombie is looked at again (cheaply) until it is gone.
      if (isZombie(st)) continue;
      const entry: Known = { startTime: st.startTime, image: st.image, seen: n };
      if (!isKernelThread(st) && this.mayMatch(pid)) {
        const r = readProcessResult(pid, { nsPid: false, stat: st });
        if (!r.ok) {
          if (r.reason !== "unreadable") continue; // exited meanwhile: try again next scan if the pid is back
          log.debug("process not readable", { pid, detail: r.detail });
        } else if (r.info.startTime === st.startTime && this.matches(r.info)) {
          entry.info = addNsPid(r.info);
          this.enqueue(pid, "start", r.info);
        }
      }
      this.known.set(pid, entry);
    }

    for (const [pid, k] of this.known) if (k.seen !== n) this.forget(pid, k, "exit");

    const ms = performance.now() - t0;
    if (n === 1) this.scanStats.firstScanMs = ms;
    this.scanStats.lastScanMs = ms;
    this.scanStats.maxScanMs = Math.max(this.scanStats.maxScanMs, ms);
  }

  private forget(pid: number, k: Known, why: ForgetReason): void {
    this.known.delete(pid);
    // execve keeps pid and start time: a --pid target stays a target in its new image.
    if (why === "exit" && this.pidTargets.get(pid) === k.startTime) this.pidTargets.delete(pid);
    if (k.info) this.enqueue(pid, "exit", k.info);
  }

  /** Whether the process could be a target at all: with only pids given, no other one is read (its exe, its
   * status: a host's every process, at every start) */
  private mayMatch(pid: number): boolean {
    return this.pidTargets.has(pid) || this.exeTargets.length > 0 || this.spec.all;
  }

  private matches(p: ProcessInfo): boolean {
    if (this.pidTargets.get(p.pid) === p.startTime) return true;
    for (const t of this.exeTargets) {
      for (const id of t.identities) if (matchesExe(p, id)) return true;
    }
    if (this.spec.all && p.pid !== process.pid) return this.accepts(addNsPid(p));
    return false;
  }

  private accepts(p: ProcessInfo): boolean {
    const key = `${p.exeDev}:${p.exeIno}`;
    let ok = this.acceptCache.get(key);
    if (ok === undefined) {
      try {
        ok = this.accept(p);
      } catch (e) {
        log.warn("target predicate failed; skipping the executable", { pid: p.pid, exe: p.exePath, error: message(e) });
        ok = false;
      }
      this.acceptCache.set(key, ok);
    }
    return ok;
  }

  /**
   * An --exe path can get a new inode (binary replaced) or, through a symlink, a new real path. Remember the new
   * identity and look again at every process that did not match before.
   */
  private refreshExeIdentities(): void {
    let changed = false;
    for (const t of this.exeTargets) {
      let id: ExeIdentity;
      try {
        id = statExe(t.path);
      } catch {
        continue; // missing for a moment during a deploy; keep what we know
      }
      if (t.identities.some((old) => sameIdentity(old, id))) continue;
      log.debug("target executable changed on disk", { exe: t.path, realPath: id.realPath, ino: id.ino });
      t.identities.push(id);
      if (t.identities.length > MAX_IDENTITIES) t.identities.shift();
      changed = true;
    }
    if (!changed) return;
    for (const [pid, k] of this.known) if (!k.info) this.known.delete(pid);
  }

  private enqueue(pid: number, kind: "start" | "exit", p: ProcessInfo): void {
    log.debug(kind === "start" ? "target process started" : "target process exited", {
      pid,
      exe: p.exePath,
      deleted: p.deleted || undefined,
    });
    const handler = kind === "start" ? this.events.onStart : this.events.onExit;
    const prev = this.chains.get(pid) ?? Promise.resolve();
    const next = prev
      .then(() => handler.call(this.events, p))
      .catch((e: unknown) => log.warn(`target process ${kind} handler failed`, { pid, error: message(e) }));
    this.chains.set(pid, next);
    void next.then(() => {
      if (this.chains.get(pid) === next) this.chains.delete(pid);
    });
  }
}
