/**
 * What the agent needs from a loaded instrumentation: whether and how it attaches to a process, and how its
 * ring-buffer events become spans. Each one owns a ProbeObject; all of them share one ring buffer.
 */
import type { UprobeLinks } from "../ebpf/link.ts";
import type { GoExecutable } from "../gobin/analyze.ts";
import type { SpanRecord } from "../traces/span.ts";
import type { OffsetsSource } from "../offsets/resolver.ts";
import type { SameHostRole } from "../propagation/same-host.ts";
import type { ProbeObject } from "./probe-object.ts";
import { unfinishedSpan } from "./span-event.ts";

export interface Prepared {
  /** none when the instrumentation reads no struct fields */
  offsetsSource?: OffsetsSource;
  /** table-interpolated: which built versions stood in for the binary's, for the log */
  offsetsNote?: string;
  /** probe sites, for the log */
  sites: number;
  /** what its spans will lack in this binary (missing optional offsets), for the log */
  note?: string;
  /** writes the process's config and attaches; the links go when the process does */
  attach(tgid: number, path: string): UprobeLinks[];
}

/** An instrumentation's part in same-host linking (src/propagation/same-host.ts): its HTTP/1 client's socket
 * writes file its requests' spans ("sends"), a gRPC client's writing goroutines file its calls' streams
 * ("streams"), its server finds them through the connection it read ("reads"). */

/** A span event that could not be read (a span the application marshalled that does not parse): lost, counted
 * under `reason` (the words of the `stopped` line). */
export class UnreadableSpanError extends Error {
  constructor(message: string, readonly reason: string) {
    super(message);
  }
}

export interface SpanProbe {
  /** e.g. "net/http server" */
  readonly name: string;
  /** the enum gotel_event_type value of its events */
  readonly eventType: number;
  /** its part in same-host linking, if any (Instrumentation.sameHost) */
  readonly sameHost?: readonly SameHostRole[];
  /** for a probe whose object is not loaded yet: starts loading it if the executable needs it (prepare waits) */
  beginLoad?(exe: GoExecutable): void;
  /** `absent`: the binary does not use this library, nothing to report loudly */
  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true };
  forget(tgid: number): void;
  /** the event as a span; times converted with toUnixNs. undefined: an event that is not a span (a control
   * event). Throws UnreadableSpanError for a span it cannot read: counted as lost. */
  record(v: DataView, tgid: number, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord | undefined;
  /** the spans of the process's calls still in flight when it exited, ended at endNs (kernel time); before forget */
  unfinished(tgid: number, endNs: bigint, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord[];
  /** drops what can no longer end (in flight longer than it can last, at nowNs, kernel time): how many spans, by
   * the reason the `stopped` line gives */
  sweep?(nowNs: bigint): Readonly<Record<string, number>>;
  /** the values of an enum of its object's BTF, by member (its own loss counters, Instrumentation.losses) */
  enumValues?(name: string): ReadonlyMap<string, bigint>;
  close(): void;
}

/**
 * A SpanProbe over one ProbeObject, with the per-process chores every instrumentation shares: forgetting a
 * process's entries, turning its calls still in flight (the object's `<name>_inflight` map, the event at
 * `inflightEvent`) into unfinished spans, closing the object. An instrumentation adds its plan and its decoding.
 */
export abstract class ObjectSpanProbe implements SpanProbe {
  abstract readonly name: string;
  readonly eventType: number;

  protected constructor(readonly object: ProbeObject, private readonly inflightEvent = "event") {
    this.eventType = object.eventType;
  }

  abstract prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true };
  abstract record(v: DataView, tgid: number, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord | undefined;

  forget(tgid: number): void {
    this.object.forget(tgid);
  }

  enumValues(name: string): ReadonlyMap<string, bigint> {
    return this.object.obj.btf().enumValues(name);
  }

  unfinished(tgid: number, endNs: bigint, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord[] {
    return this.object.inflightEvents(tgid, this.inflightEvent, endNs).flatMap((v) => {
      const r = this.record(v, tgid, toUnixNs);
      return r ? [unfinishedSpan(r)] : [];
    });
  }

  close(): void {
    this.object.close();
  }
}

/** How many probe sites a program -> sites plan attaches, for the log. */
export function siteCount(programs: Record<string, readonly number[]>): number {
  return Object.values(programs).reduce((n, s) => n + s.length, 0);
}
