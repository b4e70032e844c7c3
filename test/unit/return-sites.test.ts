/**
 * RET sites and entry probe sites over every function of real Go binaries: amd64 against iced-x86 (an independent
 * decoder), arm64 against `go tool objdump` (whose arm64 decoder is right) and a plain word scan, entry sites
 * against the prologues objdump prints.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Decoder, DecoderError, DecoderOptions, EncodingKind, FlowControl, Instruction, Mnemonic } from "iced-x86";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { ElfFile, type ElfSymbol } from "../../src/gobin/elf.ts";
import { entryProbeSite, findCallSites, findReturnSites, type FunctionRange } from "../../src/gobin/return-sites.ts";
import { decodeInstruction, newInstruction } from "../../src/gobin/x86-length.ts";
import { buildGoFixture, variantName, type GoBuild } from "../support/go.ts";
import { sampleVariants, type Variant } from "../support/matrix.ts";

const SHF_EXECINSTR = 4n;

function load(v: GoBuild): ElfFile {
  const path = buildGoFixture("gobin-sample", v);
  const b = readFileSync(path);
  return ElfFile.parse(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), path);
}

/** every function symbol with a size, in an executable section */
function functions(elf: ElfFile): FunctionRange[] {
  return elf
    .symbols()
    .filter((s: ElfSymbol) => s.isFunction && s.size > 0 && ((elf.sections[s.sectionIndex]?.flags ?? 0n) & SHF_EXECINSTR) !== 0n)
    .map((s) => ({ name: s.name, entry: s.value, end: s.value + s.size }));
}

function codeOf(elf: ElfFile, fn: FunctionRange): { code: Uint8Array; base: number } {
  const base = elf.fileOffset(fn.entry)!;
  return { code: elf.bytes.subarray(base, base + fn.end - fn.entry), base };
}

/**
 * `go tool objdump` of the binary with the toolchain that built it: [vaddr, mnemonic+args][] per function, keyed
 * by name and by entry address (generic instantiations can share a name).
 */
function objdump(path: string, v: Variant, symbolRegexp?: string): Map<string | number, [number, string][]> {
  const args = ["go", "tool", "objdump", ...(symbolRegexp ? ["-s", symbolRegexp] : []), path];
  const r = Bun.spawnSync(args, { env: { ...process.env, GOTOOLCHAIN: `go${v.goVersion}` }, stdout: "pipe", stderr: "pipe", cwd: "/" });
  if (r.exitCode !== 0) throw new Error(`${args.join(" ")} failed: ${r.stderr.toString()}`);
  const out = new Map<string | number, [number, string][]>();
  let cur: [number, string][] = [];
  for (const line of r.stdout.toString().split("\n")) {
    if (line.startsWith("TEXT ")) {
      cur = [];
      out.set(line.slice(5, line.indexOf("(SB)")), cur);
      continue;
    }
    const f = line.split("\t").filter((x) => x.trim() !== "");
    if (f.length >= 4 && f[1]!.startsWith("0x")) {
      if (cur.length === 0) out.set(parseInt(f[1]!, 16), cur);
      cur.push([parseInt(f[1]!, 16), f[3]!.trim()]);
    }
  }
  return out;
}

/** Functions that jump over inline data (rsc.io/goversion markers): a linear sweep cannot decode them. */
const DATA_FUNCTIONS = /^crypto\/internal\/boring\/sig\.(BoringCrypto|StandardCrypto|FIPSOnly)(\.abi0)?$/;

const amd64 = sampleVariants().filter((v) => (v.goarch ?? "amd64") === "amd64" && !v.stripped);
const arm64 = sampleVariants().filter((v) => v.goarch === "arm64" && !v.stripped);

describe.each(amd64.map((v) => [variantName(v), v] as const))("amd64 %s", (_name, v) => {
  test("every function decodes to iced-x86's instruction boundaries and RET sites", () => {
    const elf = load(v);
    const fns = functions(elf);
    const iced = new Instruction();
    const mine = newInstruction();
    let instructions = 0;
    let returns = 0;
    let vex = 0;
    let evex = 0;
    const vexBy = new Map<string, number>();
    const evexBy = new Map<string, number>();
    const withData: string[] = [];
    let otherReturns = 0; // far RET, IRET, SYSRET: iced's FlowControl.Return but not a Go return
    const mismatches: string[] = [];
    const t0 = performance.now();
    for (const fn of fns) {
      const { code, base } = codeOf(elf, fn);
      const decoder = new Decoder(64, code, DecoderOptions.None);
      decoder.ip = BigInt(fn.entry);
      const icedRets: number[] = [];
      let p = 0;
      let data = false;
      let others = 0;
      while (p < code.length) {
        decoder.decodeOut(iced);
        if (decoder.lastError !== DecoderError.None) {
          data = true; // iced cannot decode it either: data read as code
          break;
        }
        const m = decodeInstruction(code, p, code.length, mine);
        const icedRet = iced.mnemonic === Mnemonic.Ret;
        if (iced.flowControl === FlowControl.Return && !icedRet) others++;
        if (m.length !== iced.length || m.isReturn !== icedRet) {
          mismatches.push(`${fn.name}+0x${p.toString(16)}: iced ${iced.length}${icedRet ? " ret" : ""}, ours ${m.length}${m.isReturn ? " ret" : ""}`);
          break;
        }
        if (iced.encoding === EncodingKind.VEX) vexBy.set(fn.name, (vexBy.get(fn.name) ?? 0) + 1);
        if (iced.encoding === EncodingKind.EVEX) evexBy.set(fn.name, (evexBy.get(fn.name) ?? 0) + 1);
        if (m.encoding === "vex") vex++;
        if (m.encoding === "evex") evex++;
        if (icedRet) icedRets.push(base + p);
        instructions++;
        p += iced.length;
      }
      decoder.free();
      const ours = findReturnSites(elf, fn);
      if (data) {
        withData.push(fn.name);
        // the marker functions are JMP over the data to their only RET, the last byte
        expect(ours).toEqual([base + code.length - 1]);
        expect(code[code.length - 1]).toBe(0xc3);
      } else {
        if (ours.join() !== icedRets.join()) mismatches.push(`${fn.name}: RETs ${ours} vs iced ${icedRets}`);
        otherReturns += others;
      }
      returns += ours.length;
    }
    iced.free();
    const ms = performance.now() - t0;
    console.log(`amd64 ${variantName(v)}: ${fns.length} functions, ${instructions} instructions (${vex} VEX, ${evex} EVEX), ${returns} RETs; decoded with both decoders in ${ms.toFixed(0)} ms`);
    expect(mismatches).toEqual([]);
    expect(otherReturns).toBe(0); // so iced's FlowControl.Return and our near-RET rule agree on Go code
    // the one kind of Go function with inline data is there, and findReturnSites got its RET right (above)
    expect(withData.length).toBeGreaterThan(0);
    expect(withData.every((n) => DATA_FUNCTIONS.test(n))).toBe(true);
    expect(fns.length).toBeGreaterThan(5000);
    // hand-written AVX2 (sha*, chacha20poly1305) was covered, and AVX-512 where Go has it (1.26+)
    const avx2 = [...vexBy].filter(([n, c]) => /blockAVX2/.test(n) && c > 100);
    expect(avx2.length).toBeGreaterThan(0);
    expect(vex).toBeGreaterThan(4000);
    if (Number(v.goVersion.split(".")[1]) >= 26) {
      expect(evexBy.get("runtime.asyncPreempt.abi0") ?? 0).toBeGreaterThan(0);
      expect([...evexBy.keys()].filter((n) => /AVX512/.test(n)).length).toBeGreaterThan(0);
    }
  }, 60_000);

  test("entry sites of known functions agree with go tool objdump", () => {
    const elf = load(v);
    const byName = new Map(functions(elf).map((f) => [f.name, f]));
    const dump = objdump(elf.name, v, "^(net/http\\.serverHandler\\.ServeHTTP|net/http\\.\\(\\*conn\\)\\.serve|main\\.main|runtime\\.memmove)$");
    const serve = byName.get("net/http.serverHandler.ServeHTTP")!;
    const site = entryProbeSite(elf, serve);
    const base = elf.fileOffset(serve.entry)!;
    expect(site).toMatchObject({ offset: base + 4, emulated: true });
    expect([0x76, 0x0f]).toContain(elf.bytes[site.offset]!);
    if (elf.bytes[site.offset] === 0x0f) expect(elf.bytes[site.offset + 1]).toBe(0x86);
    expect(dump.get(serve.name)![0]![1]).toBe("CMPQ SP, 0x10(R14)");
    expect(dump.get(serve.name)![1]).toEqual([serve.entry + 4, expect.stringMatching(/^JBE /)]);
    // NOSPLIT assembly without a stack check: the entry
    const memmove = byName.get("runtime.memmove")!;
    expect(entryProbeSite(elf, memmove).offset).toBe(elf.fileOffset(memmove.entry)!);
    expect(dump.get("runtime.memmove")![0]![1]).not.toMatch(/R14\)/);
    for (const name of ["net/http.(*conn).serve", "main.main"]) {
      const fn = byName.get(name)!;
      const insns = dump.get(name)!;
      const jbe = insns.findIndex(([, text]) => text.startsWith("JBE "));
      expect(insns.slice(0, jbe).some(([, text]) => /^CMPQ (SP|R12), 0x10\(R14\)$/.test(text))).toBe(true);
      expect(entryProbeSite(elf, fn).offset - elf.fileOffset(fn.entry)!).toBe(insns[jbe]![0] - fn.entry);
    }
    // RETs of the big one match objdump too (it decodes compiler output correctly)
    const conn = byName.get("net/http.(*conn).serve")!;
    const rets = dump.get(conn.name)!.filter(([, t]) => t === "RET").map(([a]) => a - conn.entry + elf.fileOffset(conn.entry)!);
    expect(findReturnSites(elf, conn)).toEqual(rets);
  }, 60_000);
});

/** The probe site objdump's text implies: the JBE right after the Go stack check among the first instructions. */
function expectedAmd64Site(insns: [number, string][]): number | undefined {
  const prologue = /^(LEAQ -?0x[0-9a-f]+\(SP\), R12|MOVQ SP, R12|SUBQ \$0x[0-9a-f]+, R12|JB 0x[0-9a-f]+)$/;
  for (let i = 0; i < Math.min(insns.length - 1, 5); i++) {
    const text = insns[i]![1];
    if (/^CMPQ (SP|R12), 0x(10|18)\(R14\)$/.test(text)) return insns[i + 1]![1].startsWith("JBE ") ? insns[i + 1]![0] : undefined;
    if (!prologue.test(text)) return undefined;
  }
  return undefined;
}

test("amd64: entry sites of every function agree with the prologues go tool objdump prints (oldest and newest Go)", () => {
  for (const v of [amd64[0]!, amd64[amd64.length - 1]!]) {
    const elf = load(v);
    const dump = objdump(elf.name, v);
    const counts = { jbe: 0, entry: 0, emulatedEntry: 0 };
    for (const fn of functions(elf)) {
      const insns = dump.get(fn.entry);
      if (!insns || insns.length === 0) continue;
      const site = entryProbeSite(elf, fn);
      const at = site.offset - elf.fileOffset(fn.entry)! + fn.entry;
      const expected = expectedAmd64Site(insns);
      expect({ fn: fn.name, at }).toEqual({ fn: fn.name, at: expected ?? fn.entry });
      if (expected !== undefined) {
        counts.jbe++;
        expect(site.emulated).toBe(true);
        expect([0x76, 0x0f]).toContain(elf.bytes[site.offset]!);
      } else {
        counts.entry++;
        if (site.emulated) {
          counts.emulatedEntry++;
          expect(insns[0]![1]).toMatch(/^(PUSHQ|JMP|CALL|J[A-Z]+ |NOPL?$)/);
        }
      }
    }
    console.log(`amd64 ${variantName(v)} entry sites: ${counts.jbe} on the JBE, ${counts.entry} at the entry (${counts.emulatedEntry} of them emulated)`);
    expect(counts.jbe).toBeGreaterThan(4000);
  }
}, 120_000);

describe.each(arm64.map((v) => [variantName(v), v] as const))("arm64 %s", (_name, v) => {
  test("RET sites of every function equal go tool objdump's and a plain word scan of .text", () => {
    const elf = load(v);
    const fns = functions(elf);
    const dump = objdump(elf.name, v);
    const text = elf.section(".text")!;
    let returns = 0;
    let compared = 0;
    const all = new Set<number>();
    for (const fn of fns) {
      const base = elf.fileOffset(fn.entry)!;
      const ours = findReturnSites(elf, fn);
      for (const r of ours) all.add(r);
      returns += ours.length;
      const insns = dump.get(fn.entry);
      if (!insns) continue;
      compared++;
      const theirs = insns.filter(([, t]) => /^RET\b/.test(t)).map(([a]) => a - fn.entry + base);
      expect({ fn: fn.name, rets: ours }).toEqual({ fn: fn.name, rets: theirs });
    }
    // every RET word in .text belongs to some function: nothing hides outside the symbols
    const scan: number[] = [];
    const dv = new DataView(elf.bytes.buffer, elf.bytes.byteOffset + text.offset, text.size);
    for (let p = 0; p + 4 <= text.size; p += 4) if (((dv.getUint32(p, true) & 0xfffffc1f) >>> 0) === 0xd65f0000) scan.push(text.offset + p);
    expect(scan).toEqual([...all].sort((a, b) => a - b));
    console.log(`arm64 ${variantName(v)}: ${fns.length} functions (${compared} in objdump), ${returns} RETs`);
    expect(compared).toBeGreaterThan(5000);
  }, 120_000);

  test("entry sites: the B.LS after the stack check, else the entry", () => {
    const elf = load(v);
    const dump = objdump(elf.name, v);
    let bls = 0;
    for (const fn of functions(elf)) {
      const insns = dump.get(fn.entry);
      if (!insns || insns.length === 0) continue;
      const site = entryProbeSite(elf, fn);
      const at = site.offset - elf.fileOffset(fn.entry)! + fn.entry;
      const check = /^MOVD (16|24)\(R28\), R16$/.test(insns[0]![1]);
      const i = insns.findIndex(([, t]) => t.startsWith("BLS "));
      if (check && i > 0 && i < 8) {
        bls++;
        expect({ fn: fn.name, at, emulated: site.emulated }).toEqual({ fn: fn.name, at: insns[i]![0], emulated: true });
      } else {
        expect({ fn: fn.name, at }).toEqual({ fn: fn.name, at: fn.entry });
      }
    }
    expect(bls).toBeGreaterThan(4000);
    const memmove = functions(elf).find((f) => f.name === "runtime.memmove")!;
    expect(entryProbeSite(elf, memmove)).toMatchObject({ offset: elf.fileOffset(memmove.entry), emulated: true }); // CBZ
  }, 120_000);
});

// the calls HTTP/2 client injection probes (src/instrumentations/nethttp-client), in net/http's bundled client
// (Go 1.19) and in net/http/internal/http2 (1.27), for both architectures
describe.each([
  ["1.19.13", "amd64", "net/http.(*http2ClientConn).writeHeaders"], ["1.27.4", "amd64", "net/http/internal/http2.(*ClientConn).writeHeaders"],
  ["1.19.13", "arm64", "net/http.(*http2ClientConn).writeHeaders"], ["1.27.4", "arm64", "net/http/internal/http2.(*ClientConn).writeHeaders"],
] as const)("call sites, Go %s %s", (goVersion, goarch, caller) => {
  test("the calls of a function from another are the CALL/BL instructions go tool objdump shows for it", () => {
    const v: Variant = { goVersion, goarch };
    const path = buildGoFixture("http-chain", v);
    const b = readFileSync(path);
    const elf = ElfFile.parse(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), path);
    const fns = functions(elf);
    const from = fns.find((f) => f.name === caller)!;
    const callees = objdump(path, v, `^${caller.replace(/[.*()\/]/g, "\\$&")}$`).get(caller)!
      .flatMap(([at, text]) => (/^(CALL|BL) (\S+)\(SB\)$/.exec(text) ? [[at, /^(?:CALL|BL) (\S+)\(SB\)$/.exec(text)![1]!] as const] : []));
    expect(callees.map(([, name]) => name)).toContain("bufio.(*Writer).Flush");
    for (const name of new Set(callees.map(([, n]) => n))) {
      const to = fns.find((f) => f.name === name);
      if (!to) continue; // an ABI wrapper or a symbol objdump names differently
      const want = callees.filter(([, n]) => n === name).map(([at]) => at - from.entry + elf.fileOffset(from.entry)!);
      expect([name, findCallSites(elf, from, to.entry)]).toEqual([name, want]);
    }
  }, 300_000);
});

test("a function whose range is not in the file is a typed error", () => {
  const elf = load(amd64[0]!);
  expect(() => findReturnSites(elf, { name: "nowhere", entry: 0x10, end: 0x20 })).toThrow("function nowhere");
  expect(() => entryProbeSite(elf, { name: "empty", entry: 0x401000, end: 0x401000 })).toThrow("function empty");
});

test("a truncated function is a typed error, and a cut after a whole instruction is not", () => {
  const elf = load(amd64[0]!);
  const fn = functions(elf).find((f) => f.name === "net/http.serverHandler.ServeHTTP")!;
  // +4 is the start of the JBE (0f 86 rel32): cutting inside it leaves a partial instruction
  expect(() => findReturnSites(elf, { ...fn, end: fn.entry + 6 })).toThrow(/ServeHTTP: undecodable instruction/);
  expect(findReturnSites(elf, { ...fn, end: fn.entry + 4 })).toEqual([]);
});

/**
 * `go tool objdump -s RE` with each instruction's source line: the TEXT header names the source file, so the
 * line's own text says which `return` statement a RET belongs to.
 */
function objdumpWithSource(path: string, goVersion: string, symbolRegexp: string): { addr: number; text: string; source: string }[] {
  const r = Bun.spawnSync(["go", "tool", "objdump", "-s", symbolRegexp, path], { env: { ...process.env, GOTOOLCHAIN: `go${goVersion}` }, stdout: "pipe", stderr: "pipe", cwd: "/" });
  if (r.exitCode !== 0) throw new Error(`objdump of ${path} failed: ${r.stderr.toString()}`);
  const out: { addr: number; text: string; source: string }[] = [];
  let lines: string[] = [];
  for (const line of r.stdout.toString().split("\n")) {
    if (line.startsWith("TEXT ")) {
      lines = readFileSync(line.slice(line.lastIndexOf(" ") + 1), "utf8").split("\n");
      continue;
    }
    const f = line.split("\t").filter((x) => x.trim() !== "");
    if (f.length >= 4 && f[1]!.startsWith("0x")) {
      const at = Number(f[0]!.trim().split(":")[1]);
      out.push({ addr: parseInt(f[1]!, 16), text: f[3]!.trim(), source: (lines[at - 1] ?? "").trim() });
    }
  }
  return out;
}

// The oracle: objdump's instructions and the source lines of the return statements of the success paths.
describe.each([
  ["http-chain", "1.19.13"], ["http-chain", "1.21.13"], ["http-chain", "1.22.12"], ["http-chain", "1.27.4"],
  ["sql-fake", "1.19.13"], ["sql-fake", "1.23.12"], ["sql-fake", "1.27.4"],
] as const)("success-path ends in %s built with Go %s (amd64)", (fixture, goVersion) => {
  const path = buildGoFixture(fixture, { goVersion });
  const exe = GoExecutable.open(path);
  const offset = (addr: number) => exe.elf.fileOffset(addr)!;

  if (fixture === "http-chain") {
    test("roundTrip: the JE after TESTQ BX, BX that follows the call of persistConn.roundTrip, and the RET of `return resp, nil`", () => {
      const insns = objdumpWithSource(path, goVersion, "^net/http\\.\\(\\*Transport\\)\\.roundTrip$");
      let i = insns.findIndex((x) => x.text === "CALL net/http.(*persistConn).roundTrip(SB)") + 1;
      while (insns[i]!.text.startsWith("NOP")) i++;
      expect(insns[i]!.text).toBe("TESTQ BX, BX");
      expect(insns[i + 1]!.text).toStartWith("JE ");
      const rets = insns.filter((x) => x.text === "RET");
      const success = rets.filter((x) => x.source === "return resp, nil");
      expect(success).toHaveLength(1);
      const r = exe.successEnd("net/http.(*Transport).roundTrip", { kind: "result-check", callee: "net/http.(*persistConn).roundTrip" });
      expect(r).toEqual({ sites: [offset(insns[i + 1]!.addr)], returns: success.map((x) => offset(x.addr)) });
    });
  } else {
    test("queryDC: the calls of initContextClose, and the RETs of `return rows, nil`", () => {
      const insns = objdumpWithSource(path, goVersion, "^database/sql\\.\\(\\*DB\\)\\.queryDC$");
      const calls = insns.filter((x) => x.text === "CALL database/sql.(*Rows).initContextClose(SB)");
      const success = insns.filter((x) => x.text === "RET" && x.source === "return rows, nil");
      expect([calls.length, success.length]).toEqual([2, 2]);
      expect(insns.filter((x) => x.text === "RET").length).toBeGreaterThan(2); // the error paths keep theirs
      const r = exe.successEnd("database/sql.(*DB).queryDC", { kind: "success-call", callee: "database/sql.(*Rows).initContextClose" });
      expect(r).toEqual({ sites: calls.map((x) => offset(x.addr)), returns: success.map((x) => offset(x.addr)) });
    });

    test("execDC's deferred closure: where its context keeps &err, as the loads before its call show", () => {
      const insns = objdumpWithSource(path, goVersion, "^database/sql\\.\\(\\*DB\\)\\.execDC\\.func1$");
      const ax = insns.find((x) => /^MOVQ 0\(([A-Z0-9]+)\), AX$/.test(x.text))!;
      const pointer = /^MOVQ 0\(([A-Z0-9]+)\), AX$/.exec(ax.text)![1]!;
      expect(insns.some((x) => x.text === `MOVQ 0x8(${pointer}), BX`)).toBe(true);
      const load = insns.find((x) => new RegExp(`^MOVQ (0x[0-9a-f]+)\\(DX\\), ${pointer}$`).test(x.text))!;
      expect(exe.capturedArgument("database/sql.(*DB).execDC.func1")).toEqual({ offset: parseInt(load.text.slice(5), 16) });
    });
  }
});

test("arm64 keeps its RET probes (the kernel simulates RET there); a function without the shape says why", () => {
  const arm = GoExecutable.open(buildGoFixture("http-chain", { goVersion: "1.27.4", goarch: "arm64" }));
  expect(arm.successEnd("net/http.(*Transport).roundTrip", { kind: "result-check", callee: "net/http.(*persistConn).roundTrip" })).toEqual({ missing: "arm64 simulates RET" });
  const exe = GoExecutable.open(buildGoFixture("http-chain", { goVersion: "1.27.4" }));
  // getConn's error is checked with a JNE: the branch taken is the failure, not a success path
  expect(exe.successEnd("net/http.(*Transport).roundTrip", { kind: "result-check", callee: "net/http.(*Transport).getConn" })).toEqual({ missing: "no TESTQ BX, BX; JE after the call of net/http.(*Transport).getConn" });
  expect(exe.successEnd("net/http.(*Transport).roundTrip", { kind: "success-call", callee: "no.such.function" })).toBeUndefined();
});

describe.each([
  ["grpc v1.40.0, Go 1.19.13", { goVersion: "1.19.13", modfile: "go.v140.mod" }],
  ["grpc's newest, Go 1.27.4", { goVersion: "1.27.4" }],
] as const)("result tests in grpc-service (%s)", (_name, build) => {
  test("NewStream's test of createHeaderFields' error: the Jcc after TESTQ DI, DI that follows the call, as objdump shows it", () => {
    const path = buildGoFixture("grpc-service", build);
    const exe = GoExecutable.open(path);
    const insns = objdumpWithSource(path, build.goVersion, "transport\\.\\(\\*http2Client\\)\\.NewStream$");
    let i = insns.findIndex((x) => x.text.startsWith("CALL google.golang.org/grpc/internal/transport.(*http2Client).createHeaderFields(SB)")) + 1;
    while (/^MOVQ [A-Z0-9]+, 0x[0-9a-f]+\(SP\)$/.test(insns[i]!.text)) i++;
    expect(insns[i]!.text).toBe("TESTQ DI, DI");
    expect(insns[i + 1]!.text).toMatch(/^J(E|NE) /);
    const newStream = "google.golang.org/grpc/internal/transport.(*http2Client).NewStream";
    expect(exe.resultTests(newStream, "google.golang.org/grpc/internal/transport.(*http2Client).createHeaderFields", "DI")).toEqual([exe.elf.fileOffset(insns[i + 1]!.addr)!]);
    // the error of createHeaderFields is in DI, not BX: nothing tests BX right after the call
    expect(exe.resultTests(newStream, "google.golang.org/grpc/internal/transport.(*http2Client).createHeaderFields", "BX")).toMatchObject({ missing: expect.stringMatching(/^no TESTQ BX, BX/) });
  });
});
