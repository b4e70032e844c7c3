/**
 * Where members of the running kernel's structs are, from the kernel's own BTF (/sys/kernel/btf/vmlinux), for
 * eBPF programs that read kernel memory at offsets given as `.rodata` constants instead of by CO-RE.
 *
 * Why not CO-RE: for an object with CO-RE relocations libbpf parses the whole kernel BTF (~5 MB, ~150,000 types;
 * ~16 ms here) and searches all of it once per struct the object names (~13 ms for same-host linking's seven),
 * on the one thread a start waits for. The few members gotel reads are found here in one pass over the type
 * section that decodes no type it is not asked about (~2–4 ms).
 *
 * What it does as CO-RE does: anonymous structs and unions are looked through (`sock.__sk_common.skc_dport`,
 * which sits in an anonymous struct inside an anonymous union), typedefs and qualifiers are followed, the first
 * complete struct of a name is taken. What it refuses: bitfields (no byte offset) and a member or struct the
 * kernel does not have (its error names it, and the caller goes on without what needed it).
 */
import { readFileSync } from "node:fs";
import { GotelError } from "../errors.ts";
import { BtfKind } from "./btf.ts";

export const VMLINUX_BTF = "/sys/kernel/btf/vmlinux";

export class KernelBtfError extends GotelError {
  constructor(message: string) {
    super(message, `gotel reads the kernel's struct layouts from ${VMLINUX_BTF} (CONFIG_DEBUG_INFO_BTF)`);
    this.name = "KernelBtfError";
  }
}

export interface KernelField {
  /** bytes from the start of the path's first struct */
  offset: number;
  size: number;
}

const BTF_MAGIC = 0xeb9f;
const POINTER_SIZE = 8; // gotel runs on 64-bit kernels only (amd64, arm64)

/**
 * The offset and size of each member path, `struct.member[.member…]`: one pass over `btf` (the kernel's, read
 * from VMLINUX_BTF when not given). Throws a KernelBtfError naming the first path it cannot follow.
 */
export function kernelFields(paths: readonly string[], btf?: Uint8Array): Map<string, KernelField> {
  try {
    const types = KernelTypes.index(btf ?? readVmlinuxBtf(), new Set(paths.map((p) => p.split(".")[0]!)));
    return new Map(paths.map((p) => [p, types.field(p)]));
  } catch (e) {
    // a record whose counts run past the data
    if (e instanceof RangeError) throw new KernelBtfError(`the kernel's BTF is cut short or corrupt (${e.message})`);
    throw e;
  }
}

function readVmlinuxBtf(): Uint8Array {
  try {
    return readFileSync(VMLINUX_BTF);
  } catch (e) {
    throw new KernelBtfError(`the kernel's BTF could not be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** The kernel BTF's type section indexed by id (where each type's record starts), and the structs asked for. */
class KernelTypes {
  private constructor(
    private readonly dv: DataView,
    private readonly bytes: Uint8Array,
    /** byte offset of each type's record, by id (0: void) */
    private readonly at: Uint32Array,
    private readonly count: number,
    private readonly strStart: number,
    private readonly strLen: number,
    /** the first complete struct of each name asked for */
    private readonly structs: ReadonlyMap<string, number>,
  ) {}

  static index(bytes: Uint8Array, structNames: ReadonlySet<string>): KernelTypes {
    if (bytes.byteLength < 24) throw new KernelBtfError("the kernel's BTF is shorter than its header");
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dv.getUint16(0, true) !== BTF_MAGIC) throw new KernelBtfError("the kernel's BTF does not start with the BTF magic (a big-endian kernel?)");
    const hdrLen = dv.getUint32(4, true);
    const typesStart = hdrLen + dv.getUint32(8, true);
    const typesEnd = typesStart + dv.getUint32(12, true);
    const strStart = hdrLen + dv.getUint32(16, true);
    const strLen = dv.getUint32(20, true);
    if (typesEnd > bytes.byteLength || strStart + strLen > bytes.byteLength) throw new KernelBtfError("the kernel's BTF sections run past its end");

    // the string offsets of the names asked for (the kernel's strings are deduplicated; every copy is taken anyway)
    const wanted = new Map<number, string>();
    const strings = Buffer.from(bytes.buffer, bytes.byteOffset + strStart, strLen);
    for (const name of structNames) {
      const needle = Buffer.from(`\0${name}\0`);
      for (let i = strings.indexOf(needle); i >= 0; i = strings.indexOf(needle, i + 1)) wanted.set(i + 1, name);
    }

    // the hot loop of a start: 32-bit words (every record is a multiple of 4 bytes), sizes from tables
    if ((bytes.byteOffset + typesStart) % 4 !== 0) throw new KernelBtfError("the kernel's BTF type section is not 4-byte aligned");
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + typesStart, (typesEnd - typesStart) >>> 2);
    const at = new Uint32Array(words.length / 3 + 2);
    const structs = new Map<string, number>();
    let id = 1;
    for (let w = 0; w < words.length; id++) {
      at[id] = typesStart + w * 4;
      const info = words[w + 1]!;
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      if (kind === BtfKind.Struct && vlen > 0 && wanted.has(words[w]!)) {
        const name = wanted.get(words[w]!)!;
        if (!structs.has(name)) structs.set(name, id);
      }
      const fixed = FIXED_WORDS[kind]!;
      if (fixed < 0) throw new KernelBtfError(`the kernel's BTF has a type of kind ${kind}, newer than gotel knows`);
      w += 3 + fixed + WORDS_PER_VLEN[kind]! * vlen;
    }
    return new KernelTypes(dv, bytes, at, id, strStart, strLen, structs);
  }

  field(path: string): KernelField {
    const [structName, ...members] = path.split(".");
    let id = this.structs.get(structName!);
    if (id === undefined) throw new KernelBtfError(`the kernel has no struct ${structName} (${path})`);
    if (!members.length) throw new KernelBtfError(`${path}: a member path is struct.member`);
    let offset = 0;
    for (const [i, name] of members.entries()) {
      const container = this.resolve(id);
      const found = this.member(container, name, 0);
      if (!found) throw new KernelBtfError(`the kernel's ${[`struct ${structName}`, ...members.slice(0, i)].join(".")} has no member ${name} (${path})`);
      offset += found.offset;
      id = found.type;
    }
    return { offset, size: this.sizeOf(id, path) };
  }

  /** A member of a struct or union by name, looking through anonymous members; bit offsets made bytes. */
  private member(id: number, name: string, depth: number): { offset: number; type: number } | undefined {
    const p = this.record(id);
    const info = this.dv.getUint32(p + 4, true);
    const kind = (info >>> 24) & 0x1f;
    if ((kind !== BtfKind.Struct && kind !== BtfKind.Union) || depth > 8) return undefined;
    const bitfields = info >>> 31 === 1;
    for (let i = 0, m = p + 12; i < (info & 0xffff); i++, m += 12) {
      const nameOff = this.dv.getUint32(m, true);
      const type = this.dv.getUint32(m + 4, true);
      const raw = this.dv.getUint32(m + 8, true);
      const bitOffset = bitfields ? raw & 0xffffff : raw;
      if (nameOff === 0) {
        const inner = this.member(this.resolve(type), name, depth + 1);
        if (inner) return { offset: bitOffset / 8 + inner.offset, type: inner.type };
      } else if (this.nameIs(nameOff, name)) {
        if ((bitfields && raw >>> 24 !== 0) || bitOffset % 8 !== 0) throw new KernelBtfError(`the kernel's member ${name} is a bitfield`);
        return { offset: bitOffset / 8, type };
      }
    }
    return undefined;
  }

  private sizeOf(id: number, path: string): number {
    const p = this.record(this.resolve(id));
    const kind = (this.dv.getUint32(p + 4, true) >>> 24) & 0x1f;
    switch (kind) {
      case BtfKind.Ptr:
        return POINTER_SIZE;
      case BtfKind.Array:
        return this.sizeOf(this.dv.getUint32(p + 12, true), path) * this.dv.getUint32(p + 20, true);
      case BtfKind.Int: case BtfKind.Struct: case BtfKind.Union: case BtfKind.Enum: case BtfKind.Enum64: case BtfKind.Float:
        return this.dv.getUint32(p + 8, true);
      default:
        throw new KernelBtfError(`${path}: the kernel's type (BTF kind ${kind}) has no size`);
    }
  }

  /** Follows typedefs and qualifiers. */
  private resolve(id: number): number {
    for (let depth = 0; depth < 32; depth++) {
      const kind = (this.dv.getUint32(this.record(id) + 4, true) >>> 24) & 0x1f;
      if (!QUALIFIERS.has(kind)) return id;
      id = this.dv.getUint32(this.record(id) + 8, true);
    }
    throw new KernelBtfError(`the kernel's BTF type ${id} is a chain of typedefs too deep to follow`);
  }

  private record(id: number): number {
    if (id <= 0 || id >= this.count) throw new KernelBtfError(`the kernel's BTF has no type ${id}`);
    return this.at[id]!;
  }

  private nameIs(off: number, name: string): boolean {
    if (off + name.length >= this.strLen) return false;
    const s = this.strStart + off;
    for (let i = 0; i < name.length; i++) if (this.bytes[s + i] !== name.charCodeAt(i)) return false;
    return this.bytes[s + name.length] === 0;
  }
}

/** kinds that name another type and have no layout of their own */
const QUALIFIERS: ReadonlySet<number> = new Set([BtfKind.Typedef, BtfKind.Volatile, BtfKind.Const, BtfKind.Restrict, BtfKind.TypeTag]);

/** The 32-bit words that follow a type's 3-word header, by kind: a fixed part (-1: a kind gotel does not know)… */
const FIXED_WORDS: readonly number[] = kindTable(-1, [
  [[BtfKind.Int, BtfKind.Var, BtfKind.DeclTag], 1],
  [[BtfKind.Array], 3],
  [[BtfKind.Struct, BtfKind.Union, BtfKind.Datasec, BtfKind.Enum64, BtfKind.Enum, BtfKind.FuncProto, BtfKind.Ptr, BtfKind.Fwd,
    BtfKind.Typedef, BtfKind.Volatile, BtfKind.Const, BtfKind.Restrict, BtfKind.Func, BtfKind.Float, BtfKind.TypeTag], 0],
]);
/** …and one per entry of its vlen */
const WORDS_PER_VLEN: readonly number[] = kindTable(0, [
  [[BtfKind.Struct, BtfKind.Union, BtfKind.Datasec, BtfKind.Enum64], 3],
  [[BtfKind.Enum, BtfKind.FuncProto], 2],
]);

function kindTable(otherwise: number, entries: [BtfKind[], number][]): number[] {
  const table = new Array<number>(32).fill(otherwise);
  for (const [kinds, n] of entries) for (const k of kinds) table[k] = n;
  return table;
}
