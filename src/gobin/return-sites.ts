/**
 * Probe sites inside one function: the file offset of every near RET (return probes are uprobes on RETs, never
 * uretprobes: DESIGN.md decision 1), the cheapest place for the entry probe (decision 8), and its direct calls
 * of another function (a probe on the CALL/BL sees the callee's arguments in their registers; the kernel
 * emulates both).
 *
 * amd64: the function is decoded with our own instruction-length decoder from its entry to its end. Go functions
 * are code only, with one known exception: crypto/internal/boring/sig's marker functions jump over inline data.
 * So the linear sweep is checked against the function's own direct branches; when one lands inside an instruction
 * of the sweep, the sweep read data as code and we fall back to following control flow from the entry.
 * arm64: fixed 4-byte words; RET is (insn & 0xfffffc1f) === 0xd65f0000 (RET Xn, usually X30).
 */
import { ElfError, type ElfFile } from "./elf.ts";
import {
  decodeInstruction, F_CALL, F_INDIRECT_CALL, F_INDIRECT_JMP, F_JCC, F_JMP, F_RET, F_STOP, newInstruction, X86DecodeError, type X86Instruction,
} from "./x86-length.ts";

/** virtual addresses; end is exclusive */
export interface FunctionRange {
  name: string;
  entry: number;
  end: number;
}

export interface EntryProbeSite {
  /** file offset for the uprobe */
  offset: number;
  /** the kernel emulates the probed instruction instead of single-stepping it (~10x cheaper) */
  emulated: boolean;
  reason: string;
}

export class ProbeSiteError extends ElfError {
  constructor(file: string, readonly functionName: string, problem: string, hint?: string, cause?: unknown) {
    super(file, `function ${functionName}: ${problem}`, hint);
    this.name = "ProbeSiteError";
    if (cause !== undefined) this.cause = cause;
  }
}

/** File offsets of every RET of fn (amd64: decoded; arm64: fixed 4-byte words). */
export function findReturnSites(elf: ElfFile, fn: FunctionRange): number[] {
  const { code, base } = functionCode(elf, fn);
  switch (elf.arch) {
    case "amd64":
      return x86Returns(elf, fn, code).map((p) => base + p);
    case "arm64":
      return arm64Returns(code).map((p) => base + p);
    default:
      throw new ProbeSiteError(elf.name, fn.name, `unsupported machine ${elf.machine}`, "gotel supports amd64 and arm64 executables");
  }
}

/** File offsets of every direct call (amd64 CALL rel32, arm64 BL) from fn to the function at `callee`. */
export function findCallSites(elf: ElfFile, fn: FunctionRange, callee: number): number[] {
  const { code, base } = functionCode(elf, fn);
  const target = callee - fn.entry; // relative to fn's first byte, as decoded branch targets are
  switch (elf.arch) {
    case "amd64":
      return x86Calls(elf, fn, code, target).map((p) => base + p);
    case "arm64":
      return arm64Calls(code, target).map((p) => base + p);
    default:
      throw new ProbeSiteError(elf.name, fn.name, `unsupported machine ${elf.machine}`, "gotel supports amd64 and arm64 executables");
  }
}

/** Where an entry uprobe should sit: past Go's stack-bound check, on its conditional branch, when there is one. */
export function entryProbeSite(elf: ElfFile, fn: FunctionRange): EntryProbeSite {
  const { code, base } = functionCode(elf, fn);
  switch (elf.arch) {
    case "amd64": {
      const site = x86EntrySite(code);
      return { ...site, offset: base + site.offset };
    }
    case "arm64": {
      const site = arm64EntrySite(code);
      return { ...site, offset: base + site.offset };
    }
    default:
      throw new ProbeSiteError(elf.name, fn.name, `unsupported machine ${elf.machine}`, "gotel supports amd64 and arm64 executables");
  }
}

function functionCode(elf: ElfFile, fn: FunctionRange): { code: Uint8Array; base: number } {
  if (!(Number.isSafeInteger(fn.entry) && Number.isSafeInteger(fn.end) && fn.end > fn.entry)) {
    throw new ProbeSiteError(elf.name, fn.name, `empty or inverted address range 0x${fn.entry.toString(16)}-0x${fn.end.toString(16)}`);
  }
  const base = elf.fileOffset(fn.entry);
  const last = elf.fileOffset(fn.end - 1);
  // both ends must be in the file, and in the same segment (contiguous in the file)
  if (base === undefined || last === undefined || last - base !== fn.end - 1 - fn.entry) {
    throw new ProbeSiteError(elf.name, fn.name, `0x${fn.entry.toString(16)}-0x${fn.end.toString(16)} is not code stored in the file`, "the symbol table does not match the file (truncated or corrupt?)");
  }
  return { code: elf.range(base, last + 1 - base), base };
}

// ---- amd64 -------------------------------------------------------------------------------------------------

const scratch: X86Instruction = newInstruction();

function x86Returns(elf: ElfFile, fn: FunctionRange, code: Uint8Array): number[] {
  const starts = new Uint8Array(code.length);
  const rets: number[] = [];
  const targets: number[] = [];
  let p = 0;
  let desync = false;
  while (p < code.length) {
    try {
      decodeInstruction(code, p, code.length, scratch);
    } catch (e) {
      if (!(e instanceof X86DecodeError)) throw e;
      if (isPadding(code, p)) break; // alignment filler after the last instruction
      desync = true;
      break;
    }
    starts[p] = 1;
    if (scratch.isReturn) rets.push(p);
    const t = scratch.target;
    if (t !== undefined && t >= 0 && t < code.length) targets.push(t);
    p += scratch.length;
  }
  if (!desync && targets.every((t) => starts[t] === 1)) return rets;
  return x86ReachableReturns(elf, fn, code);
}

function x86Calls(elf: ElfFile, fn: FunctionRange, code: Uint8Array, target: number): number[] {
  const calls: number[] = [];
  let p = 0;
  while (p < code.length) {
    try {
      decodeInstruction(code, p, code.length, scratch);
    } catch (e) {
      if (!(e instanceof X86DecodeError)) throw e;
      if (isPadding(code, p)) break;
      throw new ProbeSiteError(elf.name, fn.name, `undecodable instruction at +0x${p.toString(16)} (${e.message})`, "the symbol's size or address may be wrong", e);
    }
    if (scratch.flow === "call" && scratch.target === target) calls.push(p);
    p += scratch.length;
  }
  return calls;
}

/** INT3, NOP or zero filler up to the end */
function isPadding(code: Uint8Array, from: number): boolean {
  for (let i = from; i < code.length; i++) if (code[i] !== 0xcc && code[i] !== 0x00 && code[i] !== 0x90) return false;
  return true;
}

/**
 * The RETs reachable from the entry through fall-through and direct branches. Only used when the function holds
 * data (the sweep desynchronised), because it cannot see blocks reached only through jump tables.
 */
function x86ReachableReturns(elf: ElfFile, fn: FunctionRange, code: Uint8Array): number[] {
  const seen = new Uint8Array(code.length);
  const rets: number[] = [];
  const work = [0];
  while (work.length > 0) {
    let p = work.pop()!;
    while (p < code.length && seen[p] === 0) {
      seen[p] = 1;
      try {
        decodeInstruction(code, p, code.length, scratch);
      } catch (e) {
        if (e instanceof X86DecodeError) {
          throw new ProbeSiteError(elf.name, fn.name, `undecodable instruction at +0x${p.toString(16)} (${e.message})`, "the symbol's size or address may be wrong", e);
        }
        throw e;
      }
      const { flow, target } = scratch;
      if (target !== undefined && target >= 0 && target < code.length && flow !== "call") work.push(target);
      if (flow === "return") rets.push(p);
      if (flow === "return" || flow === "jump" || flow === "indirect-jump" || flow === "stop") break;
      p += scratch.length;
    }
  }
  return rets.sort((a, b) => a - b);
}

/**
 * Go's amd64 prologue (cmd/internal/obj/x86 stacksplit), R12 being a scratch register of the ABI:
 *   small frames   CMPQ SP, 16(R14)                                   JLS morestack
 *   large frames   LEAQ -n(SP), R12; CMPQ R12, 16(R14)                JLS morestack
 *   huge frames    MOVQ SP, R12; SUBQ $n, R12; JCS; CMPQ R12, 16(R14) JLS morestack
 * (24(R14), stackguard1, in runtime functions that run on the system stack.) The probe goes on the JLS (JBE):
 * the kernel emulates a Jcc but would single-step the CMPQ, and no argument register has changed by then.
 */
function x86EntrySite(code: Uint8Array): EntryProbeSite {
  let p = 0;
  for (let n = 0; n < 5 && p < code.length; n++) {
    const at = (...bytes: number[]) => bytes.every((b, i) => code[p + i] === b);
    let len = 0;
    if (at(0x49, 0x3b, 0x66) || at(0x4d, 0x3b, 0x66)) {
      // CMPQ SP|R12, 16|24(R14): the check itself; a JBE must follow
      if (code[p + 3] !== 0x10 && code[p + 3] !== 0x18) break;
      const q = p + 4;
      if (code[q] === 0x76 || (code[q] === 0x0f && code[q + 1] === 0x86)) {
        const reg = code[p] === 0x49 ? "SP" : "R12";
        return { offset: q, emulated: true, reason: `JBE at +0x${q.toString(16)} after the stack-bound check CMPQ ${reg}, ${code[p + 3]}(R14): emulated by the kernel` };
      }
      break;
    }
    if (at(0x4c, 0x8d, 0x64, 0x24)) len = 5; // LEAQ d8(SP), R12
    else if (at(0x4c, 0x8d, 0xa4, 0x24)) len = 8; // LEAQ d32(SP), R12
    else if (at(0x49, 0x89, 0xe4)) len = 3; // MOVQ SP, R12
    else if (at(0x49, 0x81, 0xec)) len = 7; // SUBQ $i32, R12
    else if (at(0x49, 0x83, 0xec)) len = 4; // SUBQ $i8, R12
    else if (at(0x72)) len = 2; // JCS rel8
    else if (at(0x0f, 0x82)) len = 6; // JCS rel32
    else break;
    p += len;
  }
  return x86FirstInstructionSite(code);
}

/** No stack check (NOSPLIT): the entry itself, which the kernel may still emulate. */
function x86FirstInstructionSite(code: Uint8Array): EntryProbeSite {
  let insn: X86Instruction;
  try {
    insn = decodeInstruction(code, 0);
  } catch {
    return { offset: 0, emulated: false, reason: "no stack-bound check; function entry (first instruction not decodable)" };
  }
  const first = code[0]!;
  const rexB = first === 0x41 ? 1 : 0;
  const op = code[rexB]!;
  // arch/x86/kernel/uprobes.c: branch_setup_xol_ops (rel jmp/jcc/call without 66, and 0x90) and
  // push_setup_xol_ops (PUSH r, with at most REX 41)
  const has66 = insn.prefixLength > 0 && code.subarray(0, insn.prefixLength).includes(0x66);
  if ((insn.flow === "jump" || insn.flow === "branch" || insn.flow === "call") && !has66 && insn.opcode !== 0xc7) {
    return { offset: 0, emulated: true, reason: `no stack-bound check; function entry, a direct ${insn.flow} the kernel emulates` };
  }
  if (insn.length === 1 + rexB && op >= 0x50 && op <= 0x57) {
    return { offset: 0, emulated: true, reason: "no stack-bound check; function entry, a PUSH the kernel emulates" };
  }
  if (insn.length === 1 && first === 0x90) return { offset: 0, emulated: true, reason: "no stack-bound check; function entry, a NOP the kernel emulates" };
  return { offset: 0, emulated: false, reason: "no stack-bound check (NOSPLIT or frameless); function entry, single-stepped" };
}

// ---- arm64 -------------------------------------------------------------------------------------------------

function word(code: Uint8Array, p: number): number {
  return (code[p]! | (code[p + 1]! << 8) | (code[p + 2]! << 16) | (code[p + 3]! << 24)) >>> 0;
}

function arm64Returns(code: Uint8Array): number[] {
  const rets: number[] = [];
  for (let p = 0; p + 4 <= code.length; p += 4) {
    if ((word(code, p) & 0xfffffc1f) >>> 0 === 0xd65f0000) rets.push(p);
  }
  return rets;
}

/** BL imm26: a signed word offset from the instruction */
function arm64Calls(code: Uint8Array, target: number): number[] {
  const calls: number[] = [];
  for (let p = 0; p + 4 <= code.length; p += 4) {
    const w = word(code, p);
    if (((w & 0xfc000000) >>> 0) !== 0x94000000) continue;
    const imm = w & 0x03ffffff;
    if (p + (imm >= 0x02000000 ? imm - 0x04000000 : imm) * 4 === target) calls.push(p);
  }
  return calls;
}

/**
 * Go's arm64 prologue (cmd/internal/obj/arm64 stacksplit); R16, R17 and R27 are not argument registers:
 *   MOVD 16(g), R16
 *   small   CMP R16, RSP                                                      BLS morestack
 *   large   SUB $n, RSP, R17; CMP R16, R17                                    BLS morestack
 *   huge    [MOVD $n, R27 (MOVZ/MOVK/ORR);] SUBS $n|R27, RSP, R17; BLO; CMP R16, R17  BLS morestack
 * The probe goes on BLS: arm64's uprobe code simulates B.cond, CBZ/CBNZ, TBZ/TBNZ, B/BL, BR/BLR/RET and
 * ADR/ADRP (arch/arm64/kernel/probes/decode-insn.c) and single-steps everything else out of line.
 */
function arm64EntrySite(code: Uint8Array): EntryProbeSite {
  const n = code.length >>> 2;
  if (n >= 3) {
    const w0 = word(code, 0);
    if (w0 === 0xf9400b90 || w0 === 0xf9400f90) {
      for (let i = 1; i < Math.min(n, 8); i++) {
        const w = word(code, i * 4);
        if (((w & 0xff00001f) >>> 0) === 0x54000009) {
          return { offset: i * 4, emulated: true, reason: `B.LS at +0x${(i * 4).toString(16)} after the stack-bound check against ${w0 === 0xf9400b90 ? 16 : 24}(g): simulated by the kernel` };
        }
        const allowed =
          w === 0xeb3063ff || // CMP R16, RSP
          w === 0xeb10023f || // CMP R16, R17
          w === 0xeb3b63f1 || // SUBS R27, RSP, R17
          ((w & 0xff8003ff) >>> 0) === 0xd10003f1 || // SUB $n, RSP, R17
          ((w & 0xff8003ff) >>> 0) === 0xf10003f1 || // SUBS $n, RSP, R17
          ((w & 0xff80001f) >>> 0) === 0xd280001b || // MOVZ R27
          ((w & 0xff80001f) >>> 0) === 0xf280001b || // MOVK R27
          ((w & 0xff8003ff) >>> 0) === 0xb24003fb || // ORR $bitmask, ZR, R27
          ((w & 0xff00001f) >>> 0) === 0x54000003; // BLO
        if (!allowed) break;
      }
    }
  }
  if (code.length < 4) return { offset: 0, emulated: false, reason: "function shorter than one instruction; function entry" };
  const w = word(code, 0);
  const simulated =
    ((w & 0x7c000000) >>> 0) === 0x14000000 || // B, BL
    ((w & 0xff000010) >>> 0) === 0x54000000 || // B.cond
    ((w & 0x7e000000) >>> 0) === 0x34000000 || // CBZ, CBNZ
    ((w & 0x7e000000) >>> 0) === 0x36000000 || // TBZ, TBNZ
    ((w & 0x1f000000) >>> 0) === 0x10000000 || // ADR, ADRP
    [0xd61f0000, 0xd63f0000, 0xd65f0000].includes((w & 0xfffffc1f) >>> 0); // BR, BLR, RET
  return simulated
    ? { offset: 0, emulated: true, reason: "no stack-bound check; function entry, a branch or ADR the kernel simulates" }
    : { offset: 0, emulated: false, reason: "no stack-bound check (NOSPLIT or frameless); function entry, single-stepped" };
}

// ---- ends on the success path (amd64) ------------------------------------------------------------------------

/**
 * Where a span can end on a function's success path without a RET probe. amd64's kernel single-steps a RET out
 * of line (a second trap: 15-45 µs on this project's VMs), where it emulates a Jcc or a CALL; arm64 simulates RET, so this is for
 * amd64 only. `sites` are the emulated instructions the success path passes; `returns` the RETs only it reaches,
 * which then need no probe: every other RET (the error paths) keeps one.
 */
export interface SuccessEnd {
  /** file offsets */
  sites: number[];
  /** file offsets of the RETs only the success path reaches */
  returns: number[];
}

export type SuccessShape =
  /**
   * CALL callee; NOPs; TESTQ BX, BX; JE success — the callee's error checked against nil. The site is the JE:
   * the callee's results are still in AX, BX, CX there (Go's register ABI), and a nil error is the success
   * path. Another branch may reach the TESTQ only as a JMP right after an indirect call, NOPs between: the
   * same results from another callee (`resp, err = alt.RoundTrip(req)` beside `resp, err = pconn.roundTrip(treq)`).
   */
  | { kind: "result-check"; callee: string }
  /** every CALL of callee is on the success path, after its last fallible step: the sites are the CALLs */
  | { kind: "success-call"; callee: string };

/**
 * The shape's sites and success-only RETs in fn, or why there are none (the caller then probes every RET).
 * `calleeEntry` is the callee's address, `noReturn` the addresses of functions that never return (panics):
 * control-flow walks stop at them.
 */
export function findSuccessEnd(elf: ElfFile, fn: FunctionRange, shape: SuccessShape, calleeEntry: number, noReturn: ReadonlySet<number>): SuccessEnd | { missing: string } {
  if (elf.arch !== "amd64") return { missing: `${elf.arch} simulates RET` };
  const { code, base } = functionCode(elf, fn);
  const d = x86Sweep(code);
  if (typeof d === "string") return { missing: d };
  const callee = calleeEntry - fn.entry;
  const stops = new Set([...noReturn].map((a) => a - fn.entry));
  const calls = d.starts.filter((p) => d.flow[p] === F_CALL && d.target[p] === callee);
  if (calls.length === 0) return { missing: `no call of ${shape.callee}` };

  let sites: number[];
  let successStarts: number[];
  /** what the walk from the entry may not follow at a site: its success edge */
  let cut: (p: number) => number[] | undefined;
  if (shape.kind === "result-check") {
    if (calls.length !== 1) return { missing: `${calls.length} calls of ${shape.callee}, not one` };
    const call = calls[0]!;
    let q = d.next[call]!;
    while (q < code.length && d.isNop[q]) q = d.next[q]!;
    const je = q + 3;
    const isJe = d.flow[je] === F_JCC && (code[je] === 0x74 || (code[je] === 0x0f && code[je + 1] === 0x84));
    if (!(code[q] === 0x48 && code[q + 1] === 0x85 && code[q + 2] === 0xdb && d.isStart[je] && isJe)) {
      return { missing: `no TESTQ BX, BX; JE after the call of ${shape.callee}` };
    }
    for (const p of d.starts) {
      const t = d.target[p]!;
      if (t < 0 || !(d.flow[p] === F_JMP || d.flow[p] === F_JCC)) continue;
      if (t === je || (t > call && t < q)) return { missing: `a branch at +0x${p.toString(16)} enters the result check` };
      if (t === q && !(d.flow[p] === F_JMP && d.flow[x86Before(d, p)] === F_INDIRECT_CALL)) {
        return { missing: `a branch at +0x${p.toString(16)} reaches the result check other than after a call` };
      }
    }
    sites = [je];
    successStarts = [d.target[je]!];
    cut = (p) => (p === je ? [d.next[je]!] : undefined);
  } else {
    sites = calls;
    successStarts = calls.map((c) => d.next[c]!);
    const at = new Set(calls);
    cut = (p) => (at.has(p) ? [] : undefined);
  }

  const success = x86Reach(d, successStarts, stops, () => undefined);
  if (typeof success === "string") return { missing: success };
  if (sites.some((s) => success.has(s))) return { missing: "the success path loops back to its own end" };
  const returns = [...success].filter((p) => d.flow[p] === F_RET).sort((a, b) => a - b);
  if (returns.length === 0) return { missing: "the success path reaches no RET" };
  const rest = x86Reach(d, [0], stops, cut);
  if (typeof rest === "string") return { missing: rest };
  if (!sites.every((s) => rest.has(s))) return { missing: "the site is not reached from the entry" };
  const shared = returns.find((r) => rest.has(r));
  if (shared !== undefined) return { missing: `the RET at +0x${shared.toString(16)} ends other paths too` };
  return { sites: sites.map((p) => base + p), returns: returns.map((p) => base + p) };
}

/** TESTQ r, r (REX.W 85 /r, mod 11, reg = rm) for the registers Go's ABI returns results in */
const TEST_SELF: Record<ResultRegister, readonly number[]> = { BX: [0x48, 0x85, 0xdb], CX: [0x48, 0x85, 0xc9], DI: [0x48, 0x85, 0xff] };
export type ResultRegister = "BX" | "CX" | "DI";

/**
 * The conditional branch right after each direct call of callee in fn that tests one of the callee's results
 * (`TESTQ reg, reg`, an error's type word), with only NOPs and stores to memory between (amd64): the callee's
 * results are all still in their registers there, and the kernel emulates a Jcc, where it would single-step the
 * callee's RETs. Either branch may be the error's: the probe checks the register itself. File offsets, one per
 * call, or why there are none.
 */
export function findResultTests(elf: ElfFile, fn: FunctionRange, calleeEntry: number, callee: string, reg: ResultRegister): number[] | { missing: string } {
  if (elf.arch !== "amd64") return { missing: `${elf.arch} simulates RET` };
  const { code, base } = functionCode(elf, fn);
  const d = x86Sweep(code);
  if (typeof d === "string") return { missing: d };
  const calls = d.starts.filter((p) => d.flow[p] === F_CALL && d.target[p] === calleeEntry - fn.entry);
  if (calls.length === 0) return { missing: `no call of ${callee}` };
  const test = TEST_SELF[reg];
  const sites: number[] = [];
  for (const call of calls) {
    let q = d.next[call]!;
    // NOPs and register stores to memory (MOV r/m64, r with a memory operand) leave every register as it was
    while (q < code.length && (d.isNop[q] || isStore(code, q))) q = d.next[q]!;
    const jcc = q + test.length;
    if (!test.every((b, i) => code[q + i] === b) || !d.isStart[jcc] || d.flow[jcc] !== F_JCC) {
      return { missing: `no TESTQ ${reg}, ${reg} and a conditional branch after the call of ${callee} at +0x${call.toString(16)}` };
    }
    const entered = d.starts.find((p) => d.target[p]! > call && d.target[p]! <= jcc && d.flow[p] !== F_CALL);
    if (entered !== undefined) return { missing: `a branch at +0x${entered.toString(16)} enters the code after the call of ${callee}` };
    sites.push(base + jcc);
  }
  return sites;
}

/** MOVQ r64, m64 (REX.W 89 /r with a memory operand): a store, which writes no register */
function isStore(code: Uint8Array, p: number): boolean {
  return (code[p] === 0x48 || code[p] === 0x4c) && code[p + 1] === 0x89 && (code[p + 2]! >> 6) !== 3;
}

/**
 * In a closure that passes an interface value it reaches through one of its captured pointers as the first
 * argument of its first call (a deferred `func() { release(err) }`: `MOVQ d(DX), R; MOVQ 0(R), AX;
 * MOVQ 8(R), BX; CALL`), the offset d of that pointer in the closure's context (DX at its entry), so that a probe
 * at the entry can read the value (amd64: the deferred call's closure is entered on every return of the function
 * that deferred it). Only Go's prologue, loads and register moves may come before the call; anything else, or a
 * pattern not found, is a `missing`.
 */
export function findCapturedArgument(elf: ElfFile, fn: FunctionRange): { offset: number } | { missing: string } {
  if (elf.arch !== "amd64") return { missing: `${elf.arch} simulates RET` };
  const { code } = functionCode(elf, fn);
  const DX = 2, AX = 0, BX = 3;
  /** register -> the closure-context offset it was loaded from (while DX still holds the context) */
  const fromContext = new Map<number, number>();
  let contextInDX = true;
  let ax: number | undefined;
  let bx: number | undefined;
  for (let p = 0; p < code.length;) {
    let insn: X86Instruction;
    try {
      insn = decodeInstruction(code, p, code.length, scratch);
    } catch {
      return { missing: `undecodable instruction at +0x${p.toString(16)}` };
    }
    if (insn.flow === "call" || insn.flow === "indirect-call") {
      return ax !== undefined && ax === bx ? { offset: ax } : { missing: "no interface argument loaded through a captured pointer before the first call" };
    }
    const at = (...bytes: number[]) => bytes.every((b, i) => code[p + i] === b);
    const rex = code[p]! >= 0x48 && code[p]! <= 0x4f ? code[p]! : 0;
    const op = code[p + 1];
    const modrm = code[p + 2]!;
    const mod = modrm >> 6;
    const reg = ((modrm >> 3) & 7) | (rex & 4 ? 8 : 0);
    const rm = (modrm & 7) | (rex & 1 ? 8 : 0);
    const prologue = at(0x49, 0x3b, 0x66) || insn.flow === "branch" || at(0x48, 0x83, 0xec) || at(0x48, 0x81, 0xec) ||
      at(0x55) || at(0x48, 0x89, 0xe5) || at(0x48, 0x89, 0x6c, 0x24) || at(0x48, 0x8d, 0x6c, 0x24);
    if (prologue) {
      // stack check and its JBE, SUBQ $n, SP; then PUSHQ BP, MOVQ SP, BP (Go 1.21 on) or MOVQ BP, n(SP),
      // LEAQ n(SP), BP (before)
    } else if (rex & 8 && op === 0x8b && (mod === 0 || mod === 1) && (modrm & 7) !== 4 && !(mod === 0 && (modrm & 7) === 5)) {
      // MOVQ disp(base), reg
      const disp = mod === 1 ? (code[p + 3]! << 24) >> 24 : 0;
      const loadedFrom = rm === DX && contextInDX ? disp : undefined;
      const pointerAt = fromContext.get(rm);
      if (pointerAt !== undefined && reg === AX && disp === 0) ax = pointerAt;
      if (pointerAt !== undefined && reg === BX && disp === 8) bx = pointerAt;
      fromContext.delete(reg);
      if (reg === DX) contextInDX = false;
      if (loadedFrom !== undefined) fromContext.set(reg, loadedFrom);
    } else if (rex & 8 && op === 0x89 && mod === 3) {
      // MOVQ src, dst between registers
      const [dst, src] = [rm, reg];
      const from = fromContext.get(src);
      fromContext.delete(dst);
      if (dst === DX) contextInDX = false;
      if (from !== undefined) fromContext.set(dst, from);
    } else {
      return { missing: `an instruction at +0x${p.toString(16)} the pattern does not allow` };
    }
    p += insn.length;
  }
  return { missing: "no call" };
}

/** A whole function decoded: per code offset of an instruction start, its flow, direct target, next and previous. */
interface X86Sweep {
  starts: number[];
  isStart: Uint8Array;
  isNop: Uint8Array;
  flow: Uint8Array;
  target: Int32Array;
  next: Int32Array;
  prev: Int32Array;
}

/** The linear sweep, or why control flow cannot be followed in it (data in the code, jump tables). */
function x86Sweep(code: Uint8Array): X86Sweep | string {
  const n = code.length;
  const d: X86Sweep = {
    starts: [], isStart: new Uint8Array(n), isNop: new Uint8Array(n), flow: new Uint8Array(n),
    target: new Int32Array(n).fill(-1), next: new Int32Array(n), prev: new Int32Array(n).fill(-1),
  };
  let p = 0;
  let last = -1;
  while (p < n) {
    try {
      decodeInstruction(code, p, n, scratch);
    } catch (e) {
      if (!(e instanceof X86DecodeError)) throw e;
      if (isPadding(code, p)) break;
      return `undecodable instruction at +0x${p.toString(16)}`;
    }
    d.starts.push(p);
    d.isStart[p] = 1;
    d.flow[p] = scratch.flowCode;
    if (d.flow[p] === F_INDIRECT_JMP) return `an indirect jump at +0x${p.toString(16)} (a jump table)`;
    if (scratch.target !== undefined) d.target[p] = scratch.target;
    // NOP r/m (0F 1F), or 90 without a REX (with REX.B it is XCHG r8, rAX, which writes AX)
    const rexBefore = scratch.prefixLength > 0 && (code[p + scratch.prefixLength - 1]! & 0xf0) === 0x40;
    d.isNop[p] = (scratch.map === 0 && scratch.opcode === 0x90 && !rexBefore) || (scratch.map === 1 && scratch.opcode === 0x1f) ? 1 : 0;
    d.prev[p] = last;
    d.next[p] = p + scratch.length;
    last = p;
    p += scratch.length;
  }
  for (const s of d.starts) {
    const t = d.target[s]!;
    if (t >= 0 && d.flow[s] !== F_CALL && !(t < n && d.isStart[t])) return `a branch at +0x${s.toString(16)} lands outside the sweep`;
  }
  return d;
}

/** The instruction before p, NOPs skipped (-1: none) */
function x86Before(d: X86Sweep, p: number): number {
  let b = d.prev[p]!;
  while (b >= 0 && d.isNop[b]) b = d.prev[b]!;
  return b;
}

/**
 * Every instruction reachable from `from` (branches both ways, calls returning except into `stops`, a JMP back
 * to the entry being morestack's retry). `cut` may replace an instruction's successors.
 */
function x86Reach(d: X86Sweep, from: number[], stops: ReadonlySet<number>, cut: (p: number) => number[] | undefined): Set<number> | string {
  const seen = new Set<number>();
  const work = [...from];
  while (work.length > 0) {
    const p = work.pop()!;
    if (seen.has(p)) continue;
    if (!d.isStart[p]) return `the walk left the function at +0x${p.toString(16)}`;
    seen.add(p);
    const replaced = cut(p);
    if (replaced) {
      work.push(...replaced);
      continue;
    }
    const t = d.target[p]!;
    switch (d.flow[p]) {
      case F_RET:
      case F_STOP:
        break;
      case F_JMP:
        if (t !== 0) work.push(t);
        break;
      case F_JCC:
        work.push(t, d.next[p]!);
        break;
      case F_CALL:
        if (!stops.has(t)) work.push(d.next[p]!);
        break;
      default:
        work.push(d.next[p]!);
    }
  }
  return seen;
}
