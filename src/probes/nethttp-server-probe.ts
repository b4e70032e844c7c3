/** The loaded net/http server object (bpf/nethttp_server.bpf.c) as a SpanProbe. */
import { StructView } from "../ebpf/struct-view.ts";
import type { GoExecutable } from "../gobin/analyze.ts";
import type { SpanRecord } from "../traces/span.ts";
import { PROGRAMS, plan, toSpanRecord, type ServerEvent } from "./nethttp-server.ts";
import { ProbeObject, type LoadOptions } from "./probe-object.ts";
import { i64Field, spanContextDecoder, stringField } from "./span-event.ts";
import type { Prepared, SpanProbe } from "./span-probe.ts";

export class NethttpServerProbe implements SpanProbe {
  readonly name = "net/http server";
  readonly eventType: number;
  private readonly decode: (v: DataView) => ServerEvent;

  private constructor(readonly object: ProbeObject) {
    const btf = object.obj.btf();
    this.eventType = Number(btf.enumValues("gotel_event_type").get("GOTEL_EVENT_NETHTTP_SERVER"));
    this.decode = eventDecoder(new StructView(btf.structLayout("nethttp_server_event")));
  }

  static load(opts: LoadOptions): NethttpServerProbe {
    return new NethttpServerProbe(ProbeObject.load("nethttp_server", opts));
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const r = plan(exe);
    if ("skipped" in r) return r;
    const p = r.plan;
    return {
      offsetsSource: p.offsetsSource,
      sites: 1 + p.sites.returns.length,
      attach: (tgid, path) => this.object.attach(tgid, path, p.offsets, {
        [PROGRAMS.entry]: [p.sites.entry.offset],
        [PROGRAMS.return]: p.sites.returns,
      }),
    };
  }

  forget(tgid: number): void {
    this.object.forget(tgid);
  }

  record(v: DataView, _tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const e = this.decode(v);
    return toSpanRecord({ ...e, startNs: toUnixNs(e.startNs), endNs: toUnixNs(e.endNs) });
  }

  close(): void {
    this.object.close();
  }
}

function eventDecoder(s: StructView): (v: DataView) => ServerEvent {
  const context = spanContextDecoder(s);
  const tls = s.u32("tls");
  const [method, path, host, remote, pattern, userAgent] = [
    stringField(s, "method", "method_len"), stringField(s, "path", "path_len"), stringField(s, "host", "host_len"),
    stringField(s, "remote", "remote_len"), stringField(s, "pattern", "pattern_len"), stringField(s, "user_agent", "user_agent_len"),
  ];
  const [status, major, minor] = [i64Field(s, "status"), i64Field(s, "proto_major"), i64Field(s, "proto_minor")];
  return (v) => ({
    ...context(v),
    method: method(v),
    path: path(v),
    host: host(v),
    remoteAddr: remote(v),
    pattern: pattern(v),
    protoMajor: major(v),
    protoMinor: minor(v),
    status: status(v),
    tls: tls(v) !== 0,
    userAgent: userAgent(v),
  });
}
