/**
 * Setting the OpenTelemetry Go API's "an agent is attached" bools in a live process (plan.ts's SWITCHES), through
 * /proc/PID/mem: the one write gotel makes into a process outside the kernel's bpf_probe_write_user, which
 * lockdown refuses. Lockdown protects the kernel, not processes from root: a ptrace-capable agent may write a
 * process's memory. The library documents these bools as the agent's to set, and a one-byte store of a bool the
 * program only reads is safe at any moment. Reset to false when gotel lets the process go, so that it stops
 * marshalling spans nobody reads.
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { loadBias } from "../../gobin/runtime-types.ts";
import { readFileSync, readlinkSync } from "node:fs";

function withMemory<T>(pid: number, use: (fd: number) => T): T | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(`/proc/${pid}/mem`, "r+");
    return use(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Stores the bool at address; false when the process is gone or its memory may not be written. */
export function setBool(pid: number, address: number, on: boolean): boolean {
  return withMemory(pid, (fd) => writeSync(fd, new Uint8Array([on ? 1 : 0]), 0, 1, address) === 1) ?? false;
}

/** The bool a `var x = new(bool)` points to: its variable's link-time address moved by the process's load bias. */
export function boolBehind(pid: number, variable: number, lowestLoad: number): number | undefined {
  let bias: number | undefined;
  try {
    bias = loadBias(readFileSync(`/proc/${pid}/maps`, "utf8"), readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ""), lowestLoad);
  } catch {
    return undefined;
  }
  if (bias === undefined) return undefined;
  return withMemory(pid, (fd) => {
    const b = new Uint8Array(8);
    if (readSync(fd, b, 0, 8, variable + bias) !== 8) return undefined;
    const p = new DataView(b.buffer).getBigUint64(0, true);
    return p === 0n || p > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(p);
  });
}
