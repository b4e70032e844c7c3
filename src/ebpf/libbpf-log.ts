/**
 * libbpf's log lines go to our logger (libbpf's "warn" and "info" at debug level unless they matter: libbpf
 * is chatty and our own errors already say what failed). While an object loads, lines are also captured so a
 * verifier rejection can be reported with its log.
 */
import { CString, FFIType, JSCallback, type Pointer } from "bun:ffi";
import { log } from "../log.ts";
import { libbpf } from "./libbpf.ts";

/** libbpf's enum libbpf_print_level */
const LIBBPF_WARN = 0;

let callback: JSCallback | undefined;
const captures: string[][] = [];

function onLine(level: number, msg: Pointer | null): void {
  if (!msg) return;
  const line = new CString(msg).toString();
  for (const c of captures) c.push(line);
  logLibbpfLine(level, line);
}

/** A line of libbpf's, to our logger: also the lines a load in a thread of its own kept (BpfObject.startLoad). */
export function logLibbpfLine(level: number, line: string): void {
  // libbpf warnings are mostly the prelude of an error we report ourselves; keep them out of the way
  if (level === LIBBPF_WARN) log.debug(`libbpf: ${line}`, { level: "warn" });
  else log.debug(`libbpf: ${line}`);
}

let debugLines = false;

/**
 * Lets libbpf's debug lines through from now on (they are dropped in gotel_helpers.c before they are formatted,
 * thousands an object): for the debug log, and for verifier logs, which libbpf prints at debug level for a
 * program that passed.
 */
export function keepLibbpfDebugLines(): void {
  if (debugLines) return;
  libbpf().sym.gotel_keep_debug_lines();
  debugLines = true;
}

/** Routes libbpf's log through our logger. Idempotent. */
export function installLibbpfLog(): void {
  if (callback) return;
  callback = new JSCallback((level: number, msg: Pointer | null) => onLine(level, msg), {
    args: [FFIType.i32, FFIType.ptr],
    returns: FFIType.void,
  });
  if (callback.ptr) libbpf().sym.gotel_set_log(callback.ptr);
}

/** Runs fn and returns what libbpf logged meanwhile, along with fn's result. */
export function captureLibbpfLog<T>(fn: () => T): { result: T; lines: string[] } {
  installLibbpfLog();
  const lines: string[] = [];
  captures.push(lines);
  try {
    return { result: fn(), lines };
  } finally {
    captures.splice(captures.indexOf(lines), 1);
  }
}
