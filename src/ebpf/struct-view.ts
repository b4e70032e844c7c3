/**
 * Reading C structs that arrive from the kernel, by field name, at offsets taken from BTF. Offsets are
 * resolved once when a decoder is built; decoding an event is then plain DataView reads.
 */
import { BtfError, type StructLayout } from "./btf.ts";

export class StructView {
  constructor(readonly layout: StructLayout) {}

  /** Byte offset of a field, checking its size when given. */
  offset(field: string, size?: number): number {
    const f = this.layout.fields.get(field);
    if (!f) throw new BtfError(`struct ${this.layout.name} has no field '${field}'`);
    if (size !== undefined && f.size !== size) {
      throw new BtfError(`struct ${this.layout.name} field '${field}' is ${f.size} bytes, expected ${size}`);
    }
    return f.offset;
  }

  u32(field: string): (v: DataView) => number {
    const o = this.offset(field, 4);
    return (v) => v.getUint32(o, true);
  }

  u64(field: string): (v: DataView) => bigint {
    const o = this.offset(field, 8);
    return (v) => v.getBigUint64(o, true);
  }
}
