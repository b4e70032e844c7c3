/**
 * An x86-64 (64-bit mode) instruction-length decoder: where each instruction ends and whether it is a near RET.
 * That is all gotel needs to put uprobes on every return of a Go function (DESIGN.md decision 1): scanning for 0xC3
 * bytes finds immediates and displacements, and Go's own disassembler loses sync in hand-written AVX2/AVX-512 asm.
 *
 * It understands legacy prefixes, REX, the one-byte, 0F, 0F38 and 0F3A maps (with 3DNow! and SSE4a's two-immediate
 * forms), VEX (C4/C5), EVEX (62, incl. the FP16 maps 5 and 6) and XOP (8F). It decodes lengths, not semantics: it
 * rejects what is undefined in 64-bit mode and what cannot be measured, but some encodings the CPU would refuse
 * (#UD) still get a length. That is safe here, since we only decode what a compiler or assembler wrote, and the
 * tests hold it to iced-x86 on every instruction of real Go binaries and on random bytes.
 */
import { GotelError } from "../errors.ts";

export class X86DecodeError extends GotelError {
  constructor(
    /** where the instruction starts, as an index into the decoded buffer */
    readonly offset: number,
    /** up to 15 bytes from `offset` (fewer when the buffer ends) */
    readonly bytes: Uint8Array,
    readonly problem: "invalid" | "truncated" | "too-long",
    detail: string,
  ) {
    super(
      `x86-64 instruction at offset 0x${offset.toString(16)} cannot be decoded: ${detail} (bytes: ${hex(bytes)})`,
      "the code is not x86-64 machine code, or decoding did not start on an instruction boundary",
    );
    this.name = "X86DecodeError";
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ") || "none";
}

export type X86Encoding = "legacy" | "3dnow" | "vex" | "evex" | "xop";

/**
 * Where control goes after the instruction: "jump"/"branch"/"call" are direct (rel8/rel32; "branch" is conditional:
 * Jcc, LOOP, JRCXZ, XBEGIN) and have a `target`; "stop" never falls through (INT3, UD2, HLT, far returns, IRET,
 * SYSRET); "return" is a near RET.
 */
export type X86Flow = "next" | "return" | "jump" | "branch" | "call" | "indirect-jump" | "indirect-call" | "stop";
const FLOWS: readonly X86Flow[] = ["next", "return", "jump", "branch", "call", "indirect-jump", "indirect-call", "stop"];
/** X86Flow as a number (X86Instruction.flowCode), for tables of a whole function's instructions */
export const F_NEXT = 0;
export const F_RET = 1;
export const F_JMP = 2;
export const F_JCC = 3;
export const F_CALL = 4;
export const F_INDIRECT_JMP = 5;
export const F_INDIRECT_CALL = 6;
export const F_STOP = 7;

/** Opcode maps: 0 one-byte, 1 0F, 2 0F38, 3 0F3A, 5/6 EVEX FP16 maps, 8/9/10 XOP maps. */
export interface X86Instruction {
  length: number;
  /** a near return (C3, C2 iw; with any prefix, e.g. F3 C3): the end of a function. Far returns, IRET and
   *  SYSRET are not: Go never emits them, and they do not return to a Go caller. */
  isReturn: boolean;
  encoding: X86Encoding;
  map: number;
  opcode: number;
  /** the ModRM byte, or -1 when the instruction has none */
  modrm: number;
  flow: X86Flow;
  /** the same as a number: F_NEXT … F_STOP */
  flowCode: number;
  /** a direct branch's destination as an index into the decoded buffer (may lie outside it) */
  target: number | undefined;
  /** length of the legacy/REX prefixes before the opcode (or before C4/C5/62/8F) */
  prefixLength: number;
}

// Per-opcode properties, one byte each: the immediate kind in the low 4 bits and flags above it.
const I_NONE = 0;
const I_B = 1; // imm8 / rel8
const I_W = 2; // imm16
const I_Z = 3; // imm16 with 66 (and no REX.W), else imm32
const I_V = 4; // MOV r, imm: imm64 with REX.W, imm16 with 66, else imm32
const I_D = 5; // imm32 / rel32 regardless of 66 (64-bit mode near branches follow Intel: 66 is ignored)
const I_WB = 6; // ENTER: imm16 + imm8
const I_MOFFS = 7; // A0-A3: 8-byte address, 4 with 67
const IMM_MASK = 0x0f;
const MODRM = 0x10;
const INVALID = 0x20;
const PREFIX = 0x40;
const SPECIAL = 0x80; // resolved in code: depends on ModRM.reg or the mandatory prefix

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

/** the one-byte map in 64-bit mode */
const MAP0 = (() => {
  const t = new Uint8Array(256); // default: no ModRM, no immediate
  // ALU blocks 00-3F: op r/m,r / r,r/m (ModRM), AL,imm8, eAX,immz; the 6/7/E/F column is prefix or invalid
  for (let base = 0; base < 0x40; base += 8) {
    for (let i = 0; i < 4; i++) t[base + i] = MODRM;
    t[base + 4] = I_B;
    t[base + 5] = I_Z;
    t[base + 6] = INVALID;
    t[base + 7] = INVALID;
  }
  t[0x0f] = SPECIAL; // two-byte escape
  for (const p of [0x26, 0x2e, 0x36, 0x3e]) t[p] = PREFIX;
  for (const o of range(0x40, 0x4f)) t[o] = PREFIX; // REX
  for (const o of [0x60, 0x61, 0x82, 0x9a, 0xce, 0xd4, 0xd5, 0xd6, 0xea]) t[o] = INVALID;
  t[0x62] = SPECIAL; // EVEX
  t[0x63] = MODRM;
  for (const p of [0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]) t[p] = PREFIX;
  t[0x68] = I_Z;
  t[0x69] = MODRM | I_Z;
  t[0x6a] = I_B;
  t[0x6b] = MODRM | I_B;
  for (const o of range(0x70, 0x7f)) t[o] = I_B;
  t[0x80] = MODRM | I_B;
  t[0x81] = MODRM | I_Z;
  t[0x83] = MODRM | I_B;
  for (const o of range(0x84, 0x8c)) t[o] = MODRM;
  t[0x8d] = SPECIAL; // LEA: memory only
  t[0x8e] = MODRM;
  t[0x8f] = SPECIAL; // POP r/m or XOP
  for (const o of range(0xa0, 0xa3)) t[o] = I_MOFFS;
  t[0xa8] = I_B;
  t[0xa9] = I_Z;
  for (const o of range(0xb0, 0xb7)) t[o] = I_B;
  for (const o of range(0xb8, 0xbf)) t[o] = I_V;
  t[0xc0] = MODRM | I_B;
  t[0xc1] = MODRM | I_B;
  t[0xc2] = I_W;
  t[0xc4] = SPECIAL; // VEX3
  t[0xc5] = SPECIAL; // VEX2
  t[0xc6] = SPECIAL; // MOV r/m8, imm8 / XABORT
  t[0xc7] = SPECIAL; // MOV r/m, immz / XBEGIN
  t[0xc8] = I_WB;
  t[0xca] = I_W;
  t[0xcd] = I_B;
  for (const o of range(0xd0, 0xd3)) t[o] = MODRM;
  for (const o of range(0xd8, 0xdf)) t[o] = MODRM; // x87
  for (const o of range(0xe0, 0xe7)) t[o] = I_B;
  t[0xe8] = I_D;
  t[0xe9] = I_D;
  t[0xeb] = I_B;
  t[0xf6] = SPECIAL; // group 3: TEST has an immediate
  t[0xf7] = SPECIAL;
  t[0xfe] = SPECIAL; // group 4: only INC/DEC
  t[0xff] = SPECIAL; // group 5: /7 is undefined
  return t;
})();

/** the 0F map (legacy encoding) */
const MAP1 = (() => {
  const t = new Uint8Array(256).fill(MODRM);
  for (const o of [0x04, 0x0a, 0x0c, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x7a, 0x7b]) t[o] = INVALID;
  for (const o of [0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77]) t[o] = I_NONE;
  for (const o of [0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa]) t[o] = I_NONE;
  for (const o of range(0xc8, 0xcf)) t[o] = I_NONE; // BSWAP
  for (const o of range(0x80, 0x8f)) t[o] = I_D; // Jcc rel32
  for (const o of [0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6]) t[o] = MODRM | I_B;
  t[0x0f] = SPECIAL; // 3DNow!: ModRM, then the real opcode as an imm8
  t[0x20] = t[0x21] = t[0x22] = t[0x23] = SPECIAL; // MOV to/from CR/DR: ModRM is always a register form
  t[0x38] = SPECIAL;
  t[0x3a] = SPECIAL;
  t[0x78] = SPECIAL; // VMREAD, or SSE4a EXTRQ/INSERTQ with two imm8 under 66/F2
  t[0xb8] = SPECIAL; // POPCNT needs F3 (JMPE is not decoded)
  return t;
})();

/** VEX/EVEX map 1 (0F): which opcodes carry an imm8 */
const VEX_MAP1_IMM = (() => {
  const t = new Uint8Array(256);
  for (const o of [0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6]) t[o] = 1;
  return t;
})();

/** Instructions that accept LOCK (with a memory operand), keyed by map and opcode; 0xff = any ModRM.reg */
const LOCKABLE_MAP0 = (() => {
  const t = new Uint8Array(256);
  for (const o of [0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31, 0x86, 0x87]) t[o] = 0xff;
  t[0x80] = t[0x81] = t[0x83] = 0x7f; // /0-/6 (not CMP)
  t[0xf6] = t[0xf7] = 0x0c; // NOT, NEG
  t[0xfe] = t[0xff] = 0x03; // INC, DEC
  return t;
})();
const LOCKABLE_MAP1 = (() => {
  const t = new Uint8Array(256);
  for (const o of [0xab, 0xb3, 0xbb, 0xb0, 0xb1, 0xc0, 0xc1]) t[o] = 0xff;
  t[0xba] = 0xe0; // BTS, BTR, BTC (/5-/7); BT (/4) only reads
  t[0xc7] = 0x02; // CMPXCHG8B/16B
  return t;
})();

/** control flow of the one-byte and 0F maps (FF's indirect forms are told apart by ModRM.reg in code) */
const FLOW_MAP0 = (() => {
  const t = new Uint8Array(256);
  t[0xc2] = t[0xc3] = F_RET;
  t[0xeb] = t[0xe9] = F_JMP;
  for (const o of [...range(0x70, 0x7f), ...range(0xe0, 0xe3)]) t[o] = F_JCC;
  t[0xe8] = F_CALL;
  for (const o of [0xcc, 0xf1, 0xf4, 0xca, 0xcb, 0xcf]) t[o] = F_STOP;
  return t;
})();
const FLOW_MAP1 = (() => {
  const t = new Uint8Array(256);
  for (const o of range(0x80, 0x8f)) t[o] = F_JCC;
  for (const o of [0x0b, 0xb9, 0xff, 0x07, 0x35]) t[o] = F_STOP;
  return t;
})();

const MAX_LENGTH = 15;

// The instruction being decoded. Module state rather than closures: no allocation per instruction (decoding is
// synchronous, so calls cannot interleave).
const EMPTY = new Uint8Array(0);
let cur: Uint8Array = EMPTY;
let start = 0;
let stop = 0;
let limit = 0;

function fail(problem: "invalid" | "truncated" | "too-long", detail: string): never {
  throw new X86DecodeError(start, cur.slice(start, Math.min(stop, start + MAX_LENGTH)), problem, detail);
}

/** the byte at p, which must lie inside the instruction's 15-byte window and the code */
function need(p: number): number {
  if (p < limit) return cur[p]!;
  return p >= stop ? fail("truncated", "the code ends inside the instruction") : fail("too-long", "longer than 15 bytes");
}

/** A reusable result, so whole-binary scans allocate nothing per instruction. */
export function newInstruction(): X86Instruction {
  return { length: 0, isReturn: false, encoding: "legacy", map: 0, opcode: 0, modrm: -1, flow: "next", flowCode: F_NEXT, target: undefined, prefixLength: 0 };
}

/** The length in bytes of the instruction at `offset`; throws X86DecodeError. */
export function decodeLength(code: Uint8Array, offset: number, end: number = code.length): number {
  return decodeInstruction(code, offset, end, scratch).length;
}
const scratch = newInstruction();

/**
 * Decodes the instruction at `offset` of `code`, reading no byte at or past `end` (default: the buffer's end);
 * fills and returns `into` (or a new object). Throws X86DecodeError for undefined or truncated instructions.
 */
export function decodeInstruction(code: Uint8Array, offset: number, end: number = code.length, into?: X86Instruction): X86Instruction {
  try {
    return decode(code, offset, Math.min(end, code.length), into ?? newInstruction());
  } finally {
    cur = EMPTY; // do not keep a whole executable alive through module state
  }
}

function decode(code: Uint8Array, offset: number, end: number, out: X86Instruction): X86Instruction {
  cur = code;
  start = offset;
  stop = end;
  // an instruction never exceeds 15 bytes (longer is the CPU's #GP), which also bounds work on random input
  limit = Math.min(end, offset + MAX_LENGTH);
  if (!(offset >= 0 && offset < end)) fail("truncated", "offset is outside the code");

  // legacy prefixes and REX; a REX counts only directly before the opcode
  let p = offset;
  let rex = 0;
  let has66 = false;
  let has67 = false;
  let rep = 0; // last F2/F3: the mandatory prefix of SSE instructions
  let lock = false;
  let b = need(p);
  let f = MAP0[b]!;
  while (f & PREFIX) {
    if (b >= 0x40 && b <= 0x4f) rex = b;
    else {
      rex = 0;
      if (b === 0x66) has66 = true;
      else if (b === 0x67) has67 = true;
      else if (b === 0xf2 || b === 0xf3) rep = b;
      else if (b === 0xf0) lock = true;
    }
    b = need(++p);
    f = MAP0[b]!;
  }
  const prefixLength = p - offset;
  const w = (rex & 8) !== 0;
  out.prefixLength = prefixLength;
  out.isReturn = false;
  out.encoding = "legacy";
  out.modrm = -1;

  let map = 0;
  let opcode = b;
  let imm = 0; // immediate bytes
  let modrmMode = 0; // 0 none, 1 normal, 2 register-only (MOV CR/DR)
  let lockable = 0; // ModRM.reg mask of forms that accept LOCK

  if (f & SPECIAL) {
    switch (b) {
      case 0x0f: {
        const b1 = need(++p);
        if (b1 === 0x38) {
          map = 2;
          opcode = need(++p);
          modrmMode = 1;
        } else if (b1 === 0x3a) {
          map = 3;
          opcode = need(++p);
          modrmMode = 1;
          imm = 1;
        } else if (b1 === 0x0f) {
          out.encoding = "3dnow";
          map = 1;
          opcode = b1;
          modrmMode = 1;
          imm = 1;
        } else {
          map = 1;
          opcode = b1;
          const g = MAP1[b1]!;
          if (g & INVALID) fail("invalid", `0F ${h2(b1)} is undefined`);
          if (g & SPECIAL) {
            if (b1 >= 0x20 && b1 <= 0x23) modrmMode = 2;
            else if (b1 === 0x78) {
              modrmMode = 1;
              if (rep === 0xf2 || (rep === 0 && has66)) imm = 2;
            } else if (b1 === 0xb8) {
              if (rep !== 0xf3) fail("invalid", "0F B8 without F3 (JMPE) is not supported in 64-bit mode");
              modrmMode = 1;
            }
          } else {
            modrmMode = g & MODRM ? 1 : 0;
            imm = immSize(g & IMM_MASK, has66, has67, w);
          }
          lockable = LOCKABLE_MAP1[b1]!;
        }
        p++;
        break;
      }
      case 0xc4:
      case 0xc5:
      case 0x62:
        return vectorInstruction(p, has66 || rep !== 0 || lock || rex !== 0, out);
      case 0x8f: {
        const b1 = need(p + 1);
        if ((b1 & 0x1f) >= 8) return vectorInstruction(p, has66 || rep !== 0 || lock || rex !== 0, out);
        if ((b1 & 0x38) !== 0) fail("invalid", "8F with ModRM.reg != 0 is undefined");
        modrmMode = 1;
        p++;
        break;
      }
      case 0x8d: {
        if (need(p + 1) >= 0xc0) fail("invalid", "LEA with a register operand is undefined");
        modrmMode = 1;
        p++;
        break;
      }
      case 0xc6:
      case 0xc7: {
        const m = need(p + 1);
        const reg = (m >> 3) & 7;
        if (m === 0xf8) imm = b === 0xc6 ? 1 : immSize(I_Z, has66, has67, w); // XABORT imm8 / XBEGIN rel
        else if (reg === 0) imm = b === 0xc6 ? 1 : immSize(I_Z, has66, has67, w);
        else fail("invalid", `${h2(b)} /${reg} is undefined`);
        modrmMode = 1;
        p++;
        break;
      }
      case 0xf6:
      case 0xf7: {
        const reg = (need(p + 1) >> 3) & 7;
        if (reg < 2) imm = b === 0xf6 ? 1 : immSize(I_Z, has66, has67, w);
        modrmMode = 1;
        lockable = LOCKABLE_MAP0[b]!;
        p++;
        break;
      }
      case 0xfe:
      case 0xff: {
        const reg = (need(p + 1) >> 3) & 7;
        if ((b === 0xfe && reg > 1) || (b === 0xff && reg === 7)) fail("invalid", `${h2(b)} /${reg} is undefined`);
        modrmMode = 1;
        lockable = LOCKABLE_MAP0[b]!;
        p++;
        break;
      }
    }
  } else {
    if (f & INVALID) fail("invalid", `opcode ${h2(b)} is undefined in 64-bit mode`);
    modrmMode = f & MODRM ? 1 : 0;
    imm = immSize(f & IMM_MASK, has66, has67, w);
    lockable = LOCKABLE_MAP0[b]!;
    if (b === 0xc3 || b === 0xc2) out.isReturn = true;
    p++;
  }

  let modrm = -1;
  if (modrmMode !== 0) {
    modrm = need(p++);
    if (modrmMode === 1) p = skipAddress(modrm, p);
  }
  if (lock) {
    const reg = (modrm >> 3) & 7;
    if (map > 1 || modrm < 0 || modrm >= 0xc0 || ((lockable >> reg) & 1) === 0) fail("invalid", "LOCK on an instruction that cannot be locked");
  }
  p += imm;
  if (p > limit) need(p - 1);
  out.length = p - offset;
  out.map = map;
  out.opcode = opcode;
  out.modrm = modrm;
  let flow = map === 0 ? FLOW_MAP0[opcode]! : map === 1 && out.encoding === "legacy" ? FLOW_MAP1[opcode]! : 0;
  if (map === 0 && opcode === 0xff) {
    const reg = (modrm >> 3) & 7;
    flow = reg === 2 || reg === 3 ? F_INDIRECT_CALL : reg === 4 || reg === 5 ? F_INDIRECT_JMP : 0;
  } else if (map === 0 && opcode === 0xc7 && modrm === 0xf8) flow = F_JCC; // XBEGIN: the abort path
  out.flow = FLOWS[flow]!;
  out.flowCode = flow;
  // direct branches end with their displacement
  out.target = flow >= F_JMP && flow <= F_CALL ? p + relative(p, imm) : undefined;
  return out;
}

/** Bytes of SIB and displacement after a ModRM (64-bit addressing; 67 changes sizes of registers, not encodings). */
function skipAddress(modrm: number, p: number): number {
  const mod = modrm >> 6;
  if (mod === 3) return p;
  const rm = modrm & 7;
  if (rm === 4) {
    const sib = need(p++);
    if (mod === 0 && (sib & 7) === 5) return p + 4; // no base: disp32
  } else if (mod === 0 && rm === 5) {
    return p + 4; // RIP-relative disp32
  }
  return mod === 1 ? p + 1 : mod === 2 ? p + 4 : p;
}

function relative(p: number, size: number): number {
  if (size === 1) return (cur[p - 1]! << 24) >> 24;
  if (size === 2) return ((cur[p - 1]! << 24) | (cur[p - 2]! << 16)) >> 16;
  return cur[p - 4]! | (cur[p - 3]! << 8) | (cur[p - 2]! << 16) | (cur[p - 1]! << 24);
}

function immSize(kind: number, has66: boolean, has67: boolean, w: boolean): number {
  switch (kind) {
    case I_B:
      return 1;
    case I_W:
      return 2;
    case I_Z:
      return has66 && !w ? 2 : 4;
    case I_V:
      return w ? 8 : has66 ? 2 : 4;
    case I_D:
      return 4;
    case I_WB:
      return 3;
    case I_MOFFS:
      return has67 ? 4 : 8;
    default:
      return 0;
  }
}

/** VEX (C4/C5), EVEX (62) and XOP (8F): a fixed-layout prefix, an opcode, always a ModRM (but VZEROUPPER/ALL). */
function vectorInstruction(p: number, badPrefix: boolean, out: X86Instruction): X86Instruction {
  const esc = cur[p]!;
  let map: number;
  let encoding: X86Encoding;
  let hasModrm = true;
  let imm = 0;
  if (esc === 0xc5) {
    need(p + 1);
    map = 1;
    encoding = "vex";
    p += 2;
  } else if (esc === 0xc4 || esc === 0x8f) {
    map = need(p + 1) & 0x1f;
    need(p + 2);
    encoding = esc === 0xc4 ? "vex" : "xop";
    if (esc === 0xc4 ? map < 1 || map > 3 : map < 8 || map > 10) fail("invalid", `${encoding.toUpperCase()} map ${map} is undefined`);
    p += 3;
  } else {
    const p0 = need(p + 1);
    const p1 = need(p + 2);
    need(p + 3);
    map = p0 & 7;
    encoding = "evex";
    if ((p0 & 8) !== 0) fail("invalid", "EVEX reserved bit P0[3] is set");
    if ((p1 & 4) === 0) fail("invalid", "EVEX reserved bit P1[2] is clear");
    if (map === 0 || map === 4 || map === 7) fail("invalid", `EVEX map ${map} is undefined`);
    p += 4;
  }
  if (badPrefix) fail("invalid", `66, F2, F3, F0 or REX before a ${encoding.toUpperCase()} prefix`);
  const opcode = need(p++);
  if (encoding === "vex" || encoding === "evex") {
    if (map === 1) {
      if (opcode === 0x77 && encoding === "vex") hasModrm = false; // VZEROUPPER / VZEROALL
      imm = VEX_MAP1_IMM[opcode]!;
    } else if (map === 3) imm = 1;
  } else {
    imm = map === 8 ? 1 : map === 10 ? 4 : 0;
  }
  let modrm = -1;
  if (hasModrm) {
    modrm = need(p++);
    p = skipAddress(modrm, p);
  }
  p += imm;
  if (p > limit) need(p - 1);
  out.length = p - start;
  out.encoding = encoding;
  out.map = map;
  out.opcode = opcode;
  out.modrm = modrm;
  out.isReturn = false;
  out.flow = "next";
  out.flowCode = F_NEXT;
  out.target = undefined;
  return out;
}

function h2(b: number): string {
  return b.toString(16).padStart(2, "0").toUpperCase();
}
