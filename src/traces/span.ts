/**
 * A finished span as the probes describe it, and its conversion to the SDK's ReadableSpan. IDs and times come
 * from the kernel (DESIGN.md decision 3), so nothing here generates or samples: it only shapes the data for
 * the BatchSpanProcessor.
 */
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type SpanContext } from "@opentelemetry/api";
import { TraceState } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { GOTEL_VERSION } from "../version.ts";

export interface SpanRecord {
  /** 32 lowercase hex digits */
  traceId: string;
  /** 16 lowercase hex digits */
  spanId: string;
  parentSpanId?: string;
  /** the parent came from another process (an incoming traceparent) */
  parentIsRemote?: boolean;
  traceState?: string;
  name: string;
  kind: SpanKind;
  /** wall-clock ns since the epoch */
  startUnixNs: bigint;
  endUnixNs: bigint;
  attributes: Attributes;
  status: { code: SpanStatusCode; message?: string };
  events?: SpanRecordEvent[];
  /** instrumentation scope, upstream's names: go.opentelemetry.io/auto/<package> */
  scope: string;
}

export interface SpanRecordEvent {
  name: string;
  /** wall-clock ns since the epoch */
  timeUnixNs: bigint;
  attributes: Attributes;
}

export function hrTime(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

export function toReadableSpan(r: SpanRecord, resource: Resource): ReadableSpan {
  // only sampled spans reach user space
  const traceState = r.traceState ? new TraceState(r.traceState) : undefined;
  const context: SpanContext = { traceId: r.traceId, spanId: r.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false, ...(traceState ? { traceState } : {}) };
  const end = r.endUnixNs >= r.startUnixNs ? r.endUnixNs : r.startUnixNs;
  return {
    name: r.name,
    kind: r.kind,
    spanContext: () => context,
    parentSpanContext: r.parentSpanId
      ? { traceId: r.traceId, spanId: r.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: r.parentIsRemote === true, ...(traceState ? { traceState } : {}) }
      : undefined,
    startTime: hrTime(r.startUnixNs),
    endTime: hrTime(end),
    duration: hrTime(end - r.startUnixNs),
    status: r.status,
    attributes: r.attributes,
    links: [],
    events: (r.events ?? []).map((e) => ({ name: e.name, time: hrTime(e.timeUnixNs), attributes: e.attributes, droppedAttributesCount: 0 })),
    ended: true,
    resource,
    instrumentationScope: { name: r.scope, version: GOTEL_VERSION },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

export { SpanKind, SpanStatusCode };
