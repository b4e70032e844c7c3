/**
 * The HTTP server span's status (src/instrumentations/nethttp-server/plan.ts) as a pure function, and the names of the
 * HTTP/2 ResponseWriter types that decide whose offsets read an HTTP/2 status, checked against the itab symbols
 * of a real binary (test/fixtures/http2-server: net/http's bundled server and golang.org/x/net's).
 */
import { describe, expect, test } from "bun:test";
import { SpanStatusCode } from "@opentelemetry/api";
import { readFileSync } from "node:fs";
import { ElfFile } from "../../src/gobin/elf.ts";
import { GoTypeNames, typesBase, type TargetMemory } from "../../src/gobin/runtime-types.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { H2_WRITER_TYPES, PROGRAMS, degraded, plan, serverPrograms, streamDoneClosure, toSpanRecord, type ServerEvent } from "../../src/instrumentations/nethttp-server/plan.ts";
import type { GoFunction } from "../../src/gobin/functions.ts";
import { itabTypeName } from "../../src/probes/span-event.ts";
import { buildGoFixture } from "../support/go.ts";

const base: ServerEvent = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", parentIsRemote: false, startNs: 1_000n, endNs: 2_000n,
  method: "GET", path: "/users/7", host: "example.com:8443", remoteAddr: "10.0.0.9:51000", route: { kind: "servemux", text: "GET /users/{id}", pathLength: 8 },
  protoMajor: 2, protoMinor: 0, status: 200, tls: true, userAgent: "curl/8", abandoned: false,
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

describe("a handler that did not return", () => {
  const panic = { type: "runtime.boundsError", message: "runtime error: index out of range [5] with length 3", timeUnixNs: 1_500n };

  test("a panic: ERROR with its message, error.type, and an exception event at the panic's time", () => {
    const r = toSpanRecord({ ...base, protoMajor: 1, protoMinor: 1, status: 0, abandoned: true, panic });
    expect(r.status).toEqual({ code: SpanStatusCode.ERROR, message: "panic: runtime error: index out of range [5] with length 3" });
    expect(r.attributes["error.type"]).toBe("runtime.boundsError");
    expect(r.attributes).not.toHaveProperty("http.response.status_code");
    expect(r.events).toEqual([{
      name: "exception", timeUnixNs: 1_500n,
      attributes: { "exception.type": "runtime.boundsError", "exception.message": "runtime error: index out of range [5] with length 3" },
    }]);
  });
  test("a panic after the handler wrote its header keeps that status; one of unknown text is named by its type", () => {
    const r = toSpanRecord({ ...base, status: 202, panic: { type: "*main.custom", timeUnixNs: 1_500n } });
    expect(r.attributes["http.response.status_code"]).toBe(202);
    expect(r.status).toEqual({ code: SpanStatusCode.ERROR, message: "panic: *main.custom" });
    expect(r.events?.[0]?.attributes).toEqual({ "exception.type": "*main.custom" });
  });
  test("hijacked (HTTP/1, no panic): no status code is made up, and it is no error", () => {
    const r = toSpanRecord({ ...base, protoMajor: 1, protoMinor: 1, status: 0, abandoned: true });
    expect(r.attributes).not.toHaveProperty("http.response.status_code");
    expect(r.status.code).toBe(SpanStatusCode.UNSET);
    expect(r.events).toBeUndefined();
    expect(r.attributes).not.toHaveProperty("error.type");
  });
});

/** whether fn's code has a CALL rel32 to target (amd64) */
function calls(elf: ElfFile, fn: GoFunction, target: GoFunction): boolean {
  const code = elf.bytesAt(fn.entry, fn.end - fn.entry)!;
  const dv = new DataView(code.buffer, code.byteOffset, code.byteLength);
  for (let i = 0; i + 5 <= code.length; i++) {
    if (code[i] === 0xe8 && fn.entry + i + 5 + dv.getInt32(i + 1, true) === target.entry) return true;
  }
  return false;
}

describe("where a request ends: the functions net/http runs after its handler", () => {
  // http-chain (go 1.19 module) for the older compilers, http2-server (Go 1.27's internal/http2) for newer; both have x/net
  const builds = [
    ["http-chain", "1.19.13", false], ["http-chain", "1.21.13", false], ["http-chain", "1.21.13", true],
    ["http2-server", "1.22.12", false], ["http2-server", "1.27.4", false], ["http2-server", "1.27.4", true],
  ] as const;
  test.each(builds)("%s built with Go %s (stripped: %p): the closures that recover a handler's panic, no RET probes", (fixture, goVersion, stripped) => {
    const path = buildGoFixture(fixture, { goVersion, stripped });
    const exe = GoExecutable.open(path);
    const elf = ElfFile.parse(new Uint8Array(readFileSync(path)), path);
    const fns = exe.functions();
    const gorecover = fns.get("runtime.gorecover")!;
    const runHandlers = ["net/http.(*http2serverConn).runHandler", "net/http/internal/http2.(*serverConn).runHandler", "golang.org/x/net/http2.(*serverConn).runHandler"]
      .filter((f) => fns.get(f));
    expect(runHandlers.length).toBe(2); // both fixtures have x/net's server besides net/http's own
    for (const rh of runHandlers) {
      const closures = fns.all().filter((f) => f.name.startsWith(`${rh}.func`));
      const chosen = streamDoneClosure(fns.all(), rh)!;
      // the chosen one is the closure that calls recover(), and the only one that does (the others are wrappers)
      expect(closures.filter((c) => calls(elf, c, gorecover)).map((c) => c.name)).toEqual([chosen.name]);
    }
    expect(calls(elf, fns.get("net/http.(*conn).serve.func1")!, gorecover)).toBe(true);

    const r = plan(exe);
    if ("skipped" in r) throw new Error(r.skipped);
    const { programs } = serverPrograms(exe, r.plan);
    expect(programs).not.toHaveProperty(PROGRAMS.return);
    expect(programs[PROGRAMS.streamDone]).toHaveLength(runHandlers.length);
    for (const p of [PROGRAMS.finish, PROGRAMS.connectionDone, PROGRAMS.panic, PROGRAMS.recovered]) expect(programs[p]).toHaveLength(1);
  });

  test("a binary without one of those functions (a future Go release): its spans end at ServeHTTP's RETs, and that is said", () => {
    const exe = GoExecutable.open(buildGoFixture("http2-server", { goVersion: "1.27.4" }));
    const r = plan(exe);
    if ("skipped" in r) throw new Error(r.skipped);
    const hidden = "net/http.(*response).finishRequest";
    const real = exe.functions();
    const without = {
      functions: () => ({
        source: real.source,
        get: (n: string) => (n === hidden ? undefined : real.get(n)),
        withPrefix: (p: string) => real.withPrefix(p).filter((f) => f.name !== hidden),
        all: () => real.all().filter((f) => f.name !== hidden),
      }),
      entrySite: (n: string) => (n === hidden ? undefined : exe.entrySite(n)),
    } as unknown as GoExecutable;
    const { programs, ends } = serverPrograms(without, r.plan);
    expect(Object.keys(programs).sort()).toEqual([PROGRAMS.entry, PROGRAMS.return, PROGRAMS.serveMux, PROGRAMS.xnetDone, PROGRAMS.xnetStream].sort());
    expect(programs[PROGRAMS.return]).toEqual(r.plan.sites.returns);
    expect(ends).toBe(`${r.plan.sites.returns.length} return site${r.plan.sites.returns.length === 1 ? "" : "s"} (not in the binary: ${hidden})`);
  });

  test.each([["1.19.13", false], ["1.22.12", true], ["1.27.4", true]] as const)(
    "Go %s: the request each ServeMux served is noted for its route: %p (Request.Pattern or pat, from Go 1.22)",
    (goVersion, noted) => {
      const exe = GoExecutable.open(buildGoFixture("http-chain", { goVersion }));
      const r = plan(exe);
      if ("skipped" in r) throw new Error(r.skipped);
      const { programs } = serverPrograms(exe, r.plan);
      expect(programs[PROGRAMS.serveMux]).toEqual(noted ? [exe.entrySite("net/http.(*ServeMux).ServeHTTP")!.offset] : undefined);
    },
  );

  test("a closure picked by size, whatever the compiler named the wrapper", () => {
    const f = (name: string, size: number): GoFunction => ({ name, entry: 0x1000, end: 0x1000 + size, fileOffset: 0x1000 });
    const rh = "net/http.(*http2serverConn).runHandler";
    const all = [f(`${rh}.func1`, 60), f(`${rh}.func2`, 900), f(`${rh}.deferwrap1`, 2000), f(`${rh}.func10x`, 5000), f("other.func3", 9000)];
    expect(streamDoneClosure(all, rh)?.name).toBe(`${rh}.func2`);
    expect(streamDoneClosure(all, "golang.org/x/net/http2.(*serverConn).runHandler")).toBeUndefined();
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
