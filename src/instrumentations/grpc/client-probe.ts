/** The loaded gRPC client object (grpc_client.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { errorTypeName, i64Field, spanContextDecoder, stringField } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { plan, toSpanRecord, type ClientEvent } from "./client-plan.ts";

export interface ClientLoadOptions extends LoadOptions {
  /** write traceparent into calls' HEADERS (the kernel allows bpf_probe_write_user and propagation is on) */
  inject: boolean;
  /** file each call's span under its connection and stream (same-host linking is on) */
  linkStreams?: boolean;
  /** a live target's memory, to name error types */
  memory?: (tgid: number) => TargetMemory | undefined;
}

/** the event as decoded; `record` completes it in place (no copies: this runs for every span) */
type RawEvent = ClientEvent & { errorTypeAddress: bigint };

export class GrpcClientProbe extends ObjectSpanProbe {
  readonly name = "gRPC client";
  private readonly decode: (v: DataView) => RawEvent;

  private constructor(object: ProbeObject, private readonly opts: ClientLoadOptions) {
    super(object);
    this.decode = eventDecoder(new StructView(object.obj.btf().structLayout("grpc_client_event")));
  }

  static load(opts: ClientLoadOptions): GrpcClientProbe {
    return new GrpcClientProbe(ProbeObject.load("grpc_client", { ...opts, writeUser: opts.inject }), opts);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const p = plan(exe);
    if ("skipped" in p) return p;
    const programs = { ...p.programs, ...(this.opts.inject ? p.inject : this.opts.linkStreams ? p.link : {}) };
    return {
      ...p.offsetsSource,
      sites: siteCount(programs),
      ...(this.opts.inject && !p.inject ? { note: "no traceparent injection: createHeaderFields, writeHeader, hpack's WriteField or their offsets not found" } : {}),
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
  const [method, target, message, errorText] = [
    stringField(s, "method", "method_len"), stringField(s, "target", "target_len"),
    stringField(s, "message", "message_len"), stringField(s, "error_text", "error_text_len"),
  ];
  const code = i64Field(s, "code");
  const errorType = s.u64("error_type");
  return (v) => ({
    ...context(v),
    method: method(v),
    target: target(v),
    code: code(v),
    message: message(v),
    errorText: errorText(v),
    errorTypeAddress: errorType(v),
  });
}
