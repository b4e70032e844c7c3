/** The x86-64 length decoder on hand-written tricky encodings and on random bytes, with iced-x86 as the oracle. */
import { describe, expect, test } from "bun:test";
import { Decoder, DecoderError, DecoderOptions, FlowControl, Instruction, Mnemonic } from "iced-x86";
import { decodeInstruction, decodeLength, newInstruction, X86DecodeError } from "../../src/gobin/x86-length.ts";

const bytes = (hex: string) => Uint8Array.from(hex.replace(/\s+/g, "").match(/../g)!.map((x) => parseInt(x, 16)));

interface Iced {
  valid: boolean;
  length: number;
  nearReturn: boolean;
  anyReturn: boolean;
  /** direct branch target relative to the start, else undefined */
  target: number | undefined;
}

const IP = 0x100000n;
const icedInstruction = new Instruction();
function iced(code: Uint8Array): Iced {
  const d = new Decoder(64, code, DecoderOptions.None);
  d.ip = IP;
  d.decodeOut(icedInstruction);
  const valid = d.lastError === DecoderError.None;
  d.free();
  const i = icedInstruction;
  const direct = [FlowControl.UnconditionalBranch, FlowControl.ConditionalBranch, FlowControl.Call, FlowControl.XbeginXabortXend].includes(i.flowControl);
  const target = valid && direct && i.nearBranchTarget !== 0n ? Number(BigInt.asIntN(64, i.nearBranchTarget - IP)) : undefined;
  return { valid, length: i.length, nearReturn: valid && i.mnemonic === Mnemonic.Ret, anyReturn: valid && i.flowControl === FlowControl.Return, target };
}

// [bytes, length, what]: every one is also checked against iced
const CASES: [string, number, string][] = [
  ["c3", 1, "RET"],
  ["c2 10 00", 3, "RET imm16"],
  ["f3 c3", 2, "REP RET"],
  ["48 c3", 2, "REX.W RET"],
  ["66 c3", 2, "66 RET (Intel: 66 ignored)"],
  ["2e c3", 2, "segment prefix RET"],
  ["cc", 1, "INT3"],
  ["90", 1, "NOP"],
  ["66 90", 2, "XCHG AX,AX"],
  ["0f 1f 44 00 00", 5, "NOPL 0(AX)(AX*1)"],
  ["66 2e 0f 1f 84 00 00 00 00 00", 10, "long NOP with prefixes"],
  ["05 78 56 34 12", 5, "ADD EAX, imm32"],
  ["66 05 34 12", 4, "ADD AX, imm16 (66 shrinks Iz)"],
  ["66 48 05 78 56 34 12", 7, "66 + REX.W: W wins, imm32"],
  ["48 05 78 56 34 12", 6, "ADD RAX, imm32 (sign-extended)"],
  ["b8 78 56 34 12", 5, "MOV EAX, imm32"],
  ["66 b8 34 12", 4, "MOV AX, imm16"],
  ["48 b8 08 07 06 05 04 03 02 01", 10, "MOV RAX, imm64"],
  ["49 bb 08 07 06 05 04 03 02 01", 10, "MOV R11, imm64"],
  ["48 66 b8 34 12", 5, "REX before 66 is ignored: MOV AX, imm16"],
  ["66 68 34 12", 4, "PUSH imm16"],
  ["68 78 56 34 12", 5, "PUSH imm32"],
  ["66 c7 00 34 12", 5, "MOV word [RAX], imm16"],
  ["48 c7 c0 78 56 34 12", 7, "MOV RAX, simm32"],
  ["66 81 38 34 12", 5, "CMP word [RAX], imm16"],
  ["f6 c1 01", 3, "TEST CL, imm8"],
  ["f7 c1 78 56 34 12", 6, "TEST ECX, imm32"],
  ["66 f7 c1 34 12", 5, "TEST CX, imm16"],
  ["f7 d9", 2, "NEG ECX (no immediate)"],
  ["c8 10 00 01", 4, "ENTER imm16, imm8"],
  ["a1 08 07 06 05 04 03 02 01", 9, "MOV EAX, moffs64"],
  ["67 a1 04 03 02 01", 6, "MOV EAX, moffs32 (67)"],
  ["e8 00 00 00 00", 5, "CALL rel32"],
  ["66 e8 00 00 00 00", 6, "66 CALL: still rel32 in 64-bit mode (Intel)"],
  ["e9 fb ff ff ff", 5, "JMP rel32 backwards"],
  ["eb fe", 2, "JMP rel8"],
  ["0f 86 10 00 00 00", 6, "JBE rel32"],
  ["76 10", 2, "JBE rel8"],
  ["e3 10", 2, "JRCXZ"],
  ["8b 05 10 00 00 00", 6, "RIP-relative MOV"],
  ["48 8d 0d f9 ff ff ff", 7, "RIP-relative LEA"],
  ["8b 04 25 10 00 00 00", 7, "SIB without base: disp32"],
  ["8b 44 25 10", 4, "SIB with RBP base, disp8"],
  ["8b 04 24", 3, "SIB with RSP base"],
  ["8b 84 24 10 00 00 00", 7, "SIB, disp32"],
  ["42 8b 04 e5 10 00 00 00", 8, "SIB no base, index R12*8"],
  ["41 8b 45 00", 4, "R13 base needs disp8"],
  ["49 3b 66 10", 4, "CMPQ SP, 16(R14)"],
  ["4c 8d a4 24 98 fc ff ff", 8, "LEAQ -0x368(SP), R12"],
  ["f0 48 0f b1 0a", 5, "LOCK CMPXCHG"],
  ["f0 ff 00", 3, "LOCK INC dword [RAX]"],
  ["f3 48 0f b8 c1", 5, "POPCNT"],
  ["f3 0f 1e fa", 4, "ENDBR64"],
  ["0f 05", 2, "SYSCALL"],
  ["0f 0b", 2, "UD2"],
  ["0f a2", 2, "CPUID"],
  ["0f c8", 2, "BSWAP EAX"],
  ["0f ba e0 05", 4, "BT EAX, imm8"],
  ["0f a4 c1 05", 4, "SHLD imm8"],
  ["66 0f 70 c1 1b", 5, "PSHUFD imm8"],
  ["66 0f 3a 0f c1 08", 6, "PALIGNR (0F3A: imm8)"],
  ["66 0f 38 00 c1", 5, "PSHUFB (0F38: no imm)"],
  ["66 0f 3a 44 c1 00", 6, "PCLMULQDQ"],
  ["66 0f 38 dc 04 24", 6, "AESENC xmm, [RSP]"],
  ["f2 48 0f 38 f1 c1", 6, "CRC32 r64"],
  ["0f 38 f0 07", 4, "MOVBE"],
  ["66 0f 78 c0 01 02", 6, "EXTRQ imm8, imm8 (SSE4a)"],
  ["f2 0f 78 c1 01 02", 6, "INSERTQ imm8, imm8 (SSE4a)"],
  ["0f 0f c1 b4", 4, "3DNow! PFMUL"],
  ["0f 20 c0", 3, "MOV RAX, CR0"],
  ["0f 20 05", 3, "MOV CR: ModRM is a register even with mod=0, rm=5"],
  ["c7 f8 00 00 00 00", 6, "XBEGIN rel32"],
  ["c6 f8 01", 3, "XABORT imm8"],
  ["c5 f8 77", 3, "VZEROUPPER (no ModRM)"],
  ["c5 fd 6f 04 24", 5, "VMOVDQA ymm0, [RSP]"],
  ["c5 fd 70 c1 1b", 5, "VPSHUFD imm8 (VEX map 1 with imm)"],
  ["c5 f5 72 f0 04", 5, "VPSLLD imm8"],
  ["c4 e2 7d 00 c1", 5, "VPSHUFB (VEX 0F38)"],
  ["c4 e3 7d 46 c1 31", 6, "VPERM2I128 (VEX 0F3A imm8)"],
  ["c4 c1 7e 6f 44 24 20", 7, "VMOVDQU ymm0, [R12+32]"],
  ["c4 e2 f9 f7 c1", 5, "SHLX (BMI2)"],
  ["c4 e3 fb f0 c1 07", 6, "RORX imm8"],
  ["c4 e2 7d 18 05 10 00 00 00", 9, "VBROADCASTSS RIP-relative"],
  ["62 f1 7c 48 10 00", 6, "VMOVUPS zmm0, [RAX]"],
  ["62 f1 7c 48 10 40 01", 7, "VMOVUPS zmm0, [RAX+64] (disp8*N)"],
  ["62 f1 fd 48 6f 05 00 01 00 00", 10, "VMOVDQA64 RIP-relative"],
  ["62 f3 7d 48 3e c1 00", 7, "VPCMPUB k, zmm, imm8 (EVEX 0F3A)"],
  ["62 f1 7d 48 72 f0 04", 7, "VPSLLD zmm, imm8 (EVEX map 1 with imm)"],
  ["62 f2 7d 48 00 c1", 6, "VPSHUFB zmm (EVEX 0F38)"],
  ["62 d1 fe 48 7f 04 24", 7, "VMOVDQU64 [R12], zmm0"],
  ["62 f3 75 48 25 c2 96", 7, "VPTERNLOGD imm8"],
  ["62 f5 7c 48 58 c1", 6, "VADDPH (EVEX map 5, FP16)"],
  ["62 f6 7d 48 2c c1", 6, "VSCALEFPH (EVEX map 6)"],
  ["8f e8 78 c0 c1 05", 6, "XOP VPROTB imm8 (map 8)"],
  ["8f e9 78 90 c1", 5, "XOP VPROTB (map 9)"],
  ["8f ea 78 10 c1 01 02 03 04", 9, "XOP BEXTR imm32 (map 10)"],
  ["8f c0", 2, "POP RAX via 8F /0"],
  ["d9 ee", 2, "FLDZ (x87)"],
  ["dd 44 24 08", 4, "FLD qword [RSP+8]"],
  ["26 2e 36 3e 64 65 66 67 f3 48 8b 04 24", 13, "many prefixes"],
  ["66 66 66 66 66 66 66 66 66 66 66 66 66 66 90", 15, "the longest legal instruction"],
];

describe("hand-written encodings", () => {
  test.each(CASES)("%s is %i bytes: %s", (hex, length, _what) => {
    const code = bytes(hex);
    const oracle = iced(code);
    expect(oracle.valid).toBe(true);
    expect(oracle.length).toBe(length);
    const ours = decodeInstruction(code, 0);
    expect(ours.length).toBe(length);
    expect(decodeLength(code, 0)).toBe(length);
    expect(ours.isReturn).toBe(oracle.nearReturn);
    expect(ours.target).toBe(oracle.target);
    // in the middle of other code, and with the buffer ending right after it
    const padded = new Uint8Array([0x90, 0x90, 0x90, ...code, 0xcc, 0xcc]);
    expect(decodeLength(padded, 3)).toBe(length);
    expect(decodeLength(padded, 3, 3 + length)).toBe(length);
  });

  test("encodings are reported", () => {
    expect(decodeInstruction(bytes("62 f1 7c 48 10 00"), 0)).toMatchObject({ encoding: "evex", map: 1, opcode: 0x10, modrm: 0x00 });
    expect(decodeInstruction(bytes("c4 e2 7d 00 c1"), 0)).toMatchObject({ encoding: "vex", map: 2, opcode: 0x00, modrm: 0xc1 });
    expect(decodeInstruction(bytes("c5 f8 77"), 0)).toMatchObject({ encoding: "vex", map: 1, opcode: 0x77, modrm: -1 });
    expect(decodeInstruction(bytes("f3 c3"), 0)).toMatchObject({ encoding: "legacy", map: 0, opcode: 0xc3, isReturn: true, flow: "return", prefixLength: 1 });
    expect(decodeInstruction(bytes("0f 86 10 00 00 00"), 0)).toMatchObject({ flow: "branch", target: 0x16 });
    expect(decodeInstruction(bytes("ff e0"), 0)).toMatchObject({ flow: "indirect-jump" });
    expect(decodeInstruction(bytes("ff d0"), 0)).toMatchObject({ flow: "indirect-call" });
    expect(decodeInstruction(bytes("0f 0b"), 0)).toMatchObject({ flow: "stop" });
  });

  test("far returns, IRET and SYSRET are not returns of a Go function (iced calls them Return)", () => {
    for (const hex of ["cb", "ca 08 00", "48 cb", "cf", "48 cf", "0f 07"]) {
      const code = bytes(hex);
      expect(iced(code)).toMatchObject({ valid: true, anyReturn: true, nearReturn: false });
      expect(decodeInstruction(code, 0)).toMatchObject({ length: code.length, isReturn: false, flow: "stop" });
    }
  });
});

describe("errors", () => {
  test.each([
    ["06", "invalid", "PUSH ES is undefined in 64-bit mode"],
    ["d6", "invalid", "SALC"],
    ["ff f8", "invalid", "FF /7"],
    ["8d c0", "invalid", "LEA with a register operand"],
    ["f0 c3", "invalid", "LOCK RET"],
    ["f0 8b 00", "invalid", "LOCK MOV"],
    ["66 c5 f8 77", "invalid", "66 before VEX"],
    ["62 f1 78 48 10 00", "invalid", "EVEX with P1[2] clear"],
    ["c4 e0 7d 00 c1", "invalid", "VEX map 0"],
    ["66 66 66 66 66 66 66 66 66 66 66 66 66 66 66 90", "too-long", "15 prefixes and an opcode"],
  ] as const)("%s: %s (%s)", (hex, problem, _what) => {
    const code = bytes(hex);
    expect(iced(code).valid).toBe(false);
    let err: unknown;
    try {
      decodeInstruction(code, 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(X86DecodeError);
    const e = err as X86DecodeError;
    expect(e.problem).toBe(problem);
    expect(e.offset).toBe(0);
    expect(Array.from(e.bytes)).toEqual(Array.from(code.subarray(0, 15)));
    expect(e.message).toContain(`bytes: ${hex.split(" ").slice(0, 15).join(" ")}`);
  });

  test("every proper prefix of every case is truncated, and the error says where", () => {
    for (const [hex] of CASES) {
      const code = bytes(hex);
      for (let n = 0; n < code.length; n++) {
        const buf = new Uint8Array([0x90, ...code]);
        expect(() => decodeInstruction(buf, 1, 1 + n)).toThrow(X86DecodeError);
        try {
          decodeInstruction(buf, 1, 1 + n);
        } catch (e) {
          expect((e as X86DecodeError).problem).toBe("truncated");
          expect((e as X86DecodeError).offset).toBe(1);
        }
      }
    }
  });

  test("offsets outside the code are errors", () => {
    expect(() => decodeLength(bytes("90"), 1)).toThrow(X86DecodeError);
    expect(() => decodeLength(bytes("90"), -1)).toThrow(X86DecodeError);
  });
});

/** mulberry32: reproducible random bytes */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) & 0xff;
  };
}

describe("random bytes", () => {
  test("a length of 1..15 or an X86DecodeError, never anything else, and iced's length whenever iced decodes it", () => {
    const rnd = random(0x5eed);
    const prefixes = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x64, 0x65, 0x36, 0x48, 0x40, 0x41, 0x4c, 0x49];
    // opcode-map openings, so VEX/EVEX/XOP and the 0F maps get as many samples as the one-byte map
    const openings = [[], [0x0f], [0x0f, 0x38], [0x0f, 0x3a], [0xc5], [0xc4], [0x62], [0x8f]];
    const buf = new Uint8Array(20);
    const out = newInstruction();
    let valid = 0;
    let thrown = 0;
    const disagreements: string[] = [];
    for (let i = 0; i < 60_000; i++) {
      for (let j = 0; j < buf.length; j++) buf[j] = rnd();
      let p = 0;
      if (rnd() % 4 === 0) for (let k = rnd() % 3; k >= 0; k--) buf[p++] = prefixes[rnd() % prefixes.length]!;
      const opening = openings[rnd() % openings.length]!;
      for (const b of opening) buf[p++] = b;
      if (opening[0] === 0xc4) buf[p] = (buf[p]! & 0xe0) | (1 + (rnd() % 3)); // a defined VEX map
      if (opening[0] === 0x62) {
        buf[p] = (buf[p]! & 0xf0) | [1, 2, 3, 5, 6][rnd() % 5]!; // a defined EVEX map
        buf[p + 1]! |= 4;
      }
      const end = 1 + (rnd() % buf.length); // sometimes cut short
      const oracle = iced(buf.subarray(0, end));
      let length = -1;
      try {
        length = decodeInstruction(buf, 0, end, out).length;
        expect(length).toBeGreaterThanOrEqual(1);
        expect(length).toBeLessThanOrEqual(Math.min(15, end));
      } catch (e) {
        if (!(e instanceof X86DecodeError)) throw e;
        thrown++;
      }
      if (oracle.valid) {
        valid++;
        if (length !== oracle.length || out.isReturn !== oracle.nearReturn || out.target !== oracle.target) {
          disagreements.push(`${Buffer.from(buf.subarray(0, end)).toString("hex")}: iced ${oracle.length}, ours ${length}`);
        }
      }
    }
    expect(disagreements.slice(0, 10)).toEqual([]);
    expect(valid).toBeGreaterThan(10_000);
    expect(thrown).toBeGreaterThan(1_000);
  });

  test("sweeping a random buffer terminates: every step advances or throws", () => {
    const rnd = random(42);
    const buf = new Uint8Array(200_000);
    for (let i = 0; i < buf.length; i++) buf[i] = rnd();
    let p = 0;
    let steps = 0;
    while (p < buf.length) {
      try {
        p += decodeLength(buf, p);
      } catch (e) {
        expect(e).toBeInstanceOf(X86DecodeError);
        p++;
      }
      steps++;
    }
    expect(steps).toBeLessThanOrEqual(buf.length);
  });
});
