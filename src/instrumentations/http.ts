/**
 * What the HTTP instrumentations (net/http server and client) share: the scope they report under, the methods
 * the semantic conventions know, host:port and protocol-version helpers, and the Go map fields the in-kernel
 * header walk needs.
 */

/** upstream's instrumentation scope for net/http, server and client */
export const SCOPE = "go.opentelemetry.io/auto/net/http";

/** the methods of RFC 9110 and RFC 5789 (and QUERY); any other is reported as `_OTHER` */
export const KNOWN_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"]);

/** "host:port", "[v6]:port", "host" -> parts */
export function splitHostPort(s: string): { host: string; port?: number } {
  const m = /^\[([^\]]*)\](?::(\d+))?$/.exec(s) ?? /^([^:]*)(?::(\d+))?$/.exec(s);
  if (!m) return { host: s };
  return m[2] !== undefined ? { host: m[1] ?? "", port: Number(m[2]) } : { host: m[1] ?? "" };
}

/** Request.ProtoMajor/ProtoMinor -> `network.protocol.version`: "1.1", "2" */
export function protocolVersion(major: number, minor: number): string {
  return major >= 2 ? String(major) : `${major}.${minor}`;
}

/**
 * The map internals bpf/include/http_header.h reads to find headers in a net/http.Header: runtime.hmap before
 * Go 1.24, Swiss tables (internal/runtime/maps) from 1.24. Each version has one of the two sets, so every
 * field is optional; a probe without either set just finds no headers.
 */
export const MAP_FIELDS = {
  "map.hmap_b": "runtime.hmap.B",
  "map.hmap_buckets": "runtime.hmap.buckets",
  "map.swiss_dir_ptr": "internal/runtime/maps.Map.dirPtr",
  "map.swiss_dir_len": "internal/runtime/maps.Map.dirLen",
  "map.swiss_table_groups": "internal/runtime/maps.table.groups",
  "map.swiss_groups_data": "internal/runtime/maps.groupsReference.data",
  "map.swiss_groups_mask": "internal/runtime/maps.groupsReference.lengthMask",
} as const;

export const MAP_FIELD_KEYS: ReadonlySet<string> = new Set(Object.keys(MAP_FIELDS));
