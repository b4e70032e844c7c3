/**
 * A warning about lost spans that a person can read at 3 a.m.: at most one line per interval (10 s), carrying how
 * many spans were lost since the previous line and why. The first loss is reported at once; later ones are
 * gathered and reported when the interval is over, so a receiver that stays down gives one line per 10 s.
 */
import { log } from "../log.ts";

type Fields = Record<string, string | number>;

export const WARNING_INTERVAL_MS = 10_000;

export class RateLimitedWarning {
  private count = 0;
  private readonly reasons = new Map<string, number>();
  private last = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly message: string,
    private readonly fields: Fields,
    private readonly intervalMs = WARNING_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(spans: number, reason?: string): void {
    if (spans <= 0) return;
    this.count += spans;
    if (reason !== undefined) this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + spans);
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, wait);
      this.timer.unref?.();
    }
  }

  /** Writes what was gathered, if anything. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.count === 0) return;
    log.warn(this.message, { spans: this.count, ...(this.reasons.size ? { reason: formatReasons(this.reasons) } : {}), ...this.fields });
    this.count = 0;
    this.reasons.clear();
    this.last = this.now();
  }
}

/** "connection refused" when there is one reason; "connection refused: 1200, HTTP 503: 40" when several. */
export function formatReasons(reasons: ReadonlyMap<string, number> | Record<string, number>): string {
  const entries = reasons instanceof Map ? [...reasons] : Object.entries(reasons);
  if (entries.length === 1) return entries[0]![0];
  return entries.map(([r, n]) => `${r}: ${n}`).join(", ");
}
