/**
 * What the loaded probes make of one executable, computed once per file — its identity is (device, inode, size,
 * modification time), so a binary replaced at the same path is analysed anew — however many processes run it.
 * The executable itself (its bytes, its function table, its DWARF: ~140 MB of memory for a 57 MB service) is
 * dropped as soon as the plans are made; only the plans, a few kilobytes, are kept.
 */
import { statSync } from "node:fs";
import { GoExecutable } from "../gobin/analyze.ts";
import { PT_LOAD } from "../gobin/elf.ts";
import { typesBase } from "../gobin/runtime-types.ts";
import type { Prepared, SpanProbe } from "./span-probe.ts";

export interface ExecutablePlans {
  /** "1.23.12" */
  goVersion: string;
  /** as the build info says it ("go1.23.12"), for the resource */
  buildGoVersion: string;
  ready: { probe: SpanProbe; prepared: Prepared }[];
  skipped: { probe: SpanProbe; reason: string; absent: boolean }[];
  /** for naming Go types seen by probes: runtime.types and the lowest PT_LOAD, link-time */
  typesBase?: number;
  lowestLoad: number;
  /** what the binary has that gotel does not instrument, set by the caller */
  unseen?: string;
}

/** what planning tells as it goes: a probe's plan, made (the agent attaches its first process at once) */
export type OnPrepared = (probe: SpanProbe, prepared: Prepared) => void;

/** Plans for an executable (the probes' prepare, in order), and the addresses the agent keeps per target. */
export function planExecutable(exe: GoExecutable, probes: readonly SpanProbe[], onPrepared?: OnPrepared): ExecutablePlans {
  const ready: ExecutablePlans["ready"] = [];
  const skipped: ExecutablePlans["skipped"] = [];
  // the objects not loaded yet that this executable needs load side by side, one thread each
  for (const probe of probes) probe.beginLoad?.(exe);
  for (const probe of probes) {
    const prepared = probe.prepare(exe);
    if ("skipped" in prepared) skipped.push({ probe, reason: prepared.skipped, absent: prepared.absent === true });
    else {
      ready.push({ probe, prepared });
      onPrepared?.(probe, prepared);
    }
  }
  return {
    goVersion: exe.goVersion,
    buildGoVersion: exe.buildInfo.goVersion,
    ready,
    skipped,
    typesBase: typesBase(exe.elf, exe.goVersion),
    lowestLoad: Math.min(...exe.elf.segments.filter((g) => g.type === PT_LOAD).map((g) => g.vaddr)),
  };
}

function identity(file: string): string {
  const s = statSync(file, { bigint: true }); // /proc/PID/exe: the executable the process runs, even if deleted
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
}

/** one executable analysed before the agent started (run's preflight), kept open for its plans */
let lent: { key: string; exe: GoExecutable } | undefined;

/**
 * Keeps an executable that was just analysed (`run --pid`'s preflight asked every instrumentation whether it is
 * ready) for the agent's plans of the same file: its read chunks, function table and DWARF answers are reused
 * instead of read again, ~40 ms of a start. Only the last one is kept; the planner closes it.
 */
export function lendExecutable(file: string, exe: GoExecutable): void {
  lent?.exe.close();
  lent = { key: identity(file), exe };
}

/** The executable of `file`: the one lent for it, or opened now. The caller closes it. */
export function openExecutable(file: string): GoExecutable {
  const kept = lent;
  lent = undefined;
  if (kept && kept.key === identity(file)) return kept.exe;
  kept?.exe.close();
  return GoExecutable.open(file);
}

/** The most recent plans by file identity; `make` runs on a miss (and may throw: nothing is cached then). */
export class PlanCache {
  private readonly plans = new Map<string, ExecutablePlans>();

  constructor(private readonly make: (file: string, onPrepared?: OnPrepared) => ExecutablePlans, private readonly max = 64) {}

  /** onPrepared: told each probe's plan as it is made, on a miss */
  get(file: string, onPrepared?: OnPrepared): { plans: ExecutablePlans; cached: boolean } {
    const key = identity(file);
    const hit = this.plans.get(key);
    if (hit) {
      this.plans.delete(key); // most recent last
      this.plans.set(key, hit);
      return { plans: hit, cached: true };
    }
    const plans = this.make(file, onPrepared);
    this.plans.set(key, plans);
    if (this.plans.size > this.max) this.plans.delete(this.plans.keys().next().value!);
    return { plans, cached: false };
  }

  get size(): number {
    return this.plans.size;
  }
}
