/** The HTTP client span's shape (src/instrumentations/nethttp-client/plan.ts) and the sampling constants, as pure functions. */
import { describe, expect, test } from "bun:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { fullUrl, toSpanRecord, type ClientEvent } from "../../src/instrumentations/nethttp-client/plan.ts";
import { ratioBound, ratioSampled, traceConstants } from "../../src/traces/sampling.ts";

const base: ClientEvent = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", parentSpanId: "a7c6422e4d5d34b7", parentIsRemote: false,
  startNs: 1_000n, endNs: 2_000n,
  method: "GET", scheme: "https", host: "api.example.com", path: "/v1/items", pathKind: "path", query: "", hasUser: false,
  fragment: "", rawFragment: "", status: 200, protoMajor: 1, protoMinor: 1,
};

describe("url.full", () => {
  test("as URL.String() writes it, with the default port left out", () => {
    expect(fullUrl(base)).toBe("https://api.example.com/v1/items");
    expect(fullUrl({ ...base, host: "10.0.0.1:8080", query: "a=1&b=two" })).toBe("https://10.0.0.1:8080/v1/items?a=1&b=two");
  });
  test("credentials are redacted, never read", () => {
    expect(fullUrl({ ...base, hasUser: true })).toBe("https://REDACTED:REDACTED@api.example.com/v1/items");
  });
  test("signed-URL query values are redacted, other parameters kept", () => {
    expect(fullUrl({ ...base, query: "X-Goog-Signature=abc&page=2&sig=s3cr3t&AWSAccessKeyId=AK&Signature=zz" }))
      .toBe("https://api.example.com/v1/items?X-Goog-Signature=REDACTED&page=2&sig=REDACTED&AWSAccessKeyId=REDACTED&Signature=REDACTED");
  });
  test("a path is escaped like Go's EscapedPath; a RawPath is used as it is; an opaque URL keeps its form", () => {
    expect(fullUrl({ ...base, path: "/a b/ü" })).toBe("https://api.example.com/a%20b/%C3%BC");
    expect(fullUrl({ ...base, path: "/a%2Fb", pathKind: "raw" })).toBe("https://api.example.com/a%2Fb");
    expect(fullUrl({ ...base, scheme: "mailto", host: "", path: "x@example.com", pathKind: "opaque" })).toBe("mailto:x@example.com");
  });
  test("the fragment is kept, as Go's URL.String() printed it for the same URLs (EscapedFragment)", () => {
    expect(fullUrl({ ...base, query: "q=1", fragment: "sec 2/ü'!()*$&+,;=:@?~[]\"#%" }))
      .toBe("https://api.example.com/v1/items?q=1#sec%202/%C3%BC%27!()*$&+,;=:@?~%5B%5D%22%23%25");
    // parsed from "#a%2Fb": RawFragment is a valid encoding of Fragment, so it is kept
    expect(fullUrl({ ...base, fragment: "a/b", rawFragment: "a%2Fb" })).toBe("https://api.example.com/v1/items#a%2Fb");
    // parsed from "#part 2": RawFragment is set but not a valid encoding
    expect(fullUrl({ ...base, fragment: "part 2", rawFragment: "part 2" })).toBe("https://api.example.com/v1/items#part%202");
    expect(fullUrl({ ...base, scheme: "mailto", host: "", path: "x@example.com", pathKind: "opaque", fragment: "top" })).toBe("mailto:x@example.com#top");
  });
});

describe("client span", () => {
  test("kind, name, attributes and parent", () => {
    expect(toSpanRecord(base)).toEqual({
      traceId: base.traceId, spanId: base.spanId, parentSpanId: "a7c6422e4d5d34b7", parentIsRemote: false,
      name: "GET", kind: SpanKind.CLIENT, startUnixNs: 1_000n, endUnixNs: 2_000n,
      attributes: {
        "http.request.method": "GET", "url.full": "https://api.example.com/v1/items", "url.path": "/v1/items",
        "server.address": "api.example.com", "server.port": 443, "http.response.status_code": 200, "network.protocol.version": "1.1",
      },
      status: { code: SpanStatusCode.UNSET }, scope: "go.opentelemetry.io/auto/net/http",
    });
  });
  test("a root span has no parent; a tracestate is kept", () => {
    const { parentSpanId: _, ...root } = base;
    const r = toSpanRecord({ ...root, traceState: "vendor=abc" });
    expect(r.parentSpanId).toBeUndefined();
    expect(r.traceState).toBe("vendor=abc");
  });
  test("status: ERROR for >= 400 (error.type = the code) and for a transport error (error.type = its Go type)", () => {
    expect(toSpanRecord({ ...base, status: 404 })).toMatchObject({ status: { code: SpanStatusCode.ERROR }, attributes: { "error.type": "404" } });
    expect(toSpanRecord({ ...base, status: 399 }).status.code).toBe(SpanStatusCode.UNSET);
    const failed = toSpanRecord({ ...base, status: 0, errorType: "*net.OpError" });
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed.attributes["error.type"]).toBe("*net.OpError");
    expect(failed.attributes["http.response.status_code"]).toBeUndefined();
  });
  test("an unknown method is _OTHER with the original kept, and the span is named HTTP", () => {
    const r = toSpanRecord({ ...base, method: "PURGE", scheme: "http", host: "cache:6081" });
    expect(r.name).toBe("HTTP");
    expect(r.attributes).toMatchObject({ "http.request.method": "_OTHER", "http.request.method_original": "PURGE", "server.port": 6081 });
  });
});

describe("sampling constants", () => {
  test("ratio bounds follow the Go SDK (ratio * 2^63)", () => {
    expect(ratioBound(0)).toBe(0n);
    expect(ratioBound(0.5)).toBe(1n << 62n);
    expect(ratioBound(1)).toBe(1n << 63n);
    // trace_id[8:16] big-endian, shifted right by one, below the bound
    expect(ratioSampled("00000000000000003fffffffffffffff", 0.25)).toBe(true);
    expect(ratioSampled("00000000000000004000000000000000", 0.25)).toBe(false);
  });
  test("what each sampler and propagation setting writes into the objects", () => {
    const on = { ratio: 1, tracecontext: true, injectAllowed: true };
    expect(traceConstants({ ...on, sampler: "parentbased_always_on" })).toEqual({
      gotel_sampler_root: 0, gotel_sampler_parent_based: 1, gotel_sampler_ratio_bound: 1n << 63n, gotel_propagation: 3,
    });
    expect(traceConstants({ ...on, sampler: "always_off" })).toMatchObject({ gotel_sampler_root: 1, gotel_sampler_parent_based: 0 });
    expect(traceConstants({ ...on, sampler: "traceidratio", ratio: 0.25 })).toMatchObject({ gotel_sampler_root: 2, gotel_sampler_ratio_bound: 1n << 61n });
    expect(traceConstants({ ...on, sampler: "parentbased_traceidratio", ratio: 1 })).toMatchObject({ gotel_sampler_root: 0, gotel_sampler_parent_based: 1 });
    expect(traceConstants({ ...on, sampler: "parentbased_traceidratio", ratio: 0.25 })).toMatchObject({
      gotel_sampler_root: 2, gotel_sampler_parent_based: 1, gotel_sampler_ratio_bound: 1n << 61n,
    });
    expect(traceConstants({ ...on, sampler: "parentbased_always_off" })).toMatchObject({ gotel_sampler_root: 1, gotel_sampler_parent_based: 1 });
    expect(traceConstants({ ...on, sampler: "always_on" })).toMatchObject({ gotel_sampler_root: 0, gotel_sampler_parent_based: 0 });
    expect(traceConstants({ ...on, sampler: "always_on", injectAllowed: false }).gotel_propagation).toBe(1);
    expect(traceConstants({ ...on, sampler: "always_on", tracecontext: false }).gotel_propagation).toBe(0);
  });
});
