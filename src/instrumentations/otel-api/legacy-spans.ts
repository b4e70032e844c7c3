/**
 * Spans of go.opentelemetry.io/otel's global tracer before v1.33.0, put together from the calls the kernel saw
 * (global_tracer_legacy.h): START (name, options, attributes, links), then any SetAttributes, SetName, SetStatus,
 * AddEvent and RecordError, then End. The application's SDK would apply its limits; here they are applied as the
 * SDK applies them, with its defaults (128 attributes, events, links and attributes per event or link; later
 * values of a key replace earlier ones; status: Ok over Error over Unset, a description only with Error), plus
 * what the kernel reads of one call (LEGACY_* in the header): 16 attributes, keys of 64 bytes, string values of
 * 192 bytes, slices of 192 bytes (strings: 6 of 31 bytes), 4 links, 8 options, names of 128 bytes. What a call
 * had beyond that is counted as dropped, like the SDK's limits.
 *
 * The tracer's name, version and schema URL are read from the target's memory when its first span starts:
 * tracers live as long as the global provider, which keeps them.
 */
import { SpanStatusCode, type AttributeValue, type Attributes } from "@opentelemetry/api";
import type { BpfObject } from "../../ebpf/object.ts";
import { StructView } from "../../ebpf/struct-view.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { decodeUtf8, hexBytes, itabTypeName } from "../../probes/span-event.ts";
import type { SpanRecord, SpanRecordEvent, SpanRecordLink } from "../../traces/span.ts";
import type { ClosureKind, LegacyPlan } from "./legacy-plan.ts";
import { KINDS } from "./spans.ts";

/** enum otel_api_legacy_call */
export const LEGACY_CALL = { start: 16, attributes: 17, name: 18, status: 19, event: 20, error: 21, end: 22 } as const;
/** the SDK's default limits (sdk/trace's SpanLimits) */
const LIMIT = 128;
/** spans started and not ended that are kept; beyond, the oldest is forgotten. The kernel keeps fewer (its LRU
 * map holds 8,192 boxes: 4,096 open spans) and forgets the oldest first: an End it no longer knows sends nothing,
 * as an SDK exports no span that never ends. */
const OPEN_MAX = 10_000;
/** codes.Code -> OpenTelemetry JS, in the SDK's order of precedence (Unset < Error < Ok) */
const STATUS: readonly SpanStatusCode[] = [SpanStatusCode.UNSET, SpanStatusCode.ERROR, SpanStatusCode.OK];
const PRECEDENCE = [0, 1, 2];
/** the error types whose first string field is their Error() text */
const TEXT_ERRORS = new Set(["*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors"]);

/** A process's code addresses (load bias added) that tell the options apart, from its LegacyPlan. */
export interface LegacyProcess {
  timestamp: Set<number>;
  closures: Map<number, ClosureKind>;
  /** where internal/global.tracer's name is */
  tracerNameOffset: number;
}

export function legacyProcess(plan: LegacyPlan, bias: number): LegacyProcess {
  return {
    timestamp: new Set(plan.timestamp.map((a) => a + bias)),
    closures: new Map(plan.closures.map((c) => [c.entry + bias, c.kind])),
    tracerNameOffset: plan.embedded,
  };
}

interface Scope { name: string; version: string; schemaUrl: string }

interface OpenSpan {
  record: SpanRecord;
  /** the record's attributes, and how many */
  attributes: Attributes;
  count: number;
  droppedAttributes: number;
  statusRank: number;
  events: SpanRecordEvent[];
  droppedEvents: number;
}

interface Kv { group: number; key: string; value: AttributeValue | undefined }

/** Where things are in an otel_api_call_event, and how many of each it holds: from its BTF. */
interface Layout {
  f: Record<"kind" | "nameLen" | "nOpts" | "nLinks" | "nSources" | "nKv" | "tracer" | "value" | "traceId" | "spanId" | "parent" | "traceStateLen" | "traceState" | "name" | "opts" | "links" | "sources" | "kv" | "start", number>;
  max: { name: number; opts: number; links: number; sources: number; kv: number; traceState: number };
  opt: { size: number; method: number; data: number; dataSize: number };
  link: { size: number; traceId: number; spanId: number; flags: number };
  source: { size: number; group: number; len: number };
  kv: { size: number; type: number; numeric: number; group: number; keyLen: number; valueLen: number; key: number; keyMax: number; value: number; valueMax: number; string: number };
}

function layoutOf(obj: BpfObject): Layout {
  const btf = obj.btf();
  const s = new StructView(btf.structLayout("otel_api_call_event"));
  const o = new StructView(btf.structLayout("otel_api_option"));
  const l = new StructView(btf.structLayout("otel_api_link"));
  const src = new StructView(btf.structLayout("otel_api_source"));
  const k = new StructView(btf.structLayout("otel_api_kv"));
  const size = (v: StructView, field: string): number => v.layout.fields.get(field)!.size;
  return {
    f: {
      kind: s.offset("kind", 4), nameLen: s.offset("name_len", 4), nOpts: s.offset("n_opts", 4), nLinks: s.offset("n_links", 4),
      nSources: s.offset("n_sources", 4), nKv: s.offset("n_kv", 4), tracer: s.offset("tracer", 8), value: s.offset("value", 8),
      traceId: s.offset("trace_id", 16), spanId: s.offset("span_id", 8), parent: s.offset("parent_span_id", 8),
      traceStateLen: s.offset("tracestate_len", 4), traceState: s.offset("tracestate"), name: s.offset("name"), opts: s.offset("opts"), links: s.offset("links"), sources: s.offset("sources"), kv: s.offset("kv"), start: s.offset("hdr.start_ns", 8),
    },
    max: {
      name: size(s, "name"), opts: size(s, "opts") / o.layout.size, links: size(s, "links") / l.layout.size,
      sources: size(s, "sources") / src.layout.size, kv: size(s, "kv") / k.layout.size, traceState: size(s, "tracestate"),
    },
    opt: { size: o.layout.size, method: o.offset("method", 8), data: o.offset("data"), dataSize: size(o, "data") },
    link: { size: l.layout.size, traceId: l.offset("trace_id", 16), spanId: l.offset("span_id", 8), flags: l.offset("flags", 1) },
    source: { size: src.layout.size, group: src.offset("group", 4), len: src.offset("len", 4) },
    kv: {
      size: k.layout.size, type: k.offset("type", 8), numeric: k.offset("numeric", 8), group: k.offset("group", 4), keyLen: k.offset("key_len", 4),
      valueLen: k.offset("value_len", 4), key: k.offset("key"), keyMax: size(k, "key"), value: k.offset("value"), valueMax: size(k, "value"),
      string: Number(btf.enumValues("otel_api_legacy_layout").get("LEGACY_LAYOUT_STRING")),
    },
  };
}

/** The IDs the kernel made for the span, its parent's and its trace's tracestate (START). */
interface Ids { traceId: string; spanId: string; parentSpanId: string | undefined; traceState: string | undefined }

export class LegacySpans {
  private readonly l: Layout;
  /** per process: its addresses, its spans open by span ID, its tracers' scopes by address */
  private readonly processes = new Map<number, { p: LegacyProcess; open: Map<bigint, OpenSpan>; scopes: Map<bigint, Scope> }>();

  constructor(obj: BpfObject, private readonly memory: (tgid: number) => TargetMemory | undefined) {
    this.l = layoutOf(obj);
  }

  attach(tgid: number, p: LegacyProcess): void {
    this.processes.set(tgid, { p, open: new Map(), scopes: new Map() });
  }

  forget(tgid: number): void {
    this.processes.delete(tgid);
  }

  /** One call; the span when it was End. */
  record(v: DataView, tgid: number, toUnixNs: (kernelNs: bigint) => bigint): SpanRecord | undefined {
    const process = this.processes.get(tgid);
    if (!process) return undefined;
    const { p, open } = process;
    const kind = v.getUint32(this.l.f.kind, true);
    const key = v.getBigUint64(this.l.f.spanId, true);
    const at = toUnixNs(v.getBigUint64(this.l.f.start, true));
    if (kind === LEGACY_CALL.start) {
      if (open.size >= OPEN_MAX) open.delete(open.keys().next().value!);
      open.set(key, this.begin(v, tgid, p, process.scopes, at));
      return undefined;
    }
    const span = open.get(key);
    if (!span) return undefined; // its START was lost (counted in the kernel) or it began before gotel attached
    switch (kind) {
      case LEGACY_CALL.attributes:
        this.setAttributes(span, this.kvs(v), 0, this.sourceLength(v, 0));
        break;
      case LEGACY_CALL.name:
        span.record.name = this.text(v);
        break;
      case LEGACY_CALL.status:
        this.setStatus(span, Number(v.getBigUint64(this.l.f.value, true)), this.text(v));
        break;
      case LEGACY_CALL.event:
        this.addEvent(span, this.text(v), v, p, at, {});
        break;
      case LEGACY_CALL.error:
        this.addEvent(span, "exception", v, p, at, this.exception(v, tgid));
        break;
      case LEGACY_CALL.end: {
        open.delete(key);
        const r = span.record;
        r.endUnixNs = this.timestamp(v, p) ?? at;
        if (span.events.length) r.events = span.events;
        const dropped = { attributes: span.droppedAttributes, events: span.droppedEvents, links: r.dropped?.links ?? 0 };
        if (dropped.attributes || dropped.events || dropped.links) r.dropped = dropped;
        else delete r.dropped;
        return r;
      }
    }
    return undefined;
  }

  private ids(v: DataView): Ids {
    const f = this.l.f;
    const parent = hexBytes(v, f.parent, 8);
    const traceStateLen = Math.min(v.getUint32(f.traceStateLen, true), this.l.max.traceState, Math.max(0, v.byteLength - f.traceState));
    return {
      traceId: hexBytes(v, f.traceId, 16),
      spanId: hexBytes(v, f.spanId, 8),
      parentSpanId: parent !== "0000000000000000" ? parent : undefined,
      traceState: traceStateLen ? decodeUtf8(v, f.traceState, traceStateLen) : undefined,
    };
  }

  private begin(v: DataView, tgid: number, p: LegacyProcess, scopes: Map<bigint, Scope>, at: bigint): OpenSpan {
    const c = this.ids(v);
    const tracer = v.getBigUint64(this.l.f.tracer, true);
    let scope = scopes.get(tracer);
    if (!scope) scopes.set(tracer, (scope = readTracer(this.memory(tgid), Number(tracer), p)));
    const options = this.options(v);
    let kind = KINDS[0]!;
    let linksGiven = 0; // the links of every WithLinks: a closure's captured slice (ptr, len, cap)
    for (const o of options) {
      const closure = p.closures.get(o.fn);
      if (closure === "kind") kind = KINDS[Number(v.getBigInt64(o.data + 8, true))] ?? kind;
      else if (closure === "links") linksGiven += Number(v.getBigInt64(o.data + 16, true));
    }
    const kvs = this.kvs(v);
    const links = this.links(v, kvs, linksGiven);
    const attributes: Attributes = {};
    const record: SpanRecord = {
      traceId: c.traceId,
      spanId: c.spanId,
      parentSpanId: c.parentSpanId,
      parentIsRemote: c.parentSpanId ? false : undefined,
      traceState: c.traceState,
      name: this.text(v),
      kind,
      startUnixNs: this.timestamp(v, p, options) ?? at,
      endUnixNs: at,
      attributes,
      status: { code: SpanStatusCode.UNSET },
      scope: scope.name,
      scopeVersion: scope.version,
      scopeSchemaUrl: scope.schemaUrl,
    };
    if (links.kept.length) record.links = links.kept;
    if (links.dropped) record.dropped = { attributes: 0, events: 0, links: links.dropped };
    const span: OpenSpan = { record, attributes, count: 0, droppedAttributes: 0, statusRank: 0, events: [], droppedEvents: 0 };
    this.setAttributes(span, kvs, 0, this.sourceLength(v, 0));
    return span;
  }

  /** SetAttributes: later values replace earlier ones; new keys beyond the limit are dropped */
  private setAttributes(span: OpenSpan, kvs: Kv[], group: number, had: number): void {
    let read = 0;
    for (const a of kvs) {
      if (a.group !== group) continue;
      read++;
      if (a.value === undefined) continue;
      if (Object.hasOwn(span.attributes, a.key)) span.attributes[a.key] = a.value;
      else if (span.count >= LIMIT) span.droppedAttributes++;
      else {
        span.attributes[a.key] = a.value;
        span.count++;
      }
    }
    span.droppedAttributes += had - read;
  }

  private setStatus(span: OpenSpan, code: number, description: string): void {
    const rank = PRECEDENCE[code] ?? 0;
    if (rank < span.statusRank || code >= STATUS.length) return;
    span.statusRank = rank;
    const status = STATUS[code]!;
    span.record.status = status === SpanStatusCode.ERROR && description ? { code: status, message: description } : { code: status };
  }

  /** an event; `last` (RecordError's exception.*) is set after the options' attributes, as the SDK appends it */
  private addEvent(span: OpenSpan, name: string, v: DataView, p: LegacyProcess, at: bigint, last: Attributes): void {
    if (span.events.length >= LIMIT) {
      span.droppedEvents++;
      return;
    }
    const attributes: Attributes = {};
    let dropped = this.sourceLength(v, 0);
    for (const a of this.kvs(v)) {
      if (a.group !== 0) continue;
      dropped--;
      if (a.value === undefined) continue;
      if (!Object.hasOwn(attributes, a.key) && Object.keys(attributes).length >= LIMIT) dropped++;
      else attributes[a.key] = a.value;
    }
    span.events.push({ name, timeUnixNs: this.timestamp(v, p) ?? at, attributes: Object.assign(attributes, last), droppedAttributes: dropped });
  }

  /** RecordError's attributes, as the SDK's: exception.type (the error's Go type) and exception.message */
  private exception(v: DataView, tgid: number): Attributes {
    const type = itabTypeName(this.memory(tgid), v.getBigUint64(this.l.f.value, true)) ?? "_OTHER";
    const out: Attributes = { "exception.type": type };
    if (TEXT_ERRORS.has(type)) out["exception.message"] = this.text(v);
    return out;
  }

  private text(v: DataView): string {
    return decodeUtf8(v, this.l.f.name, Math.min(v.getUint32(this.l.f.nameLen, true), this.l.max.name));
  }

  /** the options: their first method, and where their data is in v (a closure's code pointer first) */
  private options(v: DataView): { method: number; fn: number; data: number }[] {
    const n = Math.min(v.getUint32(this.l.f.nOpts, true), this.l.max.opts);
    const out = [];
    for (let i = 0; i < n; i++) {
      const at = this.l.f.opts + i * this.l.opt.size;
      const data = at + this.l.opt.data;
      out.push({ method: Number(v.getBigUint64(at + this.l.opt.method, true)), fn: Number(v.getBigUint64(data, true)), data });
    }
    return out;
  }

  /** a WithTimestamp among the options (a time.Time: wall, ext), as ns since the epoch */
  private timestamp(v: DataView, p: LegacyProcess, options = this.options(v)): bigint | undefined {
    const o = options.find((x) => p.timestamp.has(x.method));
    return o ? goTimeUnixNs(v.getBigUint64(o.data, true), v.getBigInt64(o.data + 8, true)) : undefined;
  }

  /** attributes the list of that group had (sources[]), kept or not */
  private sourceLength(v: DataView, group: number): number {
    let n = 0;
    const src = this.l.source;
    for (let i = 0; i < Math.min(v.getUint32(this.l.f.nSources, true), this.l.max.sources); i++) {
      const at = this.l.f.sources + i * src.size;
      if (v.getUint32(at + src.group, true) === group) n += v.getUint32(at + src.len, true);
    }
    return n;
  }

  /** the links the kernel read (LEGACY_LINKS_MAX); those beyond, of the `given`, are dropped */
  private links(v: DataView, kvs: Kv[], given: number): { kept: SpanRecordLink[]; dropped: number } {
    const kept: SpanRecordLink[] = [];
    const link = this.l.link;
    const n = Math.min(v.getUint32(this.l.f.nLinks, true), this.l.max.links);
    for (let i = 0; i < n; i++) {
      const at = this.l.f.links + i * link.size;
      const traceId = hexBytes(v, at + link.traceId, 16);
      const spanId = hexBytes(v, at + link.spanId, 8);
      if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) continue; // the SDK ignores invalid links
      const attributes: Attributes = {};
      let read = 0;
      for (const a of kvs) {
        if (a.group !== i + 1) continue;
        read++;
        if (a.value !== undefined && Object.keys(attributes).length < LIMIT) attributes[a.key] = a.value;
      }
      kept.push({ traceId, spanId, sampled: (v.getUint8(at + link.flags) & 1) === 1, attributes, droppedAttributes: this.sourceLength(v, i + 1) - read });
    }
    // the SDK's 128 links are more than the kernel reads: those it did not read are the dropped ones
    return { kept, dropped: Math.max(0, given - n) };
  }

  private kvs(v: DataView): Kv[] {
    const kv = this.l.kv;
    const n = Math.min(v.getUint32(this.l.f.nKv, true), this.l.max.kv, Math.floor((v.byteLength - this.l.f.kv) / kv.size));
    const out: Kv[] = [];
    for (let i = 0; i < n; i++) {
      const at = this.l.f.kv + i * kv.size;
      const key = decodeUtf8(v, at + kv.key, Math.min(v.getUint32(at + kv.keyLen, true), kv.keyMax));
      const value = attributeValue(v, Number(v.getBigUint64(at + kv.type, true)), at + kv.numeric, at + kv.value, Math.min(v.getUint32(at + kv.valueLen, true), kv.valueMax), kv.string);
      out.push({ group: v.getUint32(at + kv.group, true), key, value });
    }
    return out;
  }

}

/** attribute.Type: BOOL 1, INT64 2, FLOAT64 3, STRING 4, then the slices of each (strings: `string` bytes each,
 * a length byte and the bytes) */
function attributeValue(v: DataView, type: number, numeric: number, value: number, len: number, string: number): AttributeValue | undefined {
  switch (type) {
    case 1: return v.getBigUint64(numeric, true) !== 0n;
    case 2: return Number(v.getBigInt64(numeric, true));
    case 3: return v.getFloat64(numeric, true);
    case 4: return decodeUtf8(v, value, len);
    case 5: return Array.from({ length: len }, (_, i) => v.getUint8(value + i) !== 0);
    case 6: return Array.from({ length: Math.floor(len / 8) }, (_, i) => Number(v.getBigInt64(value + i * 8, true)));
    case 7: return Array.from({ length: Math.floor(len / 8) }, (_, i) => v.getFloat64(value + i * 8, true));
    case 8: return Array.from({ length: Math.floor(len / string) }, (_, i) => decodeUtf8(v, value + i * string + 1, Math.min(v.getUint8(value + i * string), string - 1)));
    default: return undefined; // INVALID: the SDK drops it too
  }
}

/** time.Time {wall uint64; ext int64}: with the monotonic bit, wall holds seconds since 1885 and ext the
 * monotonic reading; without, ext holds seconds since year 1. */
export function goTimeUnixNs(wall: bigint, ext: bigint): bigint {
  const nsec = wall & ((1n << 30n) - 1n);
  const hasMonotonic = (wall >> 63n) === 1n;
  const sec = hasMonotonic ? ((wall << 1n) & ((1n << 64n) - 1n)) >> 31n : ext;
  const wallToInternal = 59_453_308_800n; // (1884*365 + 1884/4 - 1884/100 + 1884/400) days
  const unixToInternal = 62_135_596_800n; // (1969*365 + 1969/4 - 1969/100 + 1969/400) days
  return ((hasMonotonic ? sec + wallToInternal : sec) - unixToInternal) * 1_000_000_000n + nsec;
}

/** internal/global.tracer {[embedded.Tracer]; name string; opts []trace.TracerOption; …}: the name, and the
 * version and schema URL its WithInstrumentationVersion / WithSchemaURL closures captured. */
function readTracer(memory: TargetMemory | undefined, tracer: number, p: LegacyProcess): Scope {
  const scope: Scope = { name: "", version: "", schemaUrl: "" };
  if (!memory || !tracer) return scope;
  const word = (at: number): number | undefined => {
    const b = memory.read(at, 8);
    return b ? Number(new DataView(b.buffer).getBigUint64(0, true)) : undefined;
  };
  const string = (at: number): string => {
    const ptr = word(at), len = word(at + 8);
    if (!ptr || !len || len > 4096) return "";
    const b = memory.read(ptr, len);
    return b ? new TextDecoder().decode(b) : "";
  };
  const base = tracer + p.tracerNameOffset;
  scope.name = string(base);
  const opts = word(base + 16), n = Math.min(word(base + 24) ?? 0, 16);
  for (let i = 0; opts && i < n; i++) {
    const closure = word(opts + i * 16 + 8);
    const kind = closure ? p.closures.get(word(closure) ?? 0) : undefined;
    if (kind === "version") scope.version = string(closure! + 8);
    else if (kind === "schema") scope.schemaUrl = string(closure! + 8);
  }
  return scope;
}
