/** A map of a loaded eBPF object: lookup, update, delete and iteration with raw little-endian bytes. */
import type { Pointer } from "bun:ffi";
import { GotelError } from "../errors.ts";
import { BpfError, ENOENT } from "./errors.ts";
import { libbpf, strerror } from "./libbpf.ts";

/** enum bpf_map_type values we treat specially */
const PERCPU_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */]);
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_RINGBUF = 27;
/** a hash map's entries allocated as they are added, not all when the map is made */
export const BPF_F_NO_PREALLOC = 1;

/** flags of bpf_map_update_elem */
export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;

export class BpfMap {
  readonly keySize: number;
  /** size of one value as the program sees it */
  readonly valueSize: number;
  readonly type: number;

  constructor(
    /** @internal */ readonly handle: Pointer,
    readonly name: string,
    readonly objectName: string,
  ) {
    const { sym } = libbpf();
    this.keySize = sym.bpf_map__key_size(handle);
    this.valueSize = sym.bpf_map__value_size(handle);
    this.type = sym.bpf_map__type(handle);
  }

  get fd(): number {
    return libbpf().sym.bpf_map__fd(this.handle);
  }

  get perCpu(): boolean {
    return PERCPU_TYPES.has(this.type);
  }

  /** Bytes of a whole value as user space sees it: per-CPU maps hold one 8-byte-aligned slot per possible CPU. */
  get userValueSize(): number {
    return this.perCpu ? Math.ceil(this.valueSize / 8) * 8 * possibleCpus() : this.valueSize;
  }

  private subject(): string {
    return `map '${this.name}' of ${this.objectName}`;
  }

  private checkKey(key: Uint8Array): void {
    if (key.byteLength !== this.keySize) {
      throw new GotelError(`${this.subject()}: key is ${key.byteLength} bytes, the map's keys are ${this.keySize}`);
    }
  }

  /** The value under key, or undefined when there is none. */
  lookup(key: Uint8Array): Uint8Array | undefined {
    this.checkKey(key);
    const value = new Uint8Array(this.userValueSize);
    const err = libbpf().sym.bpf_map__lookup_elem(this.handle, key, key.byteLength, value, value.byteLength, 0n);
    if (err === -ENOENT) return undefined;
    if (err < 0) throw new BpfError("bpf_map__lookup_elem", err, this.subject(), strerror(err));
    return value;
  }

  update(key: Uint8Array, value: Uint8Array, flags: bigint = BPF_ANY): void {
    this.checkKey(key);
    if (value.byteLength !== this.userValueSize) {
      throw new GotelError(`${this.subject()}: value is ${value.byteLength} bytes, the map's values are ${this.userValueSize}`);
    }
    const err = libbpf().sym.bpf_map__update_elem(this.handle, key, key.byteLength, value, value.byteLength, flags);
    if (err < 0) throw new BpfError("bpf_map__update_elem", err, this.subject(), strerror(err));
  }

  /** Removes key; returns false when it was not there. */
  delete(key: Uint8Array): boolean {
    this.checkKey(key);
    const err = libbpf().sym.bpf_map__delete_elem(this.handle, key, key.byteLength, 0n);
    if (err === -ENOENT) return false;
    if (err < 0) throw new BpfError("bpf_map__delete_elem", err, this.subject(), strerror(err));
    return true;
  }

  *keys(): Generator<Uint8Array> {
    const { sym } = libbpf();
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      const err = sym.bpf_map__get_next_key(this.handle, prev, next, this.keySize);
      if (err === -ENOENT) return;
      if (err < 0) throw new BpfError("bpf_map__get_next_key", err, this.subject(), strerror(err));
      yield next;
      prev = next;
    }
  }

  /** For a per-CPU map of u64 counters: the sum over CPUs of the value under key. */
  sumPerCpuU64(key: Uint8Array): bigint {
    const v = this.lookup(key);
    if (!v) return 0n;
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const slot = Math.ceil(this.valueSize / 8) * 8;
    let sum = 0n;
    for (let off = 0; off + 8 <= v.byteLength; off += slot) sum += dv.getBigUint64(off, true);
    return sum;
  }
}

let cpus: number | undefined;
export function possibleCpus(): number {
  if (cpus === undefined) {
    const n = libbpf().sym.libbpf_num_possible_cpus();
    if (n < 0) throw new BpfError("libbpf_num_possible_cpus", n, "/sys/devices/system/cpu/possible", strerror(n));
    cpus = n;
  }
  return cpus;
}

/** Little-endian bytes of an unsigned integer of `size` bytes: map keys and values. */
export function uintBytes(value: bigint | number, size: 4 | 8): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  if (size === 4) dv.setUint32(0, Number(value), true);
  else dv.setBigUint64(0, BigInt(value), true);
  return b;
}
