/**
 * A span as go.opentelemetry.io/auto/sdk marshals it (OTLP/JSON) with the kernel's context: what parseSpanJson
 * keeps, what it refuses. The real marshalling is exercised end to end in test/e2e/otel-api.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { parseSpanJson, type KernelContext } from "../../src/instrumentations/otel-api/spans.ts";
import { UnreadableSpanError } from "../../src/probes/span-probe.ts";

const KERNEL: KernelContext = { traceId: "11".repeat(16), spanId: "22".repeat(8), parentSpanId: "33".repeat(8), parentIsRemote: false };

/** the shape auto/sdk's span.end marshals: times as JSON numbers, int64 values as strings */
function traces(span: string, scope = `{"name":"app/db","version":"v2.0.0"}`, schema = `,"schemaUrl":"https://opentelemetry.io/schemas/1.26.0"`): string {
  return `{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":${scope},"spans":[${span}]${schema}}]}]}`;
}

describe("parseSpanJson", () => {
  test("everything the API gives, under the kernel's IDs and parent; times to the nanosecond", () => {
    const r = parseSpanJson(traces(`{"traceId":"00000000000000000000000000000000","spanId":"0000000000000000","name":"query users",
      "kind":3,"startTimeUnixNano":1796553627992334123,"endTimeUnixNano":1796553627993480087,
      "attributes":[{"key":"b","value":{"boolValue":true}},{"key":"i","value":{"intValue":"-9007199254740993"}},{"key":"f","value":{"doubleValue":2.5}},
        {"key":"s","value":{"stringValue":"x"}},{"key":"ss","value":{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}},
        {"key":"is","value":{"arrayValue":{"values":[{"intValue":"1"},{"intValue":"2"}]}}}],
      "droppedAttributesCount":2,
      "events":[{"timeUnixNano":1796553627992348337,"name":"exception","attributes":[{"key":"exception.message","value":{"stringValue":"boom"}}]}],
      "links":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","traceState":"k=v","flags":1,"attributes":[{"key":"why","value":{"stringValue":"batch"}}]},
        {"traceId":"00000000000000000000000000000000","spanId":"0000000000000000"}],
      "status":{"message":"no rows","code":2}}`), KERNEL);
    expect(r).toEqual({
      traceId: KERNEL.traceId, spanId: KERNEL.spanId, parentSpanId: KERNEL.parentSpanId, parentIsRemote: false, traceState: undefined,
      name: "query users", kind: SpanKind.CLIENT,
      startUnixNs: 1796553627992334123n, endUnixNs: 1796553627993480087n,
      attributes: { b: true, i: -9007199254740992, f: 2.5, s: "x", ss: ["a", "b"], is: [1, 2] },
      status: { code: SpanStatusCode.ERROR, message: "no rows" },
      events: [{ name: "exception", timeUnixNs: 1796553627992348337n, attributes: { "exception.message": "boom" }, droppedAttributes: 0 }],
      // a link to an invalid context is no link
      links: [{ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceState: "k=v", sampled: true, attributes: { why: "batch" }, droppedAttributes: 0 }],
      dropped: { attributes: 2, events: 0, links: 0 },
      scope: "app/db", scopeVersion: "v2.0.0", scopeSchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
    });
  });

  test("defaults: no kind is INTERNAL, no status is UNSET, OK keeps no description, no end is the start", () => {
    const r = parseSpanJson(traces(`{"name":"a","startTimeUnixNano":5,"status":{"code":1,"message":"ignored"}}`, `{"name":"t"}`, ""), { ...KERNEL, parentSpanId: undefined });
    expect([r.kind, r.status, r.endUnixNs, r.parentSpanId, r.parentIsRemote, r.scopeVersion, r.scopeSchemaUrl]).toEqual([SpanKind.INTERNAL, { code: SpanStatusCode.OK }, 5n, undefined, undefined, "", ""]);
    expect(r.events).toBeUndefined();
    expect(r.dropped).toBeUndefined();
  });

  test("what is not a span is refused with a reason, never half-read", () => {
    expect(() => parseSpanJson(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"na`, KERNEL)).toThrow(UnreadableSpanError);
    expect(() => parseSpanJson(`{"resourceSpans":[]}`, KERNEL)).toThrow("had no span");
  });
});
