/** The loaded gRPC server object (grpc_server.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { i64Field, spanContextDecoder, stringField } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { ipString } from "./ip.ts";
import { plan, toSpanRecord, type ServerEvent } from "./server-plan.ts";

export interface ServerLoadOptions extends LoadOptions {
  /** a live target's memory, to name the transport's and the peer address's types */
  memory?: (tgid: number) => TargetMemory | undefined;
}

/** the event as decoded; `record` completes it in place (no copies: this runs for every span) */
type RawEvent = ServerEvent & { transportType: bigint; peerType: bigint; peerIp: Uint8Array; peerPort: number };

/** the transport whose peer the kernel reads, and the address type it understands */
const HTTP2_TRANSPORT = "*transport.http2Server";
const TCP_ADDR = "*net.TCPAddr";

export class GrpcServerProbe extends ObjectSpanProbe {
  readonly name = "gRPC server";
  private readonly decode: (v: DataView) => RawEvent;

  private constructor(object: ProbeObject, private readonly opts: ServerLoadOptions) {
    super(object);
    this.decode = eventDecoder(new StructView(object.obj.btf().structLayout("grpc_server_event")));
  }

  static load(opts: ServerLoadOptions): GrpcServerProbe {
    return new GrpcServerProbe(ProbeObject.load("grpc_server", opts), opts);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const p = plan(exe);
    if ("skipped" in p) return p;
    return {
      ...p.offsetsSource,
      sites: siteCount(p.programs),
      ...(p.extracts ? {} : { note: "no incoming traceparent: operateHeaders or x/net's frame offsets were not found" }),
      attach: (tgid, path) => this.object.attach(tgid, path, p.offsets, p.programs),
    };
  }

  record(v: DataView, tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const e = this.decode(v);
    const memory = this.opts.memory?.(tgid);
    const name = (t: bigint): string | undefined => (t > 0n && t <= BigInt(Number.MAX_SAFE_INTEGER) ? memory?.typeName(Number(t)) : undefined);
    const tcpPeer = name(e.transportType) === HTTP2_TRANSPORT && name(e.peerType) === TCP_ADDR && (e.peerIp.length === 4 || e.peerIp.length === 16);
    if (tcpPeer) e.peer = { address: ipString(e.peerIp), port: e.peerPort };
    e.startNs = toUnixNs(e.startNs);
    e.endNs = toUnixNs(e.endNs);
    return toSpanRecord(e);
  }
}

function eventDecoder(s: StructView): (v: DataView) => RawEvent {
  const context = spanContextDecoder(s);
  const [method, message] = [stringField(s, "method", "method_len"), stringField(s, "message", "message_len")];
  const [code, port] = [i64Field(s, "code"), i64Field(s, "peer_port")];
  const [transportType, peerType] = [s.u64("transport_type"), s.u64("peer_type")];
  const ip = s.offset("peer_ip", 16);
  const ipLen = s.u32("peer_ip_len");
  return (v) => {
    const c = code(v);
    return {
      ...context(v),
      method: method(v),
      code: c < 0 ? undefined : c,
      message: message(v),
      transportType: transportType(v),
      peerType: peerType(v),
      peerIp: new Uint8Array(v.buffer.slice(v.byteOffset + ip, v.byteOffset + ip + Math.min(ipLen(v), 16))),
      peerPort: port(v),
    };
  };
}
