/**
 * What `gotel doctor` checks: can this kernel, with these privileges, run gotel's probes? Each check says
 * what it found and, when it is not fine, what to do. `required` checks decide doctor's exit code.
 */
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { GotelError } from "../errors.ts";
import { embeddedObjectNames, readEmbeddedObject } from "./assets.ts";
import { PRIVILEGE_HINT } from "./errors.ts";
import { libbpf, strerror } from "./libbpf.ts";
import { uprobeMultiSupported } from "./link.ts";
import { BPF_MAP_TYPE_RINGBUF } from "./map.ts";
import { kernelAtLeast } from "./kernel-version.ts";
import { BpfObject } from "./object.ts";
import { liveRoundTrip } from "./selftest.ts";

export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  hint?: string;
  /** a failed required check means gotel cannot run here */
  required: boolean;
}

const MIN_KERNEL: [number, number] = [5, 8];

function checkKernel(): Check {
  const ok = kernelAtLeast(...MIN_KERNEL);
  return {
    name: "kernel", required: true, status: ok ? "ok" : "fail",
    detail: `Linux ${release()} (gotel needs >= ${MIN_KERNEL.join(".")} for the BPF ring buffer)`,
    hint: ok ? undefined : "upgrade the kernel to 5.8 or newer",
  };
}

const CAPS: Record<string, number> = { CAP_SYS_ADMIN: 21, CAP_SYS_PTRACE: 19, CAP_PERFMON: 38, CAP_BPF: 39 };

/** Effective capabilities of this process, by name. */
export function effectiveCapabilities(status = readFileSync("/proc/self/status", "utf8")): Set<string> {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  const eff = m ? BigInt(`0x${m[1]}`) : 0n;
  return new Set(Object.entries(CAPS).filter(([, bit]) => (eff >> BigInt(bit)) & 1n).map(([n]) => n));
}

function privileges(): { ok: boolean; have: string } {
  const caps = effectiveCapabilities();
  const ok = caps.has("CAP_SYS_ADMIN") || (caps.has("CAP_BPF") && caps.has("CAP_PERFMON"));
  return { ok, have: caps.size ? [...caps].sort().join(", ") : "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN" };
}

/** Before loading anything: without the privileges, say so plainly instead of through libbpf's EPERM. */
export function requirePrivileges(): void {
  const { ok, have } = privileges();
  if (!ok) throw new GotelError(`not allowed to load eBPF programs (effective capabilities: ${have})`, PRIVILEGE_HINT);
}

function checkPrivileges(): Check {
  const { ok, have } = privileges();
  return {
    name: "BPF permission", required: true, status: ok ? "ok" : "fail",
    detail: `effective capabilities: ${have}`,
    hint: ok ? undefined : PRIVILEGE_HINT,
  };
}

function checkUprobePmu(): Check {
  const path = "/sys/bus/event_source/devices/uprobe/type";
  const ok = existsSync(path);
  return {
    name: "uprobe PMU", required: true, status: ok ? "ok" : "fail",
    detail: ok ? `perf event type ${readFileSync(path, "utf8").trim()}` : `${path} is missing`,
    hint: ok ? undefined : "the kernel needs CONFIG_UPROBE_EVENTS=y",
  };
}

function checkRingBuffer(): Check {
  const r = libbpf().sym.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, null);
  return {
    name: "ring buffer", required: true, status: r === 1 ? "ok" : "fail",
    detail: r === 1 ? "BPF_MAP_TYPE_RINGBUF is supported" : r === 0 ? "BPF_MAP_TYPE_RINGBUF is not supported" : `probe failed: ${strerror(r)}`,
    hint: r === 1 ? undefined : r < 0 ? PRIVILEGE_HINT : "the kernel needs to be 5.8 or newer",
  };
}

function checkUprobeMulti(): Check {
  const ok = uprobeMultiSupported();
  return {
    name: "uprobe.multi", required: false, status: ok ? "ok" : "warn",
    detail: ok ? "supported: a probe's sites attach and detach as one link" : "not supported: classic uprobes are used",
    hint: ok ? undefined : "kernel >= 6.6 makes attaching and detaching many probe sites much faster",
  };
}

function checkBtf(): Check {
  const ok = existsSync("/sys/kernel/btf/vmlinux");
  return {
    name: "kernel BTF", required: false, status: ok ? "ok" : "warn",
    detail: ok ? "/sys/kernel/btf/vmlinux is present" : "/sys/kernel/btf/vmlinux is missing: spans are made, but same-host linking and socket insertion are off (they read the kernel's socket structs where its BTF says)",
    hint: ok ? undefined : "a kernel built with CONFIG_DEBUG_INFO_BTF=y",
  };
}

/** The kernel's lockdown mode ("none", "integrity", "confidentiality", or "unreadable"), undefined without a lockdown LSM. */
export function lockdownMode(text?: string): string | undefined {
  let t = text;
  if (t === undefined) {
    const path = "/sys/kernel/security/lockdown";
    if (!existsSync(path)) return undefined;
    try {
      t = readFileSync(path, "utf8");
    } catch {
      return "unreadable";
    }
  }
  return /\[(\w+)\]/.exec(t)?.[1];
}

/**
 * Whether programs may call bpf_probe_write_user, which traceparent injection needs. Asked of the kernel (a
 * tiny uprobe-type program that calls it is loaded, vendor/libbpf/gotel_features.c) rather than read from
 * securityfs, which is often not mounted: lockdown "integrity" or "confidentiality", or a missing
 * CAP_SYS_ADMIN, forbid it.
 */
let writeUser: boolean | undefined;
export function probeWriteUserAllowed(): boolean {
  writeUser ??= libbpf().sym.gotel_probe_write_user() === 1;
  return writeUser;
}

function checkLockdown(): Check {
  const mode = lockdownMode();
  const writeOk = probeWriteUserAllowed();
  const where = mode === undefined ? "" : mode === "unreadable" ? " (lockdown mode unreadable)" : ` (lockdown ${mode})`;
  return {
    name: "context propagation", required: false, status: writeOk ? "ok" : "warn",
    detail: writeOk
      ? `bpf_probe_write_user is allowed${where}: traceparent is written into outgoing HTTP/1 requests`
      : `bpf_probe_write_user is denied${where || " (kernel lockdown, or no CAP_SYS_ADMIN)"}: traceparent injection is off`,
    hint: writeOk ? undefined : "spans are still produced; services are linked only where the paths below allow; boot with lockdown=none to allow writing",
  };
}

function checkBpffs(): Check {
  let mounts = "";
  try {
    mounts = readFileSync("/proc/self/mounts", "utf8");
  } catch { /* reported below */ }
  const bpffs = mounts.split("\n").find((l) => l.split(" ")[2] === "bpf");
  return {
    name: "bpffs", required: false, status: bpffs ? "ok" : "warn",
    detail: bpffs ? `mounted at ${bpffs.split(" ")[1]}` : "not mounted (gotel does not pin objects today)",
    hint: bpffs ? undefined : "mount -t bpf bpf /sys/fs/bpf",
  };
}

/** Programs that call bpf_probe_write_user are named `…_inject…` (src/instrumentations/nethttp-client/nethttp_client.bpf.c). */
export const WRITES_USER_MEMORY = /_inject(_|$)/;

/** Loads every program of an object that this kernel can run (uprobe.multi ones only where supported). */
export function loadForCheck(bytes: Uint8Array, name: string, showVerifierLog: boolean): string {
  const writeOk = probeWriteUserAllowed();
  let n = 0;
  let writers = 0;
  // once per attach mode, as the agent loads it: an object's programs of both modes cannot share a prog array
  // (since Linux 6.16 a tail call's programs must have the same expected attach type)
  for (const mode of uprobeMultiSupported() ? ["uprobe.multi", "uprobe"] : ["uprobe"]) {
    let loaded = 0;
    let denied = 0;
    const obj = BpfObject.openAndLoad(bytes, { name, showVerifierLog }, (o) => {
      loaded = denied = 0;
      for (const p of o.programs.values()) {
        const inMode = p.section.startsWith("uprobe.multi") === (mode === "uprobe.multi");
        const writer = WRITES_USER_MEMORY.test(p.name);
        p.autoload = inMode && (writeOk || !writer);
        if (p.autoload) loaded++;
        else if (inMode && writer) denied++;
      }
    });
    obj.close();
    n += loaded;
    writers += denied;
  }
  const skipped = writers ? `; ${writers} that write traceparent not loaded (bpf_probe_write_user is denied)` : "";
  return n === 0 ? "maps only, no programs" : `${n} program${n === 1 ? "" : "s"} loaded${skipped}`;
}

function describe(e: unknown): { detail: string; hint?: string } {
  if (e instanceof GotelError) return { detail: e.message, hint: e.hint };
  return { detail: String((e as Error)?.message ?? e) };
}

function guarded(name: string, required: boolean, run: () => string): Check {
  try {
    return { name, required, status: "ok", detail: run() };
  } catch (e) {
    return { name, required, status: "fail", ...describe(e) };
  }
}

export interface DoctorOptions {
  showVerifierLog: boolean;
  /** embedded objects whose feature is optional: checked by the caller, not as required objects here */
  optionalObjects?: readonly string[];
  /** extra eBPF object files to try loading */
  objectFiles: { name: string; bytes: Uint8Array }[];
  /** the registered instrumentations' objects: each must be embedded, and is named after its instrumentation */
  instrumentations?: readonly { name: string; object: string }[];
}

export function runChecks(opts: DoctorOptions): Check[] {
  const checks: Check[] = [checkKernel(), checkPrivileges(), checkUprobePmu()];
  const canUseBpf = checks.every((c) => c.status === "ok");
  const skip = (name: string, required: boolean): Check => ({
    name, required, status: "skip", detail: "skipped: needs the checks above to pass",
  });
  if (!canUseBpf) {
    checks.push(skip("ring buffer", true), skip("uprobe.multi", false));
  } else {
    checks.push(checkRingBuffer(), checkUprobeMulti());
  }
  checks.push(checkBtf(), checkLockdown(), checkBpffs());
  const ready = checks.every((c) => !c.required || c.status === "ok");
  const embedded = embeddedObjectNames();
  for (const name of embedded) {
    if (opts.optionalObjects?.includes(name)) continue;
    // an object several instrumentations share (the routers') is named after all of them
    const of = (opts.instrumentations ?? []).filter((i) => i.object === name).map((i) => i.name).join(", ");
    const label = `eBPF object ${name}`;
    const load = () => `${of ? `${of}: ` : ""}${loadForCheck(readEmbeddedObject(name), `${name}.bpf.o`, opts.showVerifierLog)}`;
    checks.push(ready ? guarded(label, true, load) : skip(label, true));
  }
  for (const i of opts.instrumentations ?? []) {
    if (embedded.includes(i.object)) continue;
    checks.push({ name: `eBPF object ${i.object}`, required: true, status: "fail", detail: `${i.name}: not embedded in this gotel`, hint: "rebuild gotel (npm run build)" });
  }
  for (const f of opts.objectFiles) {
    const label = `eBPF object ${f.name}`;
    checks.push(ready ? guarded(label, true, () => loadForCheck(f.bytes, f.name, opts.showVerifierLog)) : skip(label, true));
  }
  const modes = ready ? (uprobeMultiSupported() ? (["classic", "multi"] as const) : (["classic"] as const)) : [];
  for (const mode of modes) {
    checks.push(guarded(`uprobe round trip (${mode})`, true, () => {
      const r = liveRoundTrip(mode, opts.showVerifierLog);
      return `attached, triggered and read back the event in ${r.latencyUs.toFixed(0)} us`;
    }));
  }
  if (!ready) checks.push(skip("uprobe round trip", true));
  return checks;
}
