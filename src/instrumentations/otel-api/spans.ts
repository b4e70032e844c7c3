/**
 * A span the application made through the OpenTelemetry Go API, as go.opentelemetry.io/auto/sdk marshals it when
 * it ends (OTLP/JSON: one resourceSpans > scopeSpans > span), turned into a SpanRecord with the context the
 * kernel made for it (otel_api.bpf.c): gotel's trace and span IDs and parent, everything else as the application
 * gave it. Times are the application's own clock (time.Now, wall clock), like an SDK's.
 *
 * The application's SDK applies its limits before marshalling (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT and the others,
 * read from the target's environment, 128 by default; value length unlimited) and says what it dropped; gotel
 * keeps those counts. Attribute values become OpenTelemetry JS attributes: an int64 beyond 2^53 loses precision,
 * a float64 with an integral value is exported as an integer, a byte slice as its base64 text.
 */
import { SpanKind, SpanStatusCode, type AttributeValue, type Attributes } from "@opentelemetry/api";
import type { Losses } from "../../probes/instrumentation.ts";
import { UnreadableSpanError } from "../../probes/span-probe.ts";
import type { SpanRecord, SpanRecordEvent, SpanRecordLink } from "../../traces/span.ts";

/** Its own reasons for losing spans (otel_api.bpf.c's enum otel_api_counter), in the words of the `stopped` line;
 * a span whose JSON does not parse here is counted with those too large to send. */
export const OTEL_API_LOSSES = {
  enum: "otel_api_counter",
  reasons: {
    OTEL_API_COUNTER_TOO_LARGE: "application span too large or unreadable",
    OTEL_API_COUNTER_SWITCHED_OFF: "application span before its API was switched on",
  },
} as const satisfies Losses;
const UNREADABLE = OTEL_API_LOSSES.reasons.OTEL_API_COUNTER_TOO_LARGE;

/** The IDs, parent and times the kernel gave the span (span-event.ts's SpanEventContext, times wall-clock). */
export interface KernelContext {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  parentIsRemote: boolean;
  traceState?: string;
}


interface JsonValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number | string;
  boolValue?: boolean;
  bytesValue?: string;
  arrayValue?: { values?: JsonValue[] };
  kvlistValue?: { values?: JsonAttr[] };
}
interface JsonAttr { key: string; value?: JsonValue }
interface JsonEvent { timeUnixNano?: string; name?: string; attributes?: JsonAttr[]; droppedAttributesCount?: number }
interface JsonLink { traceId?: string; spanId?: string; traceState?: string; attributes?: JsonAttr[]; droppedAttributesCount?: number; flags?: number }
interface JsonSpan {
  name?: string;
  kind?: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: JsonAttr[];
  droppedAttributesCount?: number;
  events?: JsonEvent[];
  droppedEventsCount?: number;
  links?: JsonLink[];
  droppedLinksCount?: number;
  status?: { code?: number; message?: string };
}
interface JsonTraces {
  resourceSpans?: { scopeSpans?: { scope?: { name?: string; version?: string }; schemaUrl?: string; spans?: JsonSpan[] }[] }[];
}

/** OTLP's span kinds (1 internal … 5 consumer; 0 unspecified, which the SDK treats as internal) */
export const KINDS: readonly SpanKind[] = [SpanKind.INTERNAL, SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER];
const STATUS: readonly SpanStatusCode[] = [SpanStatusCode.UNSET, SpanStatusCode.OK, SpanStatusCode.ERROR];
const HEX_ID = /^[0-9a-f]+$/;

/** JSON numbers beyond 2^53 lose digits in JSON.parse: the times (ns since the epoch) are quoted first. */
const UNIX_NANO = /"(startTimeUnixNano|endTimeUnixNano|timeUnixNano)":(\d+)/g;

export function parseSpanJson(json: string, k: KernelContext): SpanRecord {
  let traces: JsonTraces;
  try {
    traces = JSON.parse(json.replace(UNIX_NANO, '"$1":"$2"')) as JsonTraces;
  } catch (e) {
    throw new UnreadableSpanError(`a span's JSON did not parse: ${(e as Error).message}`, UNREADABLE);
  }
  const scopeSpans = traces.resourceSpans?.[0]?.scopeSpans?.[0];
  const span = scopeSpans?.spans?.[0];
  if (!span || typeof span.name !== "string") throw new UnreadableSpanError("a span's JSON had no span", UNREADABLE);
  const start = unixNs(span.startTimeUnixNano);
  const code = STATUS[span.status?.code ?? 0] ?? SpanStatusCode.UNSET;
  const record: SpanRecord = {
    traceId: k.traceId,
    spanId: k.spanId,
    parentSpanId: k.parentSpanId,
    parentIsRemote: k.parentSpanId ? k.parentIsRemote : undefined,
    traceState: k.traceState,
    name: span.name,
    kind: KINDS[span.kind ?? 0] ?? SpanKind.INTERNAL,
    startUnixNs: start,
    endUnixNs: unixNs(span.endTimeUnixNano, start),
    attributes: attributesOf(span.attributes),
    // the API keeps a description only with ERROR
    status: code === SpanStatusCode.ERROR && span.status?.message ? { code, message: span.status.message } : { code },
    scope: scopeSpans?.scope?.name ?? "",
    scopeVersion: scopeSpans?.scope?.version ?? "",
    scopeSchemaUrl: scopeSpans?.schemaUrl ?? "",
  };
  if (span.events?.length) record.events = span.events.map(eventOf);
  if (span.links?.length) record.links = span.links.filter((l) => validId(l.traceId, 32) && validId(l.spanId, 16)).map(linkOf);
  const dropped = { attributes: span.droppedAttributesCount ?? 0, events: span.droppedEventsCount ?? 0, links: span.droppedLinksCount ?? 0 };
  if (dropped.attributes || dropped.events || dropped.links) record.dropped = dropped;
  return record;
}

function unixNs(v: string | undefined, fallback = 0n): bigint {
  return v && /^\d+$/.test(v) ? BigInt(v) : fallback;
}

function validId(id: string | undefined, length: number): id is string {
  return id !== undefined && id.length === length && HEX_ID.test(id) && !/^0+$/.test(id);
}

function eventOf(e: JsonEvent): SpanRecordEvent {
  return { name: e.name ?? "", timeUnixNs: unixNs(e.timeUnixNano), attributes: attributesOf(e.attributes), droppedAttributes: e.droppedAttributesCount ?? 0 };
}

function linkOf(l: JsonLink): SpanRecordLink {
  return {
    traceId: l.traceId!,
    spanId: l.spanId!,
    traceState: l.traceState || undefined,
    sampled: ((l.flags ?? 0) & 1) === 1,
    attributes: attributesOf(l.attributes),
    droppedAttributes: l.droppedAttributesCount ?? 0,
  };
}

function attributesOf(attrs: JsonAttr[] | undefined): Attributes {
  const out: Attributes = {};
  for (const a of attrs ?? []) {
    const v = a.value === undefined ? undefined : valueOf(a.value);
    if (v !== undefined) out[a.key] = v;
  }
  return out;
}

type Scalar = string | number | boolean;

function scalarOf(v: JsonValue): Scalar | undefined {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue); // "NaN", "Infinity" are strings in OTLP/JSON
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (v.kvlistValue !== undefined) return JSON.stringify(Object.fromEntries((v.kvlistValue.values ?? []).map((a) => [a.key, a.value && valueOf(a.value)])));
  return undefined;
}

function valueOf(v: JsonValue): AttributeValue | undefined {
  if (v.arrayValue === undefined) return scalarOf(v);
  // the API's slices are of one type; OpenTelemetry JS arrays are too
  const values = (v.arrayValue.values ?? []).map(scalarOf).filter((x): x is Scalar => x !== undefined);
  return values as string[] | number[] | boolean[];
}
