/**
 * Struct field offsets from a Go executable's own DWARF (.debug_info + .debug_abbrev, DWARF 2–5).
 *
 * gotel needs a few dozen fields of a few structs, so this is a search, not a DWARF library: it walks the
 * debugging-information entries once, skips every attribute of uninteresting entries with a per-abbreviation
 * plan (fixed-size runs summed ahead of time), jumps over subtrees that carry DW_AT_sibling, reads only
 * structure names and the members of the structs asked for, and stops as soon as all of them are found.
 * Go's linker puts every type into the runtime package's unit, so only units named "runtime" are searched when
 * there are any.
 * Every read is bounds-checked: a corrupt file gives a DwarfError, never a crash, a hang or a huge allocation.
 */
import { noFTL } from "bun:jsc";
import { GotelError } from "../errors.ts";
import { DebugSectionError, debugSection } from "./debug-sections.ts";
import { ElfError, type ElfFile } from "./elf.ts";

export type FieldOffset = { offset: number } | { missing: "struct" | "field" };

export class DwarfError extends ElfError {
  constructor(file: string, problem: string, hint?: string, cause?: unknown) {
    super(file, problem, hint);
    this.name = "DwarfError";
    if (cause !== undefined) this.cause = cause;
  }
}

/** A requested name that is not of the form "import/path.Type.field". */
export class FieldNameError extends GotelError {
  constructor(readonly field: string, problem: string) {
    super(`struct field "${field}": ${problem}`, 'write it as "import/path.Type.field", e.g. "net/http.Request.Method"');
    this.name = "FieldNameError";
  }
}

export interface FieldName {
  /** "google.golang.org/grpc" */
  importPath: string;
  /** "ClientConn", or "Pointer[net/http.Request]" for a generic instantiation */
  typeName: string;
  /** What Go writes as the struct's DW_AT_name: "google.golang.org/grpc.ClientConn" */
  struct: string;
  field: string;
}

/**
 * Splits "import/path.Type.field". The field is what follows the last dot (field names have none). The import
 * path may contain dots anywhere before its last "/" (google.golang.org/grpc) but none after it, so the type
 * name starts after the first dot that follows the last "/" — found outside any [type arguments], which may
 * themselves hold paths and dots (sync/atomic.Pointer[net/http.Request]).
 */
export function splitFieldName(name: string): FieldName {
  const dot = name.lastIndexOf(".");
  const field = name.slice(dot + 1);
  if (dot < 0 || !/^[\p{L}_][\p{L}\p{N}_]*$/u.test(field)) throw new FieldNameError(name, "does not end in a field name");
  const struct = name.slice(0, dot);
  const bracket = struct.indexOf("[");
  if (bracket >= 0 && !struct.endsWith("]")) throw new FieldNameError(name, "unbalanced type arguments");
  const base = bracket >= 0 ? struct.slice(0, bracket) : struct;
  const typeDot = base.indexOf(".", base.lastIndexOf("/") + 1);
  if (typeDot <= 0 || typeDot === base.length - 1) throw new FieldNameError(name, "has no package-qualified type name");
  return { importPath: struct.slice(0, typeDot), typeName: struct.slice(typeDot + 1), struct, field };
}

/**
 * Offsets of struct fields named "import/path.Type.field" (e.g. "net/http.Request.Method", "runtime.g.goid",
 * "google.golang.org/grpc.ClientConn.target") from the executable's DWARF. Embedded fields are named by their
 * type ("sync.Mutex" embedded in T is "pkg.T.Mutex"). Throws a DwarfError when the file has no DWARF (linked
 * with -w or stripped) or it is corrupt, and a FieldNameError for a malformed name.
 */
export function readStructFieldOffsets(elf: ElfFile, fields: readonly string[]): Map<string, FieldOffset> {
  const names = fields.map(splitFieldName); // malformed names fail before any reading
  let found: Map<string, Map<string, number>>;
  try {
    found = new DwarfReader(elf).findStructs(new Set(names.map((n) => n.struct)));
  } catch (e) {
    if (e instanceof DwarfError) throw e;
    if (e instanceof DebugSectionError) throw new DwarfError(elf.name, `corrupt DWARF: ${e.message.slice(elf.name.length + 2)}`, e.hint, e);
    if (e instanceof ElfError) throw new DwarfError(elf.name, `cannot read DWARF: ${e.message.slice(elf.name.length + 2)}`, e.hint, e);
    // a check this reader forgot still must not escape as a crash
    throw new DwarfError(elf.name, `corrupt DWARF (${String((e as Error)?.message ?? e).replace(/\s+/g, " ")})`, undefined, e);
  }
  const out = new Map<string, FieldOffset>();
  fields.forEach((f, i) => {
    const { struct, field } = names[i]!;
    const members = found.get(struct);
    const offset = members?.get(field);
    out.set(f, !members ? { missing: "struct" } : offset === undefined ? { missing: "field" } : { offset });
  });
  return out;
}

// DWARF constants (DWARF 5, section 7)
const TAG_MEMBER = 0x0d;
const TAG_STRUCTURE = 0x13;
const TAG_COMPILE_UNIT = 0x11;
const TAG_PARTIAL_UNIT = 0x3c;
const TAG_TYPE_UNIT = 0x41;
const TAG_SKELETON_UNIT = 0x4a;
const TAG_NAMESPACE = 0x39;
const TAG_MODULE = 0x1e;
const AT_SIBLING = 0x01;
const AT_NAME = 0x03;
const AT_DATA_MEMBER_LOCATION = 0x38;
const AT_DECLARATION = 0x3c;
const AT_STR_OFFSETS_BASE = 0x72;
const AT_LANGUAGE = 0x13;
const LANG_GO = 0x16;
const FORM_STRING = 0x08;
const FORM_INDIRECT = 0x16;
const FORM_IMPLICIT_CONST = 0x21;
const OP_CONSTU = 0x10;
const OP_PLUS_UCONST = 0x23;

/** Skip-plan opcodes; a non-negative entry is a run of fixed-size bytes. */
const SKIP_STRING = -1;
const SKIP_LEB = -2;
const SKIP_BLOCK1 = -3;
const SKIP_BLOCK2 = -4;
const SKIP_BLOCK4 = -5;
const SKIP_BLOCK_LEB = -6;
const SKIP_INDIRECT = -7;

interface Unit {
  offset: number;
  /** first byte after the unit */
  end: number;
  version: number;
  offsetSize: 4 | 8;
  addrSize: number;
  abbrevOffset: number;
  /** the unit's first DIE */
  dies: number;
  /** from the root DIE (see enterUnit) */
  strOffsetsBase: number;
  isRuntime: boolean;
  /** DW_AT_language, when present */
  language: number | undefined;
}

interface Abbrev {
  tag: number;
  hasChildren: boolean;
  /** attribute names, forms and DW_FORM_implicit_const values, in order */
  names: Int32Array;
  forms: Int32Array;
  consts: Float64Array;
  /** how to skip all attributes; undefined when the DIE must be read attribute by attribute */
  plan: Int32Array | undefined;
}

/**
 * Abbreviations by code: small codes in `dense`, any others in `sparse`. The walk's hot loop reads only the
 * flat arrays: per dense code its flags and the slice ops[opStart[code], opStart[code + 1]) of its skip plan.
 */
interface AbbrevTable {
  dense: (Abbrev | undefined)[];
  sparse: Map<number, Abbrev>;
  flags: Uint8Array;
  opStart: Int32Array;
  ops: Int32Array;
}

/** codes below this plus 8 per abbreviation are dense */
const DENSE_CODES = 256;
const F_DEFINED = 1;
const F_CHILDREN = 2;
/** read attribute by attribute: structures, and DIEs whose DW_AT_sibling may save a subtree walk */
const F_SLOW = 4;
const F_MEMBER = 8;
/** a structure whose first attribute is its DW_FORM_string name */
const F_NAMED = 16;

/** What the last attribute read held: a number, or bytes [start, end) of a string or block in `sec`. */
const ValueKind = { None: 0, Number: 1, Bytes: 2 } as const;
type ValueKind = (typeof ValueKind)[keyof typeof ValueKind];

class DwarfReader {
  private readonly info: Uint8Array;
  private readonly abbrev: Uint8Array;
  private readonly infoView: DataView;
  private readonly tables = new Map<string, AbbrevTable>();
  /** bytes of .debug_abbrev parsed so far: overlapping tables in a corrupt file must not make this quadratic */
  private abbrevWork = 0;
  /** root DIE abbreviations by "table offset/code", read before (or instead of) whole tables */
  private readonly rootAbbrevs = new Map<string, Abbrev>();
  private strCache = new Map<string, Uint8Array | null>();
  private unit!: Unit;
  /** 1 at each byte length of a wanted struct name */
  private wantedLengths = new Uint8Array(0);
  private strOffsetsBase = 0;
  // the value of the last attribute read by readAttr
  private kind: ValueKind = ValueKind.None;
  private num = 0;
  private sec: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;

  constructor(private readonly elf: ElfFile) {
    const info = debugSection(elf, "info");
    if (!info) {
      throw new DwarfError(
        elf.name, "has no DWARF debug information (.debug_info); it was linked with -ldflags=-w or stripped",
        "struct offsets come from the bundled table instead",
      );
    }
    if (info.byteLength === 0) throw new DwarfError(elf.name, "has an empty .debug_info (corrupt DWARF)");
    const abbrev = debugSection(elf, "abbrev");
    if (!abbrev) throw new DwarfError(elf.name, "has .debug_info but no .debug_abbrev (corrupt DWARF)");
    this.info = info;
    this.abbrev = abbrev;
    this.infoView = new DataView(info.buffer, info.byteOffset, info.byteLength);
  }

  private corrupt(problem: string, at?: number): never {
    throw new DwarfError(this.elf.name, `corrupt DWARF: ${problem}${at === undefined ? "" : ` at .debug_info+0x${at.toString(16)}`}`);
  }

  /** The members (name -> offset) of each wanted struct found, by struct name. */
  findStructs(wanted: Set<string>): Map<string, Map<string, number>> {
    const found = new Map<string, Map<string, number>>();
    if (wanted.size === 0) return found;
    // names compared as bytes, so the names of the other thousands of structs are never decoded
    const enc = new TextEncoder();
    const byLength = new Map<number, { name: string; bytes: Uint8Array }[]>();
    for (const name of wanted) {
      const bytes = enc.encode(name);
      const list = byLength.get(bytes.length) ?? [];
      list.push({ name, bytes });
      byLength.set(bytes.length, list);
    }
    this.wantedLengths = new Uint8Array(Math.max(...byLength.keys()) + 1);
    for (const length of byLength.keys()) this.wantedLengths[length] = 1;
    const { runtime, rest } = this.orderedUnits();
    // Go's linker moves every type it writes into the runtime package's unit (cmd/link's movetomodule, Go 1.17
    // to this day): with one, a struct that is not there is nowhere, and the functions of every other unit
    // (three quarters of .debug_info) go unread. Without one, a producer that is not Go's linker: all of them.
    for (const u of runtime.length > 0 ? runtime : rest) {
      // Go types live in Go units; the C units of cgo and external linking (gcc's, with their own abbreviation
      // tables) would cost more than all of Go's
      if (u.language !== undefined && u.language !== LANG_GO) continue;
      this.searchUnit(u, wanted, byLength, found);
      if (found.size === wanted.size) break;
    }
    return found;
  }

  /** The units named "runtime" (where Go's linker writes the types), largest first, and the others. */
  private orderedUnits(): { runtime: Unit[]; rest: Unit[] } {
    const units: Unit[] = [];
    for (let off = 0; off < this.info.byteLength;) {
      const u = this.readUnitHeader(off);
      off = u.end;
      units.push(u);
    }
    const runtime: Unit[] = [];
    const rest: Unit[] = [];
    for (const u of units) {
      this.enterUnit(u);
      (u.isRuntime ? runtime : rest).push(u);
    }
    runtime.sort((a, b) => b.end - b.offset - (a.end - a.offset));
    return { runtime, rest };
  }

  private readUnitHeader(off: number): Unit {
    const info = this.info;
    const dv = this.infoView;
    if (off + 4 > info.byteLength) this.corrupt("truncated unit header", off);
    let length = dv.getUint32(off, true);
    let p = off + 4;
    let offsetSize: 4 | 8 = 4;
    if (length === 0xffffffff) {
      if (p + 8 > info.byteLength) this.corrupt("truncated unit header", off);
      const big = dv.getBigUint64(p, true);
      if (big > BigInt(info.byteLength)) this.corrupt("unit length exceeds .debug_info", off);
      length = Number(big);
      p += 8;
      offsetSize = 8;
    } else if (length >= 0xfffffff0) {
      this.corrupt(`reserved unit length 0x${length.toString(16)}`, off);
    }
    const end = p + length;
    if (end > info.byteLength) this.corrupt("unit extends past the end of .debug_info", off);
    if (p + 2 > end) this.corrupt("truncated unit header", off);
    const version = dv.getUint16(p, true);
    p += 2;
    if (version < 2 || version > 5) this.corrupt(`unsupported DWARF version ${version}`, off);
    let abbrevOffset: number;
    let addrSize: number;
    if (version >= 5) {
      if (p + 2 + offsetSize > end) this.corrupt("truncated unit header", off);
      const unitType = info[p]!;
      addrSize = info[p + 1]!;
      abbrevOffset = this.offsetAt(p + 2, offsetSize);
      p += 2 + offsetSize;
      // skeleton/split units carry a dwo id; type units a signature and type offset
      if (unitType === 4 || unitType === 5) p += 8;
      else if (unitType === 2 || unitType === 6) p += 8 + offsetSize;
    } else {
      if (p + offsetSize + 1 > end) this.corrupt("truncated unit header", off);
      abbrevOffset = this.offsetAt(p, offsetSize);
      addrSize = info[p + offsetSize]!;
      p += offsetSize + 1;
    }
    if (p > end) this.corrupt("truncated unit header", off);
    if (addrSize !== 4 && addrSize !== 8 && addrSize !== 2) this.corrupt(`unsupported address size ${addrSize}`, off);
    return { offset: off, end, version, offsetSize, addrSize, abbrevOffset, dies: p, strOffsetsBase: 0, isRuntime: false, language: undefined };
  }

  private offsetAt(p: number, size: 4 | 8): number {
    if (size === 4) return this.infoView.getUint32(p, true);
    const v = this.infoView.getBigUint64(p, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.corrupt("offset out of range", p);
    return Number(v);
  }

  /**
   * Reads the unit's root DIE: its DW_AT_str_offsets_base, which strx forms in the unit need, its language, and
   * whether its DW_AT_name is "runtime".
   */
  private enterUnit(u: Unit): void {
    this.unit = u;
    this.strOffsetsBase = u.offsetSize === 8 ? 16 : 8;
    const root = this.rootDie(u);
    if (!root) return;
    const ab = root.ab;
    let p = root.p;
    let nameAt = -1;
    let nameForm = 0;
    for (let i = 0; i < ab.forms.length; i++) {
      const form = ab.forms[i]!;
      if (ab.names[i] === AT_NAME) {
        // a strx name needs the base, which may come later
        nameAt = p;
        nameForm = form;
        p = this.skipForm(form, p);
      } else {
        p = this.readAttr(form, ab.consts[i]!, p);
        if (ab.names[i] === AT_STR_OFFSETS_BASE && this.kind === ValueKind.Number) this.strOffsetsBase = this.num;
        if (ab.names[i] === AT_LANGUAGE && this.kind === ValueKind.Number) u.language = this.num;
      }
    }
    u.strOffsetsBase = this.strOffsetsBase;
    if (nameAt >= 0) {
      this.readAttr(nameForm, 0, nameAt);
      u.isRuntime = this.kind === ValueKind.Bytes && this.matchName(RUNTIME_NAME) !== undefined;
    }
  }

  /**
   * The unit's root DIE: its abbreviation and where its attributes start. Found by scanning the unit's
   * abbreviation table only as far as that code (usually the first), so ordering units reads no whole tables.
   */
  private rootDie(u: Unit): { ab: Abbrev; p: number } | undefined {
    let p = u.dies;
    if (p >= u.end) return undefined;
    const code = this.uleb(p);
    p = this.pos;
    if (code === 0) return undefined;
    const table = this.tables.get(tableKey(u));
    if (table) return { ab: this.lookup(table, code, p), p };
    const key = `${u.abbrevOffset}/${code}`;
    const known = this.rootAbbrevs.get(key);
    if (known) return { ab: known, p };
    const limit = this.abbrev.byteLength;
    let q = u.abbrevOffset;
    if (q >= limit) this.corruptAbbrev(`unit 0x${u.offset.toString(16)} points past .debug_abbrev`);
    for (;;) {
      const decl = this.parseAbbrevDecl(q, u.abbrevOffset);
      if (!decl) return this.corrupt(`unknown abbreviation code ${code}`, u.dies);
      if (decl.code === code) {
        this.rootAbbrevs.set(key, decl.ab);
        return { ab: decl.ab, p };
      }
      q = decl.next;
    }
  }

  private searchUnit(
    u: Unit,
    wanted: Set<string>,
    byLength: Map<number, { name: string; bytes: Uint8Array }[]>,
    found: Map<string, Map<string, number>>,
  ): void {
    this.unit = u;
    this.strOffsetsBase = u.strOffsetsBase;
    const table = this.abbrevTable(u);
    const { flags, opStart, ops } = table;
    const lengths = this.wantedLengths;
    const info = this.info;
    const end = u.end;
    let p = u.dies;
    let depth = 0;
    let collecting: Map<string, number> | undefined;
    let collectDepth = -1;
    // members go the slow way only while a wanted struct's are being read
    let slow = F_SLOW;
    while (p < end) {
      const dieAt = p;
      let code = info[p++]!;
      if (code >= 0x80) {
        code = this.uleb(p - 1);
        p = this.pos;
      }
      if (code === 0) {
        if (depth > 0) depth--;
        if (collecting && depth === collectDepth) {
          collecting = undefined;
          slow = F_SLOW;
          if (found.size === wanted.size) return;
        }
        continue;
      }
      let f = code < flags.length ? flags[code]! : F_DEFINED | F_SLOW; // beyond the flat arrays: lookup decides
      if (f & F_NAMED) {
        let q = p;
        while (q < end && info[q] !== 0) q++;
        const length = q - p;
        if (length < lengths.length && lengths[length] === 1 && !collecting) f |= F_SLOW; // maybe wanted: read it
        else p = q + 1;
      }
      if ((f & slow) === 0) {
        if (f === 0) this.corrupt(`unknown abbreviation code ${code}`, dieAt);
        // the common case, inlined: skip every attribute by the precomputed plan
        for (let i = opStart[code]!, last = opStart[code + 1]!; i < last; i++) {
          const op = ops[i]!;
          if (op >= 0) p += op;
          else if (op === SKIP_STRING) {
            while (p < end && info[p] !== 0) p++;
            p++;
          } else if (op === SKIP_LEB) {
            while (p < end && info[p]! >= 0x80) p++;
            p++;
          } else if (op === SKIP_BLOCK1 && p < end) {
            p += 1 + info[p]!;
          } else {
            p = this.skipOp(op, p, end);
          }
        }
        if (p > end) this.corrupt("entry runs past the end of its unit", dieAt);
        if (f & F_CHILDREN) depth++;
        continue;
      }
      const ab = this.lookup(table, code, dieAt);
      if (ab.tag === TAG_STRUCTURE && !collecting) {
        const members = this.structDie(ab, p, byLength, found);
        p = this.pos;
        if (members && ab.hasChildren) {
          collecting = members;
          collectDepth = depth;
          slow = F_SLOW | F_MEMBER;
        } else if (members && found.size === wanted.size) {
          return;
        }
      } else if (collecting && ab.tag === TAG_MEMBER && depth === collectDepth + 1) {
        p = this.memberDie(ab, p, collecting, dieAt);
      } else if (ab.plan) {
        p = this.skipPlan(ab.plan, p, end);
      } else {
        // DW_AT_sibling lets the whole subtree go unread (Go never writes it; C compilers do)
        const next = this.siblingOrSkip(ab, p, dieAt);
        if (next < 0) p = this.pos;
        else {
          p = next;
          continue;
        }
      }
      if (ab.hasChildren) depth++;
    }
    if (collecting) this.corrupt(`struct at unit 0x${u.offset.toString(16)} is not terminated`);
  }

  /** Reads a structure DIE's name; returns a fresh member map (recorded in `found`) when it is a wanted one. */
  private structDie(
    ab: Abbrev,
    p: number,
    byLength: Map<number, { name: string; bytes: Uint8Array }[]>,
    found: Map<string, Map<string, number>>,
  ): Map<string, number> | undefined {
    let match: string | undefined;
    let declaration = false;
    for (let i = 0; i < ab.forms.length; i++) {
      const at = ab.names[i]!;
      if (at !== AT_NAME && at !== AT_DECLARATION) {
        p = this.skipForm(ab.forms[i]!, p);
        continue;
      }
      p = this.readAttr(ab.forms[i]!, ab.consts[i]!, p);
      if (at === AT_DECLARATION) declaration = this.kind === ValueKind.Number && this.num !== 0;
      else if (this.kind === ValueKind.Bytes) {
        match = this.matchName(byLength);
      }
    }
    this.pos = p;
    if (match === undefined || declaration || found.has(match)) return undefined;
    const members = new Map<string, number>();
    found.set(match, members);
    return members;
  }

  private memberDie(ab: Abbrev, p: number, members: Map<string, number>, dieAt: number): number {
    let name: string | undefined;
    let offset: number | undefined;
    for (let i = 0; i < ab.forms.length; i++) {
      const at = ab.names[i]!;
      if (at !== AT_NAME && at !== AT_DATA_MEMBER_LOCATION) {
        p = this.skipForm(ab.forms[i]!, p);
        continue;
      }
      const form = ab.forms[i]!;
      p = this.readAttr(form, ab.consts[i]!, p);
      if (at === AT_NAME) name = this.kind === ValueKind.Bytes ? this.decodeValue() : undefined;
      else offset = this.memberLocation(form, dieAt);
    }
    if (name !== undefined && !members.has(name)) {
      // Go always writes the location; never guess one
      if (offset === undefined) this.corrupt(`member ${name} has no DW_AT_data_member_location`, dieAt);
      members.set(name, offset);
    }
    return p;
  }

  /** A member location is a constant, or (DWARF 2/3 style) an expression DW_OP_plus_uconst N. */
  private memberLocation(form: number, dieAt: number): number {
    if (this.kind === ValueKind.Number) {
      if (this.num < 0) this.corrupt(`member offset ${this.num} (form 0x${form.toString(16)}) is out of range`, dieAt);
      return this.num;
    }
    if (this.kind === ValueKind.Bytes && this.sec === this.info && this.end > this.start) {
      const op = this.info[this.start]!;
      if (op === OP_PLUS_UCONST || op === OP_CONSTU) {
        const v = this.uleb(this.start + 1, this.end);
        if (this.pos === this.end) return v;
      }
    }
    return this.corrupt("member location is not a constant offset", dieAt);
  }

  /** For a DIE whose attributes need reading one by one: the sibling's position, or -1 (this.pos = after attributes). */
  private siblingOrSkip(ab: Abbrev, p: number, dieAt: number): number {
    let sibling = -1;
    const u = this.unit;
    for (let i = 0; i < ab.forms.length; i++) {
      const form = ab.forms[i]!;
      if (ab.names[i] === AT_SIBLING && ab.hasChildren) {
        p = this.readAttr(form, ab.consts[i]!, p);
        const target = form === 0x10 ? this.num : u.offset + this.num; // ref_addr is section-relative
        const isRef = form === 0x10 || (form >= 0x11 && form <= 0x15);
        if (isRef && this.kind === ValueKind.Number && target > dieAt && target <= u.end) sibling = target;
      } else {
        p = this.skipForm(form, p);
      }
    }
    this.pos = p;
    const containers = ab.tag === TAG_COMPILE_UNIT || ab.tag === TAG_PARTIAL_UNIT || ab.tag === TAG_TYPE_UNIT ||
      ab.tag === TAG_SKELETON_UNIT || ab.tag === TAG_NAMESPACE || ab.tag === TAG_MODULE;
    return containers || sibling <= p ? -1 : sibling;
  }

  // ---- abbreviations

  private abbrevTable(u: Unit): AbbrevTable {
    const key = tableKey(u);
    let t = this.tables.get(key);
    if (!t) this.tables.set(key, (t = this.parseAbbrevs(u)));
    return t;
  }

  private lookup(t: AbbrevTable, code: number, at: number): Abbrev {
    return t.dense[code] ?? t.sparse.get(code) ?? this.corrupt(`unknown abbreviation code ${code}`, at);
  }

  private parseAbbrevs(u: Unit): AbbrevTable {
    const a = this.abbrev;
    const limit = a.byteLength;
    const t: AbbrevTable = { dense: [], sparse: new Map(), flags: new Uint8Array(0), opStart: new Int32Array(0), ops: new Int32Array(0) };
    const first = u.abbrevOffset;
    let p = first;
    if (p >= limit) this.corruptAbbrev(`unit 0x${u.offset.toString(16)} points past .debug_abbrev`);
    for (;;) {
      const decl = this.parseAbbrevDecl(p, first);
      if (!decl) break;
      const { code, ab } = decl;
      p = decl.next;
      ab.plan = this.skipPlanFor(ab, u);
      if (!t.sparse.has(code)) t.sparse.set(code, ab);
    }
    // compilers number abbreviations 1, 2, 3, ...: index those by code, but never let a large code in a
    // corrupt file size the arrays
    const dense = DENSE_CODES + 8 * t.sparse.size;
    for (const [code, ab] of t.sparse) {
      if (code < dense) {
        t.dense[code] = ab;
        t.sparse.delete(code);
      }
    }
    // flatten for the hot loop
    const n = t.dense.length;
    t.flags = new Uint8Array(n + 1);
    t.opStart = new Int32Array(n + 2);
    const ops: number[] = [];
    for (let code = 0; code <= n; code++) {
      t.opStart[code] = ops.length;
      const ab = t.dense[code];
      if (!ab) continue;
      let f = F_DEFINED | (ab.hasChildren ? F_CHILDREN : 0);
      let plan = ab.plan;
      if (ab.tag === TAG_STRUCTURE && plan && ab.names[0] === AT_NAME && ab.forms[0] === FORM_STRING) {
        // Go's structures: the hot loop reads the inline name, and only a name of a wanted length is looked at
        f |= F_NAMED;
        plan = this.skipPlanFor(ab, u, 1);
      } else if (ab.tag === TAG_STRUCTURE || !plan) {
        f |= F_SLOW;
      }
      if (ab.tag === TAG_MEMBER) f |= F_MEMBER;
      t.flags[code] = f;
      if (plan) for (const op of plan) ops.push(op);
    }
    t.opStart[n + 1] = ops.length;
    t.ops = Int32Array.from(ops);
    return t;
  }

  /**
   * The abbreviation declaration at p of the table starting at `first`; undefined at the table's end (this.pos
   * then is after it). Counts the bytes read: overlapping tables in a corrupt file must not make this quadratic.
   */
  private parseAbbrevDecl(p: number, first: number): { code: number; ab: Abbrev; next: number } | undefined {
    const a = this.abbrev;
    const limit = a.byteLength;
    const start = p;
    if (this.abbrevWork > 4 * limit + (1 << 20)) this.corruptAbbrev("abbreviation tables overlap excessively");
    const code = this.uleb(p, limit, a);
    p = this.pos;
    if (code === 0) {
      this.abbrevWork += p - start;
      return undefined;
    }
    const tag = this.uleb(p, limit, a);
    p = this.pos;
    if (p >= limit) this.corruptAbbrev(`truncated abbreviation in the table at 0x${first.toString(16)}`);
    const hasChildren = a[p++] === 1;
    const names: number[] = [];
    const forms: number[] = [];
    const consts: number[] = [];
    for (;;) {
      const name = this.uleb(p, limit, a);
      const form = this.uleb(this.pos, limit, a);
      p = this.pos;
      if (name === 0 && form === 0) break;
      let c = 0;
      if (form === FORM_IMPLICIT_CONST) {
        c = this.sleb(p, limit, a);
        p = this.pos;
      }
      names.push(name);
      forms.push(form);
      consts.push(c);
    }
    this.abbrevWork += p - start;
    const ab: Abbrev = {
      tag, hasChildren, names: Int32Array.from(names), forms: Int32Array.from(forms), consts: Float64Array.from(consts),
      plan: undefined,
    };
    return { code, ab, next: p };
  }

  private corruptAbbrev(problem: string): never {
    throw new DwarfError(this.elf.name, `corrupt DWARF: .debug_abbrev: ${problem}`);
  }

  /** Fixed-size attributes merged into runs; undefined when a sibling may let the subtree be skipped. */
  private skipPlanFor(ab: Abbrev, u: Unit, from = 0): Int32Array | undefined {
    if (ab.hasChildren && ab.names.includes(AT_SIBLING)) return undefined;
    const plan: number[] = [];
    for (const form of ab.forms.subarray(from)) {
      const size = formSize(form, u);
      if (size === undefined) this.corruptAbbrev(`unknown attribute form 0x${form.toString(16)}`);
      const last = plan.length - 1;
      if (size >= 0 && last >= 0 && plan[last]! >= 0) plan[last]! += size;
      else plan.push(size);
    }
    return Int32Array.from(plan.filter((x) => x !== 0));
  }

  // ---- attribute values

  private skipPlan(plan: Int32Array, p: number, end: number): number {
    for (let i = 0; i < plan.length; i++) {
      const op = plan[i]!;
      p = op >= 0 ? p + op : this.skipOp(op, p, end);
    }
    if (p > end) this.corrupt("entry runs past the end of its unit", p);
    return p;
  }

  /** Skips one variable-size attribute value (a SKIP_* opcode) at p. */
  private skipOp(op: number, p: number, end: number): number {
    const info = this.info;
    switch (op) {
      case SKIP_STRING:
        while (p < end && info[p] !== 0) p++;
        return p + 1;
      case SKIP_LEB:
        while (p < end && info[p]! >= 0x80) p++;
        return p + 1;
      case SKIP_BLOCK1:
        if (p >= end) this.corrupt("entry runs past the end of its unit", p);
        return p + 1 + info[p]!;
      case SKIP_BLOCK_LEB: {
        const n = this.uleb(p, end);
        return this.pos + n;
      }
      case SKIP_BLOCK2:
        return this.skipForm(0x03, p);
      case SKIP_BLOCK4:
        return this.skipForm(0x04, p);
      default:
        return this.skipForm(FORM_INDIRECT, p);
    }
  }

  private skipForm(form: number, p: number): number {
    const size = formSize(form, this.unit);
    if (size === undefined) this.corrupt(`unknown attribute form 0x${form.toString(16)}`, p);
    if (size >= 0) {
      p += size;
      if (p > this.unit.end) this.corrupt("entry runs past the end of its unit", p);
      return p;
    }
    return this.readAttr(form, 0, p);
  }

  /** Reads one attribute value at p into kind/num/sec/start/end and returns the position after it. */
  private need(p: number, n: number): void {
    if (p + n > this.unit.end) this.corrupt("attribute runs past the end of its unit", p);
  }

  /** Sets the value to [start, start + len) of .debug_info; returns the position after it. */
  private bytes(start: number, len: number): number {
    if (start + len > this.unit.end) this.corrupt("block runs past the end of its unit", start);
    this.kind = ValueKind.Bytes;
    this.sec = this.info;
    this.start = start;
    this.end = start + len;
    return start + len;
  }

  private number(v: number, next: number): number {
    this.kind = ValueKind.Number;
    this.num = v;
    return next;
  }

  private readAttr(form: number, implicitConst: number, p: number, indirections = 0): number {
    const u = this.unit;
    const end = u.end;
    const info = this.info;
    const dv = this.infoView;
    switch (form) {
      case 0x0b: case 0x11: case 0x0c: // data1 ref1 flag
        this.need(p, 1);
        return this.number(info[p]!, p + 1);
      case 0x05: case 0x12: // data2 ref2
        this.need(p, 2);
        return this.number(dv.getUint16(p, true), p + 2);
      case 0x06: case 0x13: case 0x1c: // data4 ref4 ref_sup4
        this.need(p, 4);
        return this.number(dv.getUint32(p, true), p + 4);
      case 0x07: case 0x14: case 0x20: case 0x24: { // data8 ref8 ref_sig8 ref_sup8
        this.need(p, 8);
        const v = dv.getBigUint64(p, true);
        return this.number(v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v), p + 8);
      }
      case 0x1e: // data16
        this.need(p, 16);
        return this.bytes(p, 16);
      case 0x0f: case 0x15: // udata ref_udata
        return this.number(this.uleb(p, end), this.pos);
      case 0x0d: // sdata
        return this.number(this.sleb(p, end), this.pos);
      case FORM_IMPLICIT_CONST:
        return this.number(implicitConst, p);
      case 0x19: // flag_present
        return this.number(1, p);
      case 0x01: // addr
        this.need(p, u.addrSize);
        this.kind = ValueKind.None;
        return p + u.addrSize;
      case 0x10: // ref_addr: address-sized in DWARF 2, offset-sized later
        if (u.version === 2) {
          this.need(p, u.addrSize);
          const v = u.addrSize === 8 ? this.offsetAt(p, 8) : u.addrSize === 4 ? dv.getUint32(p, true) : dv.getUint16(p, true);
          return this.number(v, p + u.addrSize);
        }
        this.need(p, u.offsetSize);
        return this.number(this.offsetAt(p, u.offsetSize), p + u.offsetSize);
      case 0x17: case 0x1d: case 0x1f20: case 0x1f21: // sec_offset strp_sup GNU_ref_alt GNU_strp_alt
        this.need(p, u.offsetSize);
        if (form === 0x17) return this.number(this.offsetAt(p, u.offsetSize), p + u.offsetSize);
        this.kind = ValueKind.None; // lives in a supplementary file we do not have
        return p + u.offsetSize;
      case 0x08: { // string
        let q = p;
        while (q < end && info[q] !== 0) q++;
        if (q >= end) this.corrupt("unterminated string", p);
        this.bytes(p, q - p);
        return q + 1;
      }
      case 0x0e: case 0x1f: { // strp line_strp
        this.need(p, u.offsetSize);
        const off = this.offsetAt(p, u.offsetSize);
        this.stringAt(form === 0x0e ? "str" : "line_str", off);
        return p + u.offsetSize;
      }
      case 0x1a: case 0x1f02: // strx GNU_str_index
        return this.strx(this.uleb(p, end), this.pos);
      case 0x25: this.need(p, 1); return this.strx(info[p]!, p + 1);
      case 0x26: this.need(p, 2); return this.strx(dv.getUint16(p, true), p + 2);
      case 0x27: this.need(p, 3); return this.strx(info[p]! | (info[p + 1]! << 8) | (info[p + 2]! << 16), p + 3);
      case 0x28: this.need(p, 4); return this.strx(dv.getUint32(p, true), p + 4);
      case 0x1b: case 0x22: case 0x23: case 0x1f01: // addrx loclistx rnglistx GNU_addr_index
        return this.number(this.uleb(p, end), this.pos);
      case 0x29: case 0x2a: case 0x2b: case 0x2c: { // addrx1..4
        const n = form - 0x28;
        this.need(p, n);
        this.kind = ValueKind.None;
        return p + n;
      }
      case 0x0a: // block1
        this.need(p, 1);
        return this.bytes(p + 1, info[p]!);
      case 0x03: // block2
        this.need(p, 2);
        return this.bytes(p + 2, dv.getUint16(p, true));
      case 0x04: // block4
        this.need(p, 4);
        return this.bytes(p + 4, dv.getUint32(p, true));
      case 0x09: case 0x18: { // block exprloc
        const n = this.uleb(p, end);
        return this.bytes(this.pos, n);
      }
      case FORM_INDIRECT: {
        if (indirections > 0) this.corrupt("DW_FORM_indirect names DW_FORM_indirect", p);
        const actual = this.uleb(p, end);
        if (actual === FORM_IMPLICIT_CONST) this.corrupt("DW_FORM_indirect names DW_FORM_implicit_const", p);
        return this.readAttr(actual, 0, this.pos, indirections + 1);
      }
      default:
        return this.corrupt(`unknown attribute form 0x${form.toString(16)}`, p);
    }
  }

  /** Sets the value to the NUL-terminated string at `off` of .debug_<name>. */
  /**
   * Sets the value to the NUL-terminated string at `off` of .debug_<name>, its end left unknown (-1): finding
   * it costs a scan, which comparing against the wanted names does not need.
   */
  private stringAt(name: "str" | "line_str", off: number): void {
    const sec = this.stringSection(name);
    if (!sec || off >= sec.byteLength) {
      this.kind = ValueKind.None;
      if (!sec) return;
      this.corrupt(`string offset 0x${off.toString(16)} is outside .debug_${name}`);
    }
    this.kind = ValueKind.Bytes;
    this.sec = sec;
    this.start = off;
    this.end = -1;
  }

  private strx(index: number, next: number): number {
    const offsets = this.stringSection("str_offsets");
    const size = this.unit.offsetSize;
    const at = this.strOffsetsBase + index * size;
    if (!offsets || at + size > offsets.byteLength) {
      this.kind = ValueKind.None;
      if (offsets) this.corrupt(`string index ${index} is outside .debug_str_offsets`);
      return next;
    }
    const dv = new DataView(offsets.buffer, offsets.byteOffset, offsets.byteLength);
    const off = size === 4 ? dv.getUint32(at, true) : Number(dv.getBigUint64(at, true));
    this.stringAt("str", off);
    return next;
  }

  private stringSection(name: string): Uint8Array | undefined {
    let s = this.strCache.get(name);
    if (s === undefined) this.strCache.set(name, (s = debugSection(this.elf, name) ?? null));
    return s ?? undefined;
  }

  /** The wanted struct name the current string value equals, if any. */
  private matchName(byLength: Map<number, { name: string; bytes: Uint8Array }[]>): string | undefined {
    const { sec, start, end } = this;
    if (end >= 0) {
      const candidates = byLength.get(end - start);
      if (candidates) for (const c of candidates) if (bytesAt(sec, start, c.bytes)) return c.name;
      return undefined;
    }
    for (const [length, candidates] of byLength) {
      if (start + length < sec.byteLength && sec[start + length] === 0) {
        for (const c of candidates) if (bytesAt(sec, start, c.bytes)) return c.name;
      }
    }
    return undefined;
  }

  /** The current string value; undefined for an indirect string with no NUL within MAX_NAME bytes. */
  private decodeValue(): string | undefined {
    let end = this.end;
    if (end < 0) {
      const limit = Math.min(this.sec.byteLength, this.start + MAX_NAME);
      for (end = this.start; end < limit && this.sec[end] !== 0; end++);
      if (end === limit) return undefined;
    }
    return decoder.decode(this.sec.subarray(this.start, end));
  }

  // ---- LEB128

  /** Position after the last LEB128 read. */
  private pos = 0;

  /** Unsigned LEB128 at p (in .debug_info unless `buf` is given), bounded by `limit`; sets this.pos. */
  private uleb(p: number, limit = this.unit?.end ?? this.info.byteLength, buf: Uint8Array = this.info): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (p >= limit) this.lebError(buf, "truncated LEB128 number", p);
      const b = buf[p++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 128;
      if (mul > 2 ** 63) {
        // longer than any 64-bit value: corrupt, but keep the walk bounded
        this.lebError(buf, "LEB128 number too long", p);
      }
    }
    this.pos = p;
    if (result > Number.MAX_SAFE_INTEGER) this.lebError(buf, "LEB128 number out of range", p);
    return result;
  }

  private lebError(buf: Uint8Array, problem: string, p: number): never {
    return buf === this.info ? this.corrupt(problem, p) : this.corruptAbbrev(`${problem} at +0x${p.toString(16)}`);
  }

  private sleb(p: number, limit: number, buf: Uint8Array = this.info): number {
    let result = 0;
    let mul = 1;
    let b: number;
    do {
      if (p >= limit) this.lebError(buf, "truncated LEB128 number", p);
      b = buf[p++]!;
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (mul > 2 ** 70) this.lebError(buf, "LEB128 number too long", p);
    } while (b >= 0x80);
    if (b & 0x40) result -= mul;
    this.pos = p;
    return result;
  }
}

// The walk over every DIE of a unit runs a few times per executable, while a start plans. JavaScriptCore's top tier
// (FTL) compiled it twice during each start, 25–40 ms each of a JIT thread, on starts bound by CPU; its second tier
// (DFG) compiles it in ~3 ms and runs it nearly as fast.
noFTL(DwarfReader.prototype["searchUnit"]);

const decoder = new TextDecoder();

function bytesAt(sec: Uint8Array, start: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (sec[start + i] !== bytes[i]) return false;
  return true;
}

const RUNTIME_NAME = new Map([[7, [{ name: "runtime", bytes: new TextEncoder().encode("runtime") }]]]);
/** Longest member or unit name read from a string section; bounds the work a corrupt offset can cause. */
const MAX_NAME = 4096;

function tableKey(u: Unit): string {
  return `${u.abbrevOffset}/${u.version}/${u.offsetSize}/${u.addrSize}`;
}

/** The size of a form's value when it is fixed, a SKIP_* opcode when it is not, undefined for an unknown form. */
function formSize(form: number, u: Unit): number | undefined {
  switch (form) {
    case 0x0b: case 0x11: case 0x0c: case 0x25: case 0x29: return 1; // data1 ref1 flag strx1 addrx1
    case 0x05: case 0x12: case 0x26: case 0x2a: return 2; // data2 ref2 strx2 addrx2
    case 0x27: case 0x2b: return 3; // strx3 addrx3
    case 0x06: case 0x13: case 0x1c: case 0x28: case 0x2c: return 4; // data4 ref4 ref_sup4 strx4 addrx4
    case 0x07: case 0x14: case 0x20: case 0x24: return 8; // data8 ref8 ref_sig8 ref_sup8
    case 0x1e: return 16; // data16
    case 0x19: case FORM_IMPLICIT_CONST: return 0; // flag_present implicit_const
    case 0x01: return u.addrSize; // addr
    case 0x10: return u.version === 2 ? u.addrSize : u.offsetSize; // ref_addr
    case 0x0e: case 0x17: case 0x1d: case 0x1f: case 0x1f20: case 0x1f21: return u.offsetSize; // strp sec_offset strp_sup line_strp GNU_ref_alt GNU_strp_alt
    case 0x08: return SKIP_STRING;
    case 0x0d: case 0x0f: case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: case 0x1f01: case 0x1f02: return SKIP_LEB;
    case 0x0a: return SKIP_BLOCK1;
    case 0x03: return SKIP_BLOCK2;
    case 0x04: return SKIP_BLOCK4;
    case 0x09: case 0x18: return SKIP_BLOCK_LEB; // block exprloc
    case FORM_INDIRECT: return SKIP_INDIRECT;
    default: return undefined;
  }
}
