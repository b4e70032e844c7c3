/**
 * Destroys the links of processes that have exited, in the background. Their probes can no longer fire (the
 * links are bound to the dead process), but the kernel still takes ~40 ms per link to detach one (it waits for a
 * grace period), ~0.25 s per process here. Done inline, 50 processes exiting at once stalled the event loop for
 * 12 s: no ring-buffer reads, no exports for the processes still running.
 *
 * uprobe.multi links are closed on the thread pool, all at once (UprobeLinks.release); classic links, which only
 * libbpf can take apart, are destroyed one per turn of the event loop, so everything else runs between two.
 */
import type { UprobeLinks } from "./link.ts";

export class LinkReaper {
  private readonly classic: UprobeLinks[] = [];
  private readonly closing = new Set<Promise<void>>();
  private scheduled = false;

  add(links: Iterable<UprobeLinks>): void {
    for (const l of links) {
      if (!l.attached) continue;
      if (l.mode === "multi") {
        const p = l.release().finally(() => this.closing.delete(p));
        this.closing.add(p);
      } else this.classic.push(l);
    }
    this.schedule();
  }

  /** Destroys everything still waiting and waits for the closes in flight (at stop). */
  async finish(): Promise<void> {
    for (const l of this.classic.splice(0)) l.destroy();
    await Promise.all(this.closing);
  }

  private schedule(): void {
    if (this.scheduled || this.classic.length === 0) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      const next = this.classic[0];
      if (next && !next.destroyOne()) this.classic.shift();
      this.schedule();
    }, 0);
  }
}
