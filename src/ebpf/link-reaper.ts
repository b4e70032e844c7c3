/**
 * Destroys the links of processes that have exited, in the background. Their probes can no longer fire (the
 * links are bound to the dead process), but the kernel still takes ~40 ms per link to detach one (it waits for a
 * grace period), ~0.25 s per process here. Done inline, 50 processes exiting at once stalled the event loop for
 * 12 s: no ring-buffer reads, no exports for the processes still running. The reaper destroys one link per turn
 * of the event loop, so everything else runs between two of them.
 */
import type { UprobeLinks } from "./link.ts";

export class LinkReaper {
  private readonly queue: UprobeLinks[] = [];
  private scheduled = false;

  add(links: Iterable<UprobeLinks>): void {
    for (const l of links) if (l.attached) this.queue.push(l);
    this.schedule();
  }

  /** Links waiting to be destroyed. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Destroys everything still waiting, now (at stop). */
  finish(): void {
    for (const l of this.queue.splice(0)) l.destroy();
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      const next = this.queue[0];
      if (next && !next.destroyOne()) this.queue.shift();
      this.schedule();
    }, 0);
  }
}
