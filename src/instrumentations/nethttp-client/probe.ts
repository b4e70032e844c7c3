/** The loaded net/http client object (nethttp_client.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { H2_ABSENT, PROGRAMS, endSites, h2InjectionSites, h2Sites, h2StreamSites, plan, toSpanRecord, type ClientEvent } from "./plan.ts";
import { offsetsOrigin } from "../../probes/plan.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { errorTypeName, i64Field, spanContextDecoder, stringField } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";

export interface ClientLoadOptions extends LoadOptions {
  /** write traceparent into outgoing requests (the kernel allows bpf_probe_write_user and propagation is on) */
  inject: boolean;
  /** file each HTTP/1 request's span for the send that follows (same-host linking or socket insertion is on) */
  fileRequests?: boolean;
  /** file each HTTP/2 request's span under its connection and stream (same-host linking is on) */
  linkStreams?: boolean;
  /** a live target's memory, to name error types */
  memory?: (tgid: number) => TargetMemory | undefined;
}

/** the event as decoded; `record` completes it in place (no copies: this runs for every span) */
type RawEvent = ClientEvent & { errorTypeAddress: bigint };

export class NethttpClientProbe extends ObjectSpanProbe {
  readonly name = "net/http client";
  private readonly decode: (v: DataView) => RawEvent;

  private constructor(object: ProbeObject, private readonly opts: ClientLoadOptions) {
    super(object);
    const btf = object.obj.btf();
    this.decode = eventDecoder(new StructView(btf.structLayout("nethttp_client_event")));
  }

  static load(opts: ClientLoadOptions): NethttpClientProbe {
    return new NethttpClientProbe(ProbeObject.load("nethttp_client", { ...opts, writeUser: opts.inject }), opts);
  }

  get injects(): boolean {
    return this.opts.inject;
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const r = plan(exe);
    if ("skipped" in r) return r;
    const p = r.plan;
    const inject = this.opts.inject ? p.extra[PROGRAMS.inject] : undefined;
    const link = this.opts.fileRequests ? p.extra[PROGRAMS.link] : undefined;
    const h2 = this.opts.inject ? h2InjectionSites(exe, p.offsets) : undefined;
    const h2Link = !this.opts.inject && this.opts.linkStreams ? h2Sites(exe, p.offsets) : undefined;
    const programs: Record<string, number[]> = {
      [PROGRAMS.entry]: [p.sites.entry.offset],
      ...endSites(exe, p.sites.returns).programs,
      ...(inject ? { [PROGRAMS.inject]: [inject.offset] } : {}),
      ...(link ? { [PROGRAMS.link]: [link.offset] } : {}),
      ...(h2 && !("missing" in h2) ? h2 : {}),
      ...(h2Link && !("missing" in h2Link) ? h2StreamSites(h2Link) : {}),
    };
    const notes = [
      ...(h2 && "missing" in h2 && h2.missing !== H2_ABSENT ? [`HTTP/2 requests get no traceparent: ${h2.missing}`] : []),
      ...(h2Link && "missing" in h2Link && h2Link.missing !== H2_ABSENT ? [`HTTP/2 requests are not linked on this host: ${h2Link.missing}`] : []),
      ...(p.offsets.url_fragment === undefined ? ["url.full goes without the URL's fragment (url.URL.Fragment's offset was not found)"] : []),
    ];
    return {
      ...offsetsOrigin(p),
      ...(notes.length ? { note: notes.join("; ") } : {}),
      sites: siteCount(programs),
      attach: (tgid, path) => this.object.attach(tgid, path, p.offsets, programs),
    };
  }

  record(v: DataView, tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const e = this.decode(v);
    e.errorType = errorTypeName(this.opts.memory?.(tgid), e.errorTypeAddress);
    e.startNs = toUnixNs(e.startNs);
    e.endNs = toUnixNs(e.endNs);
    return toSpanRecord(e);
  }
}

function eventDecoder(s: StructView): (v: DataView) => RawEvent {
  const context = spanContextDecoder(s);
  const [method, scheme, host, path, query, fragment, rawFragment] = [
    stringField(s, "method", "method_len"), stringField(s, "scheme", "scheme_len"), stringField(s, "host", "host_len"),
    stringField(s, "path", "path_len"), stringField(s, "query", "query_len"), stringField(s, "fragment", "fragment_len"),
    stringField(s, "raw_fragment", "raw_fragment_len"),
  ];
  const [pathRaw, opaque, hasUser] = [s.u32("path_raw"), s.u32("opaque"), s.u32("has_user")];
  const [status, major, minor] = [i64Field(s, "status"), i64Field(s, "proto_major"), i64Field(s, "proto_minor")];
  const errorType = s.u64("error_type");
  return (v) => ({
    ...context(v),
    method: method(v),
    scheme: scheme(v),
    host: host(v),
    path: path(v),
    pathKind: opaque(v) ? "opaque" : pathRaw(v) ? "raw" : "path",
    query: query(v),
    hasUser: hasUser(v) !== 0,
    fragment: fragment(v),
    rawFragment: rawFragment(v),
    status: status(v),
    protoMajor: major(v),
    protoMinor: minor(v),
    errorTypeAddress: errorType(v),
  });
}
