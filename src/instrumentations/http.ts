/**
 * What the HTTP instrumentations (net/http server and client) share: the scope they report under, the methods
 * the semantic conventions know, host:port and protocol-version helpers, and the Go map fields the in-kernel
 * header walk needs.
 */

/** upstream's instrumentation scope for net/http, server and client */
export const SCOPE = "go.opentelemetry.io/auto/net/http";

/** the methods of RFC 9110 and RFC 5789 (and QUERY); any other is reported as `_OTHER` */
export const KNOWN_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"]);

/**
 * "host:port", "[v6]:port", "host", "[v6]" -> parts; anything else (a bare IPv6 address, a port that is not
 * digits) is all host. Runs twice per server span, so without regular expressions.
 */
export function splitHostPort(s: string): { host: string; port?: number } {
  if (s.charCodeAt(0) === 0x5b /* [ */) {
    const close = s.indexOf("]");
    if (close > 0 && close === s.length - 1) return { host: s.slice(1, close) };
    if (close > 0 && s.charCodeAt(close + 1) === 0x3a /* : */ && allDigits(s, close + 2)) {
      return { host: s.slice(1, close), port: Number(s.slice(close + 2)) };
    }
  }
  const colon = s.indexOf(":");
  if (colon < 0) return { host: s };
  if (s.indexOf(":", colon + 1) < 0 && allDigits(s, colon + 1)) return { host: s.slice(0, colon), port: Number(s.slice(colon + 1)) };
  return { host: s };
}

/** s[from..] is one or more ASCII digits */
function allDigits(s: string, from: number): boolean {
  if (from >= s.length) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
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
