/**
 * What a Go panic's value was, from what a probe read at runtime.gopanic(e any): the value's type (named from
 * the binary's runtime type data) and the first 24 bytes its data word points to. Go prints a panic through
 * the value's Error or String method, which a probe cannot call, so the message is known for the types panics
 * carry most: a string (panic("…"), fmt.Sprintf), errors.New and fmt.Errorf errors (their text is their first
 * field), the runtime's nil dereference / nil map (runtime.errorString, runtime.plainError) and index or slice
 * bounds errors (runtime.boundsError, formatted here as runtime/error.go does; layout unchanged 1.19-1.27).
 */

export interface GoPanic {
  /** the value's Go type, e.g. "string", "*errors.errorString", "runtime.boundsError"; "_OTHER" when unreadable */
  type: string;
  /** what Go would print after "panic: ", when the type is one of the known ones */
  message?: string;
  /** wall-clock ns of the panic */
  timeUnixNs: bigint;
}

/** the kernel copies this much of a string's bytes (PANIC_TEXT_MAX in src/instrumentations/nethttp-server/nethttp_server.bpf.c) */
export const PANIC_TEXT_MAX = 128;

/** types whose value begins with a string header (or is one), and what their Error() puts before it */
const STRING_FIRST: ReadonlyMap<string, string> = new Map([
  ["string", ""], ["runtime.plainError", ""], ["runtime.errorString", "runtime error: "],
  ["*errors.errorString", ""], ["*fmt.wrapError", ""], ["*fmt.wrapErrors", ""],
]);

/** runtime/error.go's formats by boundsErrorCode, and the ones for a negative signed x */
const BOUNDS_FORMATS = [
  "index out of range [%x] with length %y", "slice bounds out of range [:%x] with length %y",
  "slice bounds out of range [:%x] with capacity %y", "slice bounds out of range [%x:%y]",
  "slice bounds out of range [::%x] with length %y", "slice bounds out of range [::%x] with capacity %y",
  "slice bounds out of range [:%x:%y]", "slice bounds out of range [%x:%y:]",
  "cannot convert slice with length %y to array or pointer to array with length %x",
];
const BOUNDS_NEGATIVE_FORMATS = [
  "index out of range [%x]", "slice bounds out of range [:%x]", "slice bounds out of range [:%x]",
  "slice bounds out of range [%x:]", "slice bounds out of range [::%x]", "slice bounds out of range [::%x]",
  "slice bounds out of range [:%x:]", "slice bounds out of range [%x::]",
];

/**
 * The panic message for a value of this type. value: the 24 bytes at its data word; text: the bytes the
 * string header in value[0..16] points to, as far as the kernel copied them.
 */
export function panicMessage(type: string, value: DataView, text: Uint8Array): string | undefined {
  const prefix = STRING_FIRST.get(type);
  if (prefix !== undefined) {
    const length = value.getBigUint64(8, true);
    if (length === 0n) return prefix;
    if (text.length === 0) return undefined;
    return prefix + decodeCut(text, length > BigInt(text.length));
  }
  if (type === "runtime.boundsError") return boundsMessage(value);
  return undefined;
}

/** UTF-8 text cut at `truncated`: a character split by the cut is dropped, and "…" says there is more */
function decodeCut(bytes: Uint8Array, truncated: boolean): string {
  const s = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  return truncated ? `${s.replace(/\uFFFD+$/, "")}…` : s;
}

function boundsMessage(value: DataView): string | undefined {
  const x = value.getBigInt64(0, true);
  const y = value.getBigInt64(8, true);
  const signed = value.getUint8(16) !== 0;
  const code = value.getUint8(17);
  const format = signed && x < 0n ? BOUNDS_NEGATIVE_FORMATS[code] : BOUNDS_FORMATS[code];
  if (format === undefined) return undefined;
  const xs = signed ? String(x) : String(BigInt.asUintN(64, x));
  return `runtime error: ${format.replace("%x", xs).replace("%y", String(y))}`;
}
