/** Panic messages from what the kernel reads at runtime.gopanic (src/probes/go-panic.ts). */
import { describe, expect, test } from "bun:test";
import { PANIC_TEXT_MAX, panicMessage } from "../../src/probes/go-panic.ts";

/** the 24 bytes at the value's data word: two words, then two bytes (a boundsError's signed and code) */
function value(w0: bigint, w1: bigint, b16 = 0, b17 = 0): DataView {
  const dv = new DataView(new ArrayBuffer(24));
  dv.setBigUint64(0, BigInt.asUintN(64, w0), true);
  dv.setBigUint64(8, BigInt.asUintN(64, w1), true);
  dv.setUint8(16, b16);
  dv.setUint8(17, b17);
  return dv;
}
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (s: string): [DataView, Uint8Array] => {
  const b = bytes(s);
  return [value(0x1000n, BigInt(b.length)), b.slice(0, PANIC_TEXT_MAX)];
};

describe("panic messages", () => {
  test("strings, errors.New and fmt.Errorf errors: their text", () => {
    for (const type of ["string", "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "runtime.plainError"]) {
      expect(panicMessage(type, ...str("boom"))).toBe("boom");
    }
    expect(panicMessage("string", value(0n, 0n), new Uint8Array())).toBe("");
  });
  test("the runtime's nil dereference is a runtime error", () => {
    expect(panicMessage("runtime.errorString", ...str("invalid memory address or nil pointer dereference")))
      .toBe("runtime error: invalid memory address or nil pointer dereference");
  });
  test("a long text is cut on a character boundary and says so", () => {
    const long = "ü".repeat(100); // 200 bytes: the kernel copies 128, the last character whole
    expect(panicMessage("string", ...str(long))).toBe(`${"ü".repeat(64)}…`);
    const odd = `x${"ü".repeat(100)}`; // the 128th byte is half of a ü
    expect(panicMessage("string", ...str(odd))).toBe(`x${"ü".repeat(63)}…`);
  });
  test("text the kernel could not read: no message rather than a wrong one", () => {
    expect(panicMessage("string", value(0x1000n, 4n), new Uint8Array())).toBeUndefined();
  });
  test("index and slice bounds, formatted as the runtime does", () => {
    expect(panicMessage("runtime.boundsError", value(5n, 3n, 1, 0), new Uint8Array())).toBe("runtime error: index out of range [5] with length 3");
    expect(panicMessage("runtime.boundsError", value(-1n, 3n, 1, 0), new Uint8Array())).toBe("runtime error: index out of range [-1]");
    expect(panicMessage("runtime.boundsError", value(-1n, 3n, 0, 1), new Uint8Array())).toBe("runtime error: slice bounds out of range [:18446744073709551615] with length 3");
    expect(panicMessage("runtime.boundsError", value(4n, 2n, 1, 3), new Uint8Array())).toBe("runtime error: slice bounds out of range [4:2]");
    expect(panicMessage("runtime.boundsError", value(4n, 2n, 1, 99), new Uint8Array())).toBeUndefined();
  });
  test("other types: no message (their Error method is Go code)", () => {
    expect(panicMessage("*main.myError", ...str("looks like text"))).toBeUndefined();
    expect(panicMessage("_OTHER", ...str("x"))).toBeUndefined();
  });
});
