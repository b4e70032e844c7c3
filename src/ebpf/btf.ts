/**
 * A reader for BPF Type Format (BTF) data: the type information clang puts into every eBPF object.
 * gotel reads the layout of its event and config structs, its enum values and the offsets of its `.rodata`
 * constants from here, so C stays the only place those layouts are written (DESIGN.md decision 5).
 *
 * Read the BTF of an object *after* libbpf opened it: in the raw .o the DATASEC sizes and variable offsets
 * are zero, and libbpf fills them in during open.
 */
import { GotelError } from "../errors.ts";

export class BtfError extends GotelError {
  constructor(message: string) {
    super(message, "the eBPF object and gotel do not match; rebuild them together");
    this.name = "BtfError";
  }
}

const BTF_MAGIC = 0xeb9f;

export const enum BtfKind {
  Int = 1, Ptr = 2, Array = 3, Struct = 4, Union = 5, Enum = 6, Fwd = 7, Typedef = 8, Volatile = 9,
  Const = 10, Restrict = 11, Func = 12, FuncProto = 13, Var = 14, Datasec = 15, Float = 16,
  DeclTag = 17, TypeTag = 18, Enum64 = 19,
}

interface Member { name: string; type: number; bitOffset: number; bitSize: number }
interface BtfType {
  kind: BtfKind;
  name: string;
  /** size in bytes for sized kinds, the referenced type id otherwise */
  sizeOrType: number;
  members: Member[];
  /** ARRAY: element type and count */
  elem?: { type: number; count: number };
  /** ENUM / ENUM64 values */
  values?: Map<string, bigint>;
  /** DATASEC entries */
  vars?: { type: number; offset: number; size: number }[];
}

export interface Field {
  /** byte offset from the start of the outermost struct */
  offset: number;
  /** size in bytes */
  size: number;
}

export interface StructLayout {
  name: string;
  size: number;
  /** every member, nested members flattened with dotted names: `hdr.tgid` */
  fields: ReadonlyMap<string, Field>;
}

export interface DatasecVariable { name: string; offset: number; size: number }

export class Btf {
  private readonly types: BtfType[];
  private readonly byName = new Map<string, number[]>();

  private constructor(types: BtfType[]) {
    this.types = types;
    types.forEach((t, id) => {
      if (id === 0 || t.name === "") return;
      const ids = this.byName.get(t.name) ?? [];
      ids.push(id);
      this.byName.set(t.name, ids);
    });
  }

  static parse(bytes: Uint8Array): Btf {
    return new Btf(parseTypes(bytes));
  }

  private find(name: string, kinds: BtfKind[]): BtfType | undefined {
    for (const id of this.byName.get(name) ?? []) {
      const t = this.types[id];
      if (t && kinds.includes(t.kind)) return t;
    }
    return undefined;
  }

  private type(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw new BtfError(`BTF type id ${id} is out of range`);
    return t;
  }

  /** Follows typedefs and qualifiers to the type that has a layout. */
  private resolve(id: number): BtfType {
    let t = this.type(id);
    for (let depth = 0; depth < 32; depth++) {
      if (![BtfKind.Typedef, BtfKind.Volatile, BtfKind.Const, BtfKind.Restrict, BtfKind.TypeTag].includes(t.kind)) return t;
      t = this.type(t.sizeOrType);
    }
    throw new BtfError(`BTF type chain from id ${id} is too deep`);
  }

  sizeOf(id: number): number {
    const t = this.resolve(id);
    switch (t.kind) {
      case BtfKind.Ptr:
        return 8;
      case BtfKind.Array:
        return t.elem ? this.sizeOf(t.elem.type) * t.elem.count : 0;
      case BtfKind.Int: case BtfKind.Struct: case BtfKind.Union: case BtfKind.Enum: case BtfKind.Enum64:
      case BtfKind.Float: case BtfKind.Datasec:
        return t.sizeOrType;
      default:
        throw new BtfError(`BTF type '${t.name}' (kind ${t.kind}) has no size`);
    }
  }

  /** The layout of `struct name`, with nested struct members flattened (`hdr.tgid`). */
  structLayout(name: string): StructLayout {
    const t = this.find(name, [BtfKind.Struct, BtfKind.Union]);
    if (!t) throw new BtfError(`struct ${name} is not in the eBPF object's BTF`);
    const fields = new Map<string, Field>();
    this.flatten(t, "", 0, fields, 0);
    return { name, size: t.sizeOrType, fields };
  }

  private flatten(t: BtfType, prefix: string, base: number, out: Map<string, Field>, depth: number): void {
    if (depth > 8) return;
    for (const m of t.members) {
      const offset = base + Math.floor(m.bitOffset / 8);
      const inner = this.resolve(m.type);
      const nested = inner.kind === BtfKind.Struct || inner.kind === BtfKind.Union;
      // anonymous struct/union members contribute their fields at the same level, as in C
      const name = m.name === "" ? prefix.replace(/\.$/, "") : prefix + m.name;
      if (m.name !== "") {
        const size = m.bitSize > 0 ? Math.ceil(m.bitSize / 8) : this.sizeOf(m.type);
        out.set(name, { offset, size });
      }
      if (nested) this.flatten(inner, m.name === "" ? prefix : `${name}.`, offset, out, depth + 1);
    }
  }

  /** The values of `enum name`. */
  enumValues(name: string): ReadonlyMap<string, bigint> {
    const t = this.find(name, [BtfKind.Enum, BtfKind.Enum64]);
    if (!t?.values) throw new BtfError(`enum ${name} is not in the eBPF object's BTF`);
    return t.values;
  }

  /** The variables of a data section such as `.rodata`, with their offsets inside it. */
  datasecVariables(section: string): DatasecVariable[] {
    const t = this.find(section, [BtfKind.Datasec]);
    if (!t?.vars) return [];
    return t.vars.map((v) => ({ name: this.type(v.type).name, offset: v.offset, size: v.size }));
  }
}

function parseTypes(bytes: Uint8Array): BtfType[] {
  if (bytes.byteLength < 24) throw new BtfError("BTF data is shorter than its header");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint16(0, true) !== BTF_MAGIC) throw new BtfError("BTF data does not start with the BTF magic");
  const hdrLen = dv.getUint32(4, true);
  const typeOff = dv.getUint32(8, true);
  const typeLen = dv.getUint32(12, true);
  const strOff = dv.getUint32(16, true);
  const strLen = dv.getUint32(20, true);
  const typesStart = hdrLen + typeOff;
  const typesEnd = typesStart + typeLen;
  const strStart = hdrLen + strOff;
  if (typesEnd > bytes.byteLength || strStart + strLen > bytes.byteLength) {
    throw new BtfError("BTF section lengths run past the end of the data");
  }
  const decoder = new TextDecoder();
  const str = (off: number): string => {
    if (off >= strLen) throw new BtfError(`BTF string offset ${off} is out of range`);
    let end = strStart + off;
    while (end < strStart + strLen && bytes[end] !== 0) end++;
    return decoder.decode(bytes.subarray(strStart + off, end));
  };

  const types: BtfType[] = [{ kind: 0 as BtfKind, name: "void", sizeOrType: 0, members: [] }];
  let p = typesStart;
  const need = (n: number) => {
    if (p + n > typesEnd) throw new BtfError("BTF type data is truncated");
  };
  while (p < typesEnd) {
    need(12);
    const nameOff = dv.getUint32(p, true);
    const info = dv.getUint32(p + 4, true);
    const sizeOrType = dv.getUint32(p + 8, true);
    p += 12;
    const vlen = info & 0xffff;
    const kind = ((info >>> 24) & 0x1f) as BtfKind;
    const kindFlag = info >>> 31 === 1;
    const t: BtfType = { kind, name: str(nameOff), sizeOrType, members: [] };
    switch (kind) {
      case BtfKind.Int: case BtfKind.Var: case BtfKind.DeclTag:
        need(4);
        p += 4;
        break;
      case BtfKind.Array:
        need(12);
        t.elem = { type: dv.getUint32(p, true), count: dv.getUint32(p + 8, true) };
        p += 12;
        break;
      case BtfKind.Struct: case BtfKind.Union:
        need(12 * vlen);
        for (let i = 0; i < vlen; i++, p += 12) {
          const raw = dv.getUint32(p + 8, true);
          t.members.push({
            name: str(dv.getUint32(p, true)),
            type: dv.getUint32(p + 4, true),
            bitOffset: kindFlag ? raw & 0xffffff : raw,
            bitSize: kindFlag ? raw >>> 24 : 0,
          });
        }
        break;
      case BtfKind.Enum:
        need(8 * vlen);
        t.values = new Map();
        for (let i = 0; i < vlen; i++, p += 8) {
          const v = kindFlag ? BigInt(dv.getInt32(p + 4, true)) : BigInt(dv.getUint32(p + 4, true));
          t.values.set(str(dv.getUint32(p, true)), v);
        }
        break;
      case BtfKind.Enum64:
        need(12 * vlen);
        t.values = new Map();
        for (let i = 0; i < vlen; i++, p += 12) {
          const v = (BigInt(dv.getUint32(p + 8, true)) << 32n) | BigInt(dv.getUint32(p + 4, true));
          t.values.set(str(dv.getUint32(p, true)), kindFlag ? BigInt.asIntN(64, v) : v);
        }
        break;
      case BtfKind.FuncProto:
        need(8 * vlen);
        p += 8 * vlen;
        break;
      case BtfKind.Datasec:
        need(12 * vlen);
        t.vars = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          t.vars.push({ type: dv.getUint32(p, true), offset: dv.getUint32(p + 4, true), size: dv.getUint32(p + 8, true) });
        }
        break;
      case BtfKind.Ptr: case BtfKind.Fwd: case BtfKind.Typedef: case BtfKind.Volatile: case BtfKind.Const:
      case BtfKind.Restrict: case BtfKind.Func: case BtfKind.Float: case BtfKind.TypeTag:
        break;
      default:
        throw new BtfError(`BTF type kind ${kind} is unknown`);
    }
    types.push(t);
  }
  return types;
}
