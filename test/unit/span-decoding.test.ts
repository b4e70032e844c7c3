/**
 * The per-span helpers that were rewritten for speed (no BigInt division, no regular expressions, native byte
 * slicing): each must give exactly what the plain version gave.
 */
import { expect, test } from "bun:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { splitHostPort } from "../../src/instrumentations/http.ts";
import { decodeUtf8, hexBytes } from "../../src/probes/span-event.ts";
import { processResource } from "../../src/traces/resource.ts";
import { hrTime, toReadableSpan, type SpanRecord } from "../../src/traces/span.ts";

const plainHrTime = (ns: bigint): [number, number] => [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];

test("hrTime equals BigInt division, for times in any order and far apart", () => {
  const now = 1_765_000_000_123_456_789n;
  const times = [now, now + 1n, now - 1n, now + 999_999_999n, now - 123_456_790n, 0n, 999_999_999n, now + 200n * 86_400n * 1_000_000_000n, now, 4_102_444_800_000_000_001n];
  let x = 0x2545f491n;
  for (let i = 0; i < 2_000; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffff_ffff_ffff_ffffn;
    times.push(now + (x % 10_000_000_000_000n) - 5_000_000_000_000n);
  }
  for (const t of times) expect(hrTime(t)).toEqual(plainHrTime(t));
});

test("splitHostPort: host and port, bracketed IPv6, and everything else is all host", () => {
  const cases: [string, { host: string; port?: number }][] = [
    ["127.0.0.1:8080", { host: "127.0.0.1", port: 8080 }],
    ["example.com", { host: "example.com" }],
    ["[::1]:443", { host: "::1", port: 443 }],
    ["[fe80::1%eth0]", { host: "fe80::1%eth0" }],
    ["::1", { host: "::1" }],
    ["host:", { host: "host:" }],
    ["host:http", { host: "host:http" }],
    [":8080", { host: "", port: 8080 }],
    ["[::1]:", { host: "[::1]:" }],
    ["[::1", { host: "[::1" }],
    ["", { host: "" }],
  ];
  for (const [s, want] of cases) expect(splitHostPort(s)).toEqual(want);
});

test("decodeUtf8 and hexBytes read at the view's offset in a shared buffer; bad UTF-8 becomes U+FFFD", () => {
  const bytes = new Uint8Array(64);
  bytes.set([0x47, 0x45, 0x54, 0xff, 0xc3, 0xa9], 20);
  bytes.set([0x4b, 0xf9, 0x2f, 0x35, 0x00, 0x01], 40);
  const v = new DataView(bytes.buffer, 16, 40);
  expect(decodeUtf8(v, 4, 3)).toBe("GET");
  expect(decodeUtf8(v, 4, 6)).toBe("GET\ufffdé");
  expect(hexBytes(v, 24, 6)).toBe("4bf92f350001");
  const other = new DataView(new Uint8Array([0x61, 0x62]).buffer);
  expect(decodeUtf8(other, 0, 2)).toBe("ab");
  expect(hexBytes(v, 24, 2)).toBe("4bf9");
});

test("spans of one scope share one scope object, so an export has one ScopeSpans per scope", () => {
  const resource = processResource({ pid: 1, executablePath: "/bin/x", goVersion: "go1.26.0" });
  const record = (spanId: string, scope: string): SpanRecord => ({
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId, name: "GET", kind: SpanKind.SERVER, startUnixNs: 1_000_000_000_500n,
    endUnixNs: 1_000_000_000_400n, attributes: {}, status: { code: SpanStatusCode.UNSET }, scope,
  });
  const [a, b, c] = [record("00f067aa0ba902b7", "s1"), record("00f067aa0ba902b8", "s1"), record("00f067aa0ba902b9", "s2")].map((r) => toReadableSpan(r, resource));
  expect(a!.instrumentationScope).toBe(b!.instrumentationScope);
  expect(a!.instrumentationScope).not.toBe(c!.instrumentationScope);
  // an end before the start (clock re-measured between them) is clamped to the start
  expect(a!.endTime).toEqual(a!.startTime);
  expect(a!.duration).toEqual([0, 0]);
  const long = toReadableSpan({ ...record("00f067aa0ba902ba", "s1"), endUnixNs: 1_002_000_000_400n }, resource);
  expect(long.duration).toEqual([1, 999_999_900]);
});
