/**
 * The loaded net/http server object, shared by every target process (DESIGN.md decision 2): per process it
 * writes the struct offsets into nethttp_server_config[tgid] and attaches the entry and return sites with a
 * pid filter; events are decoded with the layout read from the object's BTF.
 */
import { readEmbeddedObject } from "../ebpf/assets.ts";
import { attachUprobes, type AttachMode, type UprobeLinks } from "../ebpf/link.ts";
import { uintBytes } from "../ebpf/map.ts";
import { BpfObject } from "../ebpf/object.ts";
import { StructView } from "../ebpf/struct-view.ts";
import { FIELDS, type ConfigField, type NethttpServerPlan, type ServerEvent } from "./nethttp-server.ts";

const ABSENT = 0xffff_ffff_ffff_ffffn;

export class NethttpServerProbe {
  readonly eventType: number;
  /** the common header of every event of the object's ring buffer */
  readonly header: { type: (v: DataView) => number; tgid: (v: DataView) => number };
  private readonly decodeEvent: (v: DataView) => ServerEvent;
  private readonly configLayout: StructView;

  private constructor(readonly obj: BpfObject, readonly mode: AttachMode) {
    const btf = obj.btf();
    this.eventType = Number(btf.enumValues("gotel_event_type").get("GOTEL_EVENT_NETHTTP_SERVER"));
    this.configLayout = new StructView(btf.structLayout("nethttp_server_config"));
    this.decodeEvent = eventDecoder(new StructView(btf.structLayout("nethttp_server_event")));
    const header = new StructView(btf.structLayout("gotel_event_header"));
    this.header = { type: header.u32("type"), tgid: header.u32("tgid") };
  }

  static load(mode: AttachMode, showVerifierLog = false): NethttpServerProbe {
    const obj = BpfObject.open(readEmbeddedObject("nethttp_server"), { name: "nethttp_server.bpf.o", showVerifierLog });
    try {
      for (const p of obj.programs.values()) p.autoload = p.section.startsWith("uprobe.multi") === (mode === "multi");
      obj.load();
      return new NethttpServerProbe(obj, mode);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  decode(v: DataView): ServerEvent {
    return this.decodeEvent(v);
  }

  /** Writes the process's offsets, then attaches; returns the links to destroy when the process goes. */
  attach(tgid: number, path: string, plan: NethttpServerPlan): UprobeLinks[] {
    const config = this.obj.map("nethttp_server_config");
    config.update(uintBytes(tgid, 4), this.configBytes(plan));
    const links: UprobeLinks[] = [];
    try {
      const name = (p: string) => (this.mode === "multi" ? `${p}_multi` : p);
      links.push(attachUprobes(this.obj.program(name("nethttp_server_entry")), { path, pid: tgid, offsets: [BigInt(plan.sites.entry.offset)] }, this.mode));
      links.push(attachUprobes(this.obj.program(name("nethttp_server_return")), { path, pid: tgid, offsets: plan.sites.returns.map(BigInt) }, this.mode));
      return links;
    } catch (e) {
      for (const l of links) l.destroy();
      config.delete(uintBytes(tgid, 4));
      throw e;
    }
  }

  forget(tgid: number): void {
    this.obj.map("nethttp_server_config").delete(uintBytes(tgid, 4));
  }

  private configBytes(plan: NethttpServerPlan): Uint8Array {
    const bytes = new Uint8Array(this.configLayout.layout.size);
    const dv = new DataView(bytes.buffer);
    for (const key of Object.keys(FIELDS) as ConfigField[]) {
      const o = plan.offsets[key];
      dv.setBigUint64(this.configLayout.offset(key, 8), o === undefined ? ABSENT : BigInt(o), true);
    }
    return bytes;
  }

  close(): void {
    this.obj.close();
  }
}

const hex = (v: DataView, off: number, n: number): string => {
  let s = "";
  for (let i = 0; i < n; i++) s += v.getUint8(off + i).toString(16).padStart(2, "0");
  return s;
};

const utf8 = new TextDecoder("utf-8", { fatal: false });

function eventDecoder(s: StructView): (v: DataView) => ServerEvent {
  const str = (field: string, lenField: string) => {
    const off = s.offset(field);
    const cap = s.layout.fields.get(field)!.size;
    const len = s.u32(lenField);
    return (v: DataView) => utf8.decode(new Uint8Array(v.buffer, v.byteOffset + off, Math.min(len(v), cap)));
  };
  const i64 = (field: string) => {
    const o = s.offset(field, 8);
    return (v: DataView) => Number(v.getBigInt64(o, true));
  };
  const traceId = s.offset("trace_id", 16);
  const spanId = s.offset("span_id", 8);
  const start = s.u64("hdr.start_ns");
  const end = s.u64("hdr.end_ns");
  const tls = s.u32("tls");
  const [method, path, host, remote, pattern, userAgent] = [
    str("method", "method_len"), str("path", "path_len"), str("host", "host_len"), str("remote", "remote_len"), str("pattern", "pattern_len"),
    str("user_agent", "user_agent_len"),
  ];
  const [status, major, minor] = [i64("status"), i64("proto_major"), i64("proto_minor")];
  return (v) => ({
    traceId: hex(v, traceId, 16),
    spanId: hex(v, spanId, 8),
    startNs: start(v),
    endNs: end(v),
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
