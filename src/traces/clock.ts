/**
 * Kernel timestamps (bpf_ktime_get_ns, CLOCK_MONOTONIC) to wall-clock time. The offset between the clocks is
 * measured as the tightest of several back-to-back readings (realtime read between two monotonic reads;
 * the pair with the shortest gap bounds the error by that gap, ~100 ns here), and re-measured now and then so
 * NTP slewing of the wall clock does not accumulate. Both clocks are read through libc: Bun's
 * process.hrtime() is not CLOCK_MONOTONIC (it was ~2000 s off on our VMs).
 */
import { monotonicNs, realtimeNs } from "../ebpf/libc.ts";

const SAMPLES = 25;
const REFRESH_NS = 10_000_000_000n; // re-measure every 10 s of monotonic time

export interface ClockOffset {
  /** realtime - monotonic, in ns */
  offsetNs: bigint;
  /** uncertainty of the measurement, in ns */
  errorNs: bigint;
}

export function measureClockOffset(samples = SAMPLES): ClockOffset {
  let best: ClockOffset | undefined;
  for (let i = 0; i < samples; i++) {
    const before = monotonicNs();
    const wall = realtimeNs();
    const after = monotonicNs();
    const gap = after - before;
    if (!best || gap < best.errorNs) best = { offsetNs: wall - (before + gap / 2n), errorNs: gap };
  }
  return best!;
}

export class KernelClock {
  private offset: ClockOffset;
  private measuredAt: bigint;

  constructor() {
    this.offset = measureClockOffset();
    this.measuredAt = monotonicNs();
  }

  /** Wall-clock ns since the epoch for a bpf_ktime_get_ns() value. */
  toUnixNs(ktimeNs: bigint): bigint {
    if (ktimeNs - this.measuredAt > REFRESH_NS) {
      this.offset = measureClockOffset();
      this.measuredAt = monotonicNs();
    }
    return ktimeNs + this.offset.offsetNs;
  }

  get errorNs(): bigint {
    return this.offset.errorNs;
  }
}
