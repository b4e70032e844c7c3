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
import { SCHEMA_URL } from "./conventions.ts";

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
  links?: SpanRecordLink[];
  /** what the application's SDK limits dropped (spans made through the OpenTelemetry API) */
  dropped?: { attributes: number; events: number; links: number };
  /** instrumentation scope, upstream's names: go.opentelemetry.io/auto/<package> */
  scope: string;
  /** the scope's version and schema URL when not gotel's own (a tracer the application named) */
  scopeVersion?: string;
  scopeSchemaUrl?: string;
}

export interface SpanRecordLink {
  traceId: string;
  spanId: string;
  traceState?: string;
  sampled: boolean;
  attributes: Attributes;
  droppedAttributes: number;
}

export interface SpanRecordEvent {
  name: string;
  /** wall-clock ns since the epoch */
  timeUnixNs: bigint;
  attributes: Attributes;
  droppedAttributes?: number;
}

const NS_PER_S = 1_000_000_000n;
/** a whole second (ns since the epoch) that recent times are counted from, so that their offset is a safe integer */
let baseNs = 0n;
let baseSeconds = 0;

/**
 * [seconds, nanoseconds] of ns since the epoch. Two BigInt divisions per time were a tenth of a span's decoding;
 * this subtracts a whole-second base and does the rest in doubles, exact below 2^53 ns (104 days) from the base.
 */
export function hrTime(ns: bigint): HrTime {
  let d = Number(ns - baseNs);
  if (!(d >= 0 && d < 2 ** 52)) {
    baseSeconds = Number(ns / NS_PER_S);
    baseNs = BigInt(baseSeconds) * NS_PER_S;
    d = Number(ns - baseNs);
  }
  const s = Math.floor(d / 1e9);
  return [baseSeconds + s, d - s * 1e9];
}

/** end - start of two HrTimes, end >= start */
function hrDuration(start: HrTime, end: HrTime): HrTime {
  const ns = end[1] - start[1];
  return ns >= 0 ? [end[0] - start[0], ns] : [end[0] - start[0] - 1, ns + 1e9];
}

/** shared by every span that has none: the SDK's processors and exporters only read them */
const NO_LINKS: ReadableSpan["links"] = [] as ReadableSpan["links"];
const NO_EVENTS: ReadableSpan["events"] = [] as ReadableSpan["events"];
/** one scope object per scope: the exporter groups spans by scope object */
const scopes = new Map<string, ReadableSpan["instrumentationScope"]>();

function scopeOf(r: SpanRecord): ReadableSpan["instrumentationScope"] {
  const own = r.scopeVersion === undefined && r.scopeSchemaUrl === undefined;
  const key = own ? r.scope : `${r.scope}\0${r.scopeVersion ?? ""}\0${r.scopeSchemaUrl ?? ""}`;
  let scope = scopes.get(key);
  if (!scope) {
    scope = own
      ? { name: r.scope, version: GOTEL_VERSION, schemaUrl: SCHEMA_URL }
      : { name: r.scope, ...(r.scopeVersion ? { version: r.scopeVersion } : {}), ...(r.scopeSchemaUrl ? { schemaUrl: r.scopeSchemaUrl } : {}) };
    scopes.set(key, Object.freeze(scope));
  }
  return scope;
}

function linksOf(links: SpanRecordLink[]): ReadableSpan["links"] {
  return links.map((l) => ({
    context: { traceId: l.traceId, spanId: l.spanId, traceFlags: l.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true, traceState: l.traceState ? new TraceState(l.traceState) : undefined },
    attributes: l.attributes,
    droppedAttributesCount: l.droppedAttributes,
  }));
}

export function toReadableSpan(r: SpanRecord, resource: Resource): ReadableSpan {
  // only sampled spans reach user space
  const traceState = r.traceState ? new TraceState(r.traceState) : undefined;
  const context: SpanContext = { traceId: r.traceId, spanId: r.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false, traceState };
  const startTime = hrTime(r.startUnixNs);
  const endTime = r.endUnixNs >= r.startUnixNs ? hrTime(r.endUnixNs) : startTime;
  return {
    name: r.name,
    kind: r.kind,
    spanContext: () => context,
    parentSpanContext: r.parentSpanId
      ? { traceId: r.traceId, spanId: r.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: r.parentIsRemote === true, traceState }
      : undefined,
    startTime,
    endTime,
    duration: hrDuration(startTime, endTime),
    status: r.status,
    attributes: r.attributes,
    links: r.links?.length ? linksOf(r.links) : NO_LINKS,
    events: r.events?.length ? r.events.map((e) => ({ name: e.name, time: hrTime(e.timeUnixNs), attributes: e.attributes, droppedAttributesCount: e.droppedAttributes ?? 0 })) : NO_EVENTS,
    ended: true,
    resource,
    instrumentationScope: scopeOf(r),
    droppedAttributesCount: r.dropped?.attributes ?? 0,
    droppedEventsCount: r.dropped?.events ?? 0,
    droppedLinksCount: r.dropped?.links ?? 0,
  };
}

export { SpanKind, SpanStatusCode };
