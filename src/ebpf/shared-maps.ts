/**
 * The maps every gotel object shares with the core object (bpf/core.bpf.c, src/probes/core-object.ts), which
 * owns them, and the per-process keys in them. Here, below both the probes and the propagation paths, which
 * load objects that reuse them.
 */
import type { BpfMap } from "./map.ts";
import type { BpfObject } from "./object.ts";

/**
 * The maps the core object owns and the others reuse: every object declares the first four; the same-host
 * linking maps (bpf/include/same_host.h) only the objects that include that header. gotel_api_tgids: the
 * processes whose spans the OpenTelemetry API instrumentation records under their span pointers. gotel_http_routes:
 * the routes routers note for the net/http server spans (bpf/include/http_route.h).
 */
export const SHARED_MAPS = ["events", "drops", "gotel_spans_by_ctx", "gotel_api_tgids", "gotel_goroutine_tgids", "gotel_link_pending", "gotel_link_pending_streams", "gotel_conn_links", "gotel_conn_reads", "gotel_conn_writes", "gotel_link_tgids", "gotel_conn_inserts", "gotel_sock_inserting", "gotel_http_routes"] as const;

/** Makes an opened object use the core's maps among SHARED_MAPS that it declares (before load). */
export function useCoreMaps(obj: BpfObject, core: BpfObject): void {
  const has = new Set(obj.mapNames());
  obj.shareMaps(core, SHARED_MAPS.filter((m) => has.has(m)));
}

/** The keys of a map keyed by (tgid, …) that belong to one process (collected first: callers delete them). */
export function processKeys(map: BpfMap, tgid: number): Uint8Array[] {
  return [...map.keys()].filter((k) => new DataView(k.buffer).getUint32(0, true) === tgid);
}
