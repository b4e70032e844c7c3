/**
 * The HTTP server span's status (src/probes/nethttp-server.ts) as a pure function, and the names of the
 * HTTP/2 ResponseWriter types that decide whose offsets read an HTTP/2 status, checked against the itab symbols
 * of a real binary (test/fixtures/http2-server: net/http's bundled server and golang.org/x/net's).
 */
import { describe, expect, test } from "bun:test";
import { SpanStatusCode } from "@opentelemetry/api";
import { readFileSync } from "node:fs";
import { ElfFile } from "../../src/gobin/elf.ts";
import { GoTypeNames, typesBase, type TargetMemory } from "../../src/gobin/runtime-types.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { H2_WRITER_TYPES, degraded, toSpanRecord, type ServerEvent } from "../../src/probes/nethttp-server.ts";
import { itabTypeName } from "../../src/probes/span-event.ts";
import { buildGoFixture } from "../support/go.ts";

const base: ServerEvent = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", parentIsRemote: false, startNs: 1_000n, endNs: 2_000n,
  method: "GET", path: "/users/7", host: "example.com:8443", remoteAddr: "10.0.0.9:51000", pattern: "GET /users/{id}",
  protoMajor: 2, protoMinor: 0, status: 200, tls: true, userAgent: "curl/8",
};

describe("server span status", () => {
  test("a status that was read: the attribute, and ERROR from 500", () => {
    expect(toSpanRecord(base).attributes["http.response.status_code"]).toBe(200);
    expect(toSpanRecord({ ...base, status: 499 }).status.code).toBe(SpanStatusCode.UNSET);
    expect(toSpanRecord({ ...base, status: 503 })).toMatchObject({ status: { code: SpanStatusCode.ERROR }, attributes: { "http.response.status_code": 503 } });
  });
  test("nothing written: net/http answers 200", () => {
    expect(toSpanRecord({ ...base, status: 0 }).attributes["http.response.status_code"]).toBe(200);
  });
  test("a status that could not be read is left out, never guessed", () => {
    const r = toSpanRecord({ ...base, status: undefined });
    expect(r.attributes).not.toHaveProperty("http.response.status_code");
    expect(r.status.code).toBe(SpanStatusCode.UNSET);
    expect(r.attributes["network.protocol.version"]).toBe("2");
  });
});

describe("HTTP/2 ResponseWriter types", () => {
  // Go 1.22 still emits go:itab.T,I symbols; from 1.27 net/http's writer is http.http2ResponseWriter (checked e2e)
  const path = buildGoFixture("http2-server", { goVersion: "1.22.12" });
  const elf = ElfFile.parse(new Uint8Array(readFileSync(path)), path);
  const read = (a: number, n: number): Uint8Array | undefined => elf.bytesAt(a, n);
  const names = new GoTypeNames(typesBase(elf, "1.22.12")!, read);
  const memory: TargetMemory = { read, typeName: (a) => names.name(a) };
  const itab = (symbol: string): bigint => BigInt(elf.symbols().find((s) => s.name === symbol)!.value);

  test("net/http's own server's writer and x/net's are told apart by the itab's type name", () => {
    const bundled = itabTypeName(memory, itab("go:itab.*net/http.http2responseWriter,net/http.ResponseWriter"));
    const xnet = itabTypeName(memory, itab("go:itab.*golang.org/x/net/http2.responseWriter,net/http.ResponseWriter"));
    expect([bundled, xnet]).toEqual(["*http.http2responseWriter", "*http2.responseWriter"]);
    expect([H2_WRITER_TYPES.get(bundled!), H2_WRITER_TYPES.get(xnet!)]).toEqual(["std", "xnet"]);
    expect(H2_WRITER_TYPES.get(itabTypeName(memory, itab("go:itab.*net/http.response,net/http.ResponseWriter"))!)).toBeUndefined();
  });

  test("an itab that cannot be read has no name", () => {
    expect(itabTypeName(memory, 0n)).toBeUndefined();
    expect(itabTypeName(memory, 8n)).toBeUndefined();
    expect(itabTypeName(undefined, itab("go:itab.*net/http.response,net/http.ResponseWriter"))).toBeUndefined();
  });
});

describe("what a binary's spans will lack, for inspect and the attach log", () => {
  test("x/net's HTTP/2 server without its offsets: its responses get no status code, and that is said", () => {
    const exe = GoExecutable.open(buildGoFixture("http2-server", { goVersion: "1.22.12", stripped: true }));
    expect(degraded(exe, {})).toBe("HTTP/2 responses of golang.org/x/net's server get no status code (no offsets for golang.org/x/net v0.30.0: not in the binary's DWARF nor in gotel's table)");
    expect(degraded(exe, { xnet_writer_rws: 0, xnet_rws_status: 72 })).toBeUndefined();
  });
  test("a binary without x/net's server lacks nothing", () => {
    expect(degraded(GoExecutable.open(buildGoFixture("http-server", { goVersion: "1.22.12" })), {})).toBeUndefined();
  });
});
