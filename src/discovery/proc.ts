/**
 * Small readers of /proc. Every read races with the process it describes: a process can exit, become a zombie, or
 * have its pid reused between two reads, so each reader returns undefined instead of throwing, and readProcess
 * checks the start time again after its reads to be sure they all describe one process.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { log } from "../log.ts";

/** One process image: what it runs and which incarnation of its pid it is. */
export interface ProcessInfo {
  pid: number;
  /** /proc/pid/exe as the kernel shows it, with a trailing " (deleted)" removed. */
  exePath: string;
  /** The executable was unlinked or replaced on disk after this process started it. */
  deleted: boolean;
  /** The executable's inode (stat follows /proc/pid/exe to it, so this works for deleted files too). */
  exeDev: bigint;
  exeIno: bigint;
  /** Field 22 of /proc/pid/stat, in clock ticks since boot: tells a reused pid from the original process. */
  startTime: bigint;
  comm: string;
  /** The pid the process sees for itself (innermost NSpid entry); differs from pid inside a pid namespace. */
  nsPid?: number;
}

/** The fields of /proc/pid/stat that discovery needs; reading it is the cheap per-scan check. */
export interface ProcStat {
  pid: number;
  comm: string;
  /** R, S, D, Z (zombie), X (dead), … */
  state: string;
  /** The kernel's PF_* task flags (field 9). */
  flags: number;
  startTime: bigint;
  /**
   * Changes when the process calls execve while pid and start time stay the same: the code and stack addresses
   * of the new image (randomized by ASLR). They read as 0 without ptrace access; comm stands in then.
   */
  image: string;
}

export type NotReadReason = "gone" | "zombie" | "kernel thread" | "unreadable";

export type ProcessRead = { ok: true; info: ProcessInfo } | { ok: false; reason: NotReadReason; detail?: string };

const PF_KTHREAD = 0x00200000;
const DELETED = " (deleted)";

function errorCode(e: unknown): string | undefined {
  return e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : undefined;
}

/** ENOENT and ESRCH are what /proc answers for a process that has gone away. */
function isGone(e: unknown): boolean {
  const code = errorCode(e);
  return code === "ENOENT" || code === "ESRCH";
}

/** The pids of all processes (thread-group leaders; /proc does not list other threads). */
export function listPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57) pids.push(Number(name));
  }
  return pids;
}

/** Parses /proc/pid/stat; comm is between the first "(" and the last ")" because it may contain both. */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  // f[0] is field 3 (state); field N is f[N - 3].
  const f = text.slice(close + 2).split(" ");
  const [state, flags, startTime, startCode, startStack] = [f[0], f[6], f[19], f[23], f[25]];
  if (state === undefined || flags === undefined || startTime === undefined) return undefined;
  const comm = text.slice(open + 1, close);
  const addresses = `${startCode ?? 0}:${startStack ?? 0}`;
  return {
    pid,
    comm,
    state,
    flags: Number(flags),
    startTime: BigInt(startTime),
    image: addresses === "0:0" ? `comm:${comm}` : addresses,
  };
}

/** Reads /proc/pid/stat; undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch (e) {
    if (!isGone(e)) log.debug("cannot read /proc/pid/stat", { pid, error: errorCode(e) ?? String(e) });
    return undefined;
  }
  return parseStat(pid, text);
}

export function isZombie(s: ProcStat): boolean {
  return s.state === "Z" || s.state === "X" || s.state === "x";
}

export function isKernelThread(s: ProcStat): boolean {
  return (s.flags & PF_KTHREAD) !== 0;
}

/** Tgid and NSpid from /proc/pid/status; undefined when the process is gone. */
export function readStatus(pid: number): { tgid: number; nsPids: number[] } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "latin1");
  } catch {
    return undefined;
  }
  const tgid = /^Tgid:\s*(\d+)/m.exec(text)?.[1];
  const nsPid = /^NSpid:([\t 0-9]*)$/m.exec(text)?.[1];
  return {
    tgid: tgid === undefined ? pid : Number(tgid),
    nsPids: nsPid === undefined ? [] : nsPid.trim().split(/\s+/).map(Number),
  };
}

/**
 * Reads one process, or says why it cannot be: gone, a zombie, a kernel thread (no exe), or not readable.
 * `nsPid: false` skips /proc/pid/status, the dearest of the reads, for a caller that first wants to know whether
 * the process is of interest at all (see addNsPid); `stat` is a /proc/pid/stat the caller has just read.
 */
export function readProcessResult(pid: number, opts: { nsPid?: boolean; stat?: ProcStat } = {}): ProcessRead {
  const st = opts.stat ?? readStat(pid);
  if (!st) return { ok: false, reason: "gone" };
  if (isZombie(st)) return { ok: false, reason: "zombie" };
  if (isKernelThread(st)) return { ok: false, reason: "kernel thread" };

  let link: string;
  let dev: bigint;
  let ino: bigint;
  try {
    link = readlinkSync(`/proc/${pid}/exe`);
    const s = statSync(`/proc/${pid}/exe`, { bigint: true });
    dev = s.dev;
    ino = s.ino;
  } catch (e) {
    // A process in the middle of exiting has already dropped its executable before it turns into a zombie.
    if (isGone(e)) {
      const again = readStat(pid);
      if (!again || again.startTime !== st.startTime) return { ok: false, reason: "gone" };
      if (isZombie(again)) return { ok: false, reason: "zombie" };
    }
    return { ok: false, reason: "unreadable", detail: `/proc/${pid}/exe: ${errorCode(e) ?? String(e)}` };
  }
  const status = opts.nsPid === false ? undefined : readStatus(pid);

  // The pid may have been reused between the reads above; only the start time tells.
  const after = readStat(pid);
  if (!after || after.startTime !== st.startTime || isZombie(after)) return { ok: false, reason: "gone" };

  const deleted = link.endsWith(DELETED);
  const info: ProcessInfo = {
    pid,
    exePath: deleted ? link.slice(0, -DELETED.length) : link,
    deleted,
    exeDev: dev,
    exeIno: ino,
    startTime: st.startTime,
    comm: after.comm,
  };
  const nsPid = status?.nsPids.at(-1);
  if (nsPid !== undefined) info.nsPid = nsPid;
  return { ok: true, info };
}

/** Fills in nsPid of a process read with `nsPid: false`. */
export function addNsPid(info: ProcessInfo): ProcessInfo {
  if (info.nsPid === undefined) {
    const nsPid = readStatus(info.pid)?.nsPids.at(-1);
    if (nsPid !== undefined) info.nsPid = nsPid;
  }
  return info;
}

/** The process, or undefined when it is gone or cannot be read (the debug log says which). */
export function readProcess(pid: number): ProcessInfo | undefined {
  const r = readProcessResult(pid);
  if (r.ok) return r.info;
  log.debug("process not readable", { pid, reason: r.reason, detail: r.detail });
  return undefined;
}
