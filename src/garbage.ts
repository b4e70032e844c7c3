/**
 * When gotel collects its own JavaScript garbage instead of leaving it to the collector's timing. Reading an
 * executable leaves tens of MB behind (a 57 MB service: ~70 MB of anonymous memory at the end of `run --pid`'s
 * preflight, ~18 MB of it garbage); libbpf and the verifier then take theirs while each eBPF object loads, and
 * the two add up at the peak. So garbage that has piled up is collected before an object loads (four processes
 * of test/fixtures/big-service attached at once: peak RSS 139 → 120 MB). A full collection costs ~9 ms even of a
 * small heap, so a start that has not piled up much (one small server) does not pay for one. Memory a collection
 * frees can stay resident for a few seconds and be reused: measured right after it, the baseline is then high, and
 * the pacer collects less often, never more.
 */
import { readFileSync } from "node:fs";
import { log } from "./log.ts";

/** anonymous memory gained since the last collection above which one is worth its ~9 ms before a load */
const PILED_UP_BYTES = 32 << 20;

/** this process's anonymous resident memory, in bytes (Bun's heaps and buffers; not its executable's pages) */
function anonymousBytes(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Collects when asked, or before a load when `measure` (anonymous bytes) grew past `threshold` since the last one. */
export class GarbagePacer {
  private afterLast: number;

  constructor(private readonly measure: () => number, private readonly collect: () => void, private readonly threshold = PILED_UP_BYTES) {
    this.afterLast = measure();
  }

  /** A full collection now; `why` is logged at debug level with what it took. */
  collectNow(why: string): void {
    const t0 = performance.now();
    const before = this.measure();
    this.collect();
    this.afterLast = this.measure();
    log.debug("garbage collected", { why, gcMs: Math.round(performance.now() - t0), anonMB: Math.round(before / 2 ** 20), afterMB: Math.round(this.afterLast / 2 ** 20) });
  }

  /** Collects if more than `threshold` bytes were gained since the last collection; says if it did. */
  collectIfPiledUp(why: string): boolean {
    if (this.measure() - this.afterLast <= this.threshold) return false;
    this.collectNow(why);
    return true;
  }
}

const pacer = new GarbagePacer(anonymousBytes, () => Bun.gc(true));

/** A full collection now. */
export function collectGarbage(why: string): void {
  pacer.collectNow(why);
}

/** Collects if more than 32 MB of anonymous memory were gained since the last collection; says if it did. */
export function collectIfPiledUp(why: string): boolean {
  return pacer.collectIfPiledUp(why);
}
