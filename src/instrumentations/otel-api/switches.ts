/**
 * Setting the OpenTelemetry Go API's "an agent is attached" bools in a live process (plan.ts's SWITCHES), through
 * /proc/PID/mem: the one write gotel makes into a process outside the kernel's bpf_probe_write_user, which
 * lockdown refuses. Lockdown protects the kernel, not processes from root: a ptrace-capable agent may write a
 * process's memory. The library documents these bools as the agent's to set, and a one-byte store of a bool the
 * program only reads is safe at any moment. Reset to false when gotel lets the process go, so that it stops
 * marshalling spans nobody reads. The file stays open from the first write to the reset: it is bound to the
 * process it was opened for, so a pid reused meanwhile by another program is never written.
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";

export class ProcessSwitches {
  private fd: number | undefined;
  private readonly on = new Set<number>();

  constructor(private readonly pid: number) {}

  /** Sets the bool at address; false when the process is gone or its memory may not be written. */
  set(address: number, on: boolean): boolean {
    try {
      this.fd ??= openSync(`/proc/${this.pid}/mem`, "r+");
      if (writeSync(this.fd, new Uint8Array([on ? 1 : 0]), 0, 1, address) !== 1) return false;
    } catch {
      return false;
    }
    if (on) this.on.add(address);
    else this.on.delete(address);
    return true;
  }

  has(address: number): boolean {
    return this.on.has(address);
  }

  /** The bool a `var x = new(bool)` points to: its variable's address (as loaded). */
  boolBehind(variable: number): number | undefined {
    try {
      this.fd ??= openSync(`/proc/${this.pid}/mem`, "r+");
      const b = new Uint8Array(8);
      if (readSync(this.fd, b, 0, 8, variable) !== 8) return undefined;
      const p = new DataView(b.buffer).getBigUint64(0, true);
      return p === 0n || p > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(p);
    } catch {
      return undefined;
    }
  }

  /** Sets every bool it set back to false (nothing happens if the process is gone), and lets the file go. */
  reset(): void {
    for (const address of [...this.on]) this.set(address, false);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
