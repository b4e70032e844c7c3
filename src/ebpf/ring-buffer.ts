/**
 * Reads the events ring buffer in batches from a timer (DESIGN.md decision 4). Programs write with
 * BPF_RB_NO_WAKEUP, nothing blocks in epoll: every `intervalMs` one FFI call (gotel_ring_drain) copies all
 * pending records into a buffer we own, and the handler gets them as views into it.
 */
import type { Pointer } from "bun:ffi";
import { GotelError } from "../errors.ts";
import { log } from "../log.ts";
import { BpfError } from "./errors.ts";
import { libbpf, pointer, strerror } from "./libbpf.ts";
import { BPF_MAP_TYPE_RINGBUF, type BpfMap } from "./map.ts";

/** One record; the view is only valid during the handler call (the batch buffer is reused). */
export type RecordHandler = (record: DataView) => void;

export interface RingBufferOptions {
  /** milliseconds between drains (default 20) */
  intervalMs?: number;
  /** batch buffer size; default: twice the ring's size, so one drain can take a full ring */
  batchBytes?: number;
}

export class RingBufferReader {
  private handle: Pointer | null;
  private readonly batch: Uint8Array;
  private readonly view: DataView;
  private readonly dropped = new BigUint64Array(1);
  private timer: ReturnType<typeof setInterval> | undefined;
  private records = 0;

  constructor(
    map: BpfMap,
    private readonly onRecord: RecordHandler,
    private readonly opts: RingBufferOptions = {},
  ) {
    if (map.type !== BPF_MAP_TYPE_RINGBUF) throw new GotelError(`map '${map.name}' of ${map.objectName} is not a ring buffer`);
    const ringBytes = libbpf().sym.bpf_map__max_entries(map.handle);
    this.batch = new Uint8Array(opts.batchBytes ?? ringBytes * 2);
    this.view = new DataView(this.batch.buffer);
    const err = new Int32Array(1);
    this.handle = pointer(libbpf().sym.gotel_ring_new(map.fd, this.batch, this.batch.byteLength, err));
    if (!this.handle) throw new BpfError("ring_buffer__new", err[0] ?? 0, `map '${map.name}' of ${map.objectName}`, strerror(err[0] ?? 0));
  }

  /** Records handed to the handler so far. */
  get delivered(): number {
    return this.records;
  }

  /** Records lost in user space because a batch was full (kernel-side drops are counted by the programs). */
  get droppedInBatch(): bigint {
    return this.dropped[0] ?? 0n;
  }

  start(): void {
    this.timer ??= setInterval(() => this.drain(), this.opts.intervalMs ?? 20);
  }

  /** Reads everything pending now; returns the number of records handled. */
  drain(): number {
    if (!this.handle) return 0;
    let total = 0;
    // a full batch may mean more is waiting: go again, a bounded number of times
    for (let round = 0; round < 8; round++) {
      const used = Number(libbpf().sym.gotel_ring_drain(this.handle, this.dropped));
      if (used < 0) {
        log.warn("reading the ring buffer failed", { error: strerror(used) });
        return total;
      }
      total += this.dispatch(used);
      if (used < this.batch.byteLength / 2) break;
    }
    return total;
  }

  /** Walks records laid out by gotel_ring_drain: [u32 len][u32 0][len bytes][pad to 8]. */
  private dispatch(used: number): number {
    let n = 0;
    for (let off = 0; off + 8 <= used; ) {
      const len = this.view.getUint32(off, true);
      const data = new DataView(this.batch.buffer, off + 8, len);
      off += 8 + Math.ceil(len / 8) * 8;
      n++;
      try {
        this.onRecord(data);
      } catch (e) {
        log.error("an event handler failed", { error: (e as Error).message });
      }
    }
    this.records += n;
    return n;
  }

  /** Drains what is left, stops the timer and frees the reader. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.handle) return;
    this.drain();
    libbpf().sym.gotel_ring_free(this.handle);
    this.handle = null;
  }
}
