/** gRPC span shapes (src/instrumentations/grpc/): names, attributes, status rules, targets and peers, as pure functions. */
import { describe, expect, test } from "bun:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { serverOfTarget, toSpanRecord as clientSpan, type ClientEvent } from "../../src/instrumentations/grpc/client-plan.ts";
import { codeName, methodAttributes, outcome } from "../../src/instrumentations/grpc/grpc.ts";
import { ipString } from "../../src/instrumentations/grpc/ip.ts";
import { toSpanRecord as serverSpan, type ServerEvent } from "../../src/instrumentations/grpc/server-plan.ts";

const ids = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", parentIsRemote: false, startNs: 1_000n, endNs: 2_000n };
const SCOPE = "go.opentelemetry.io/auto/google.golang.org/grpc";
const named = { "rpc.system.name": "grpc", "rpc.system": "grpc", "rpc.method": "helloworld.Greeter/SayHello", "rpc.service": "helloworld.Greeter" };

describe("server.address and server.port from the dial target (the conventions' examples)", () => {
  test.each([
    ["grpc.io:50051", { address: "grpc.io", port: 50051 }],
    ["dns://1.2.3.4/grpc.io:50051", { address: "grpc.io", port: 50051 }],
    ["dns:///grpc.io:50051", { address: "grpc.io", port: 50051 }],
    ["passthrough:///127.0.0.1:7000", { address: "127.0.0.1", port: 7000 }],
    ["[::1]:50051", { address: "::1", port: 50051 }],
    ["localhost", { address: "localhost" }],
    ["unix:///run/containerd/containerd.sock", { address: "/run/containerd/containerd.sock" }],
    ["unix:relative.sock", { address: "relative.sock" }],
    ["zk://zookeeper:2181/my-server", { address: "zk://zookeeper:2181/my-server" }],
    ["ipv4:198.51.100.123:50051,198.51.100.124:50051", { address: "ipv4:198.51.100.123:50051,198.51.100.124:50051" }],
  ])("%s", (target, want) => {
    expect(serverOfTarget(target)).toEqual(want);
  });
});

test("peer addresses as Go prints them", () => {
  expect(ipString(new Uint8Array([127, 0, 0, 1]))).toBe("127.0.0.1");
  expect(ipString(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]))).toBe("10.1.2.3");
  expect(ipString(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))).toBe("::1");
  expect(ipString(new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]))).toBe("2001:db8::1:0:0:1");
  expect(ipString(new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6]))).toBe("2001:db8:1:2:3:4:5:6");
});

describe("status codes", () => {
  test("names; a code outside gRPC's list is its number", () => {
    expect([0, 4, 5, 16].map(codeName)).toEqual(["OK", "DEADLINE_EXCEEDED", "NOT_FOUND", "UNAUTHENTICATED"]);
    expect(codeName(99)).toBe("99");
  });
  test("client: every code but OK is an error; server: only the server's failures", () => {
    const errors = (side: "client" | "server"): string[] =>
      Array.from({ length: 17 }, (_, c) => c).filter((c) => outcome(c, "", side).status.code === SpanStatusCode.ERROR).map(codeName);
    expect(errors("client")).toEqual(["CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
      "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
      "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]);
    expect(errors("server")).toEqual(["UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"]);
  });
  test("an error has error.type and the message as the status description; a non-error neither", () => {
    expect(outcome(5, "no such user", "client")).toEqual({
      attributes: { "rpc.status_code": "NOT_FOUND", "rpc.grpc.status_code": 5, "error.type": "NOT_FOUND" },
      status: { code: SpanStatusCode.ERROR, message: "no such user" },
    });
    expect(outcome(5, "no such user", "server")).toEqual({
      attributes: { "rpc.status_code": "NOT_FOUND", "rpc.grpc.status_code": 5 }, status: { code: SpanStatusCode.UNSET },
    });
  });
});

test("method names: full method, service; an unknown one is _OTHER", () => {
  expect(methodAttributes("/helloworld.Greeter/SayHello", true)).toEqual({ name: "helloworld.Greeter/SayHello", attributes: named });
  expect(methodAttributes("/pkg.v1.Svc/Do", false)).toEqual({
    name: "grpc", attributes: { "rpc.system.name": "grpc", "rpc.system": "grpc", "rpc.method": "_OTHER", "rpc.method_original": "pkg.v1.Svc/Do" },
  });
  expect(methodAttributes("garbage", true).attributes["rpc.method"]).toBe("_OTHER");
});

describe("client span", () => {
  const base: ClientEvent = { ...ids, method: "/helloworld.Greeter/SayHello", target: "localhost:50051", code: 0, message: "", errorText: "" };
  test("OK", () => {
    expect(clientSpan(base)).toEqual({
      traceId: ids.traceId, spanId: ids.spanId, startUnixNs: 1_000n, endUnixNs: 2_000n,
      name: "helloworld.Greeter/SayHello", kind: SpanKind.CLIENT, scope: SCOPE, status: { code: SpanStatusCode.UNSET },
      attributes: { ...named, "server.address": "localhost", "server.port": 50051, "rpc.status_code": "OK", "rpc.grpc.status_code": 0 },
    });
  });
  test("a status error; io.EOF is OK; another error is UNKNOWN with its Go type", () => {
    expect(clientSpan({ ...base, errorType: "*status.Error", code: 4, message: "context deadline exceeded" })).toMatchObject({
      status: { code: SpanStatusCode.ERROR, message: "context deadline exceeded" },
      attributes: { "rpc.status_code": "DEADLINE_EXCEEDED", "rpc.grpc.status_code": 4, "error.type": "DEADLINE_EXCEEDED" },
    });
    expect(clientSpan({ ...base, errorType: "*errors.errorString", errorText: "EOF", code: 77 }).attributes["rpc.status_code"]).toBe("OK");
    const other = clientSpan({ ...base, errorType: "*net.OpError", code: 12345 });
    expect(other.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(other.attributes).toMatchObject({ "rpc.status_code": "UNKNOWN", "rpc.grpc.status_code": 2, "error.type": "*net.OpError" });
  });
});

describe("server span", () => {
  const base: ServerEvent = { ...ids, parentSpanId: "a7c6422e4d5d34b7", parentIsRemote: true, method: "/helloworld.Greeter/SayHello", code: 0, message: "" };
  test("OK, with its remote parent and peer", () => {
    expect(serverSpan({ ...base, peer: { address: "10.0.0.2", port: 41000 } })).toEqual({
      traceId: ids.traceId, spanId: ids.spanId, parentSpanId: "a7c6422e4d5d34b7", parentIsRemote: true, startUnixNs: 1_000n, endUnixNs: 2_000n,
      name: "helloworld.Greeter/SayHello", kind: SpanKind.SERVER, scope: SCOPE, status: { code: SpanStatusCode.UNSET },
      attributes: { ...named, "network.peer.address": "10.0.0.2", "network.peer.port": 41000, "rpc.status_code": "OK", "rpc.grpc.status_code": 0 },
    });
  });
  test("a method the server does not have is _OTHER; an Unimplemented handler keeps its name", () => {
    const unknown = serverSpan({ ...base, code: 12, message: "unknown method SayHello for service helloworld.Greeter" });
    expect(unknown.name).toBe("grpc");
    expect(unknown.attributes).toMatchObject({ "rpc.method": "_OTHER", "rpc.method_original": "helloworld.Greeter/SayHello", "error.type": "UNIMPLEMENTED" });
    expect(serverSpan({ ...base, code: 12, message: "method SayHello not implemented" }).name).toBe("helloworld.Greeter/SayHello");
  });
  test("no status seen (the process exited): no status attributes", () => {
    const s = serverSpan({ ...base, code: undefined });
    expect(s.attributes).not.toHaveProperty("rpc.status_code");
    expect(s.status).toEqual({ code: SpanStatusCode.UNSET });
  });
});
