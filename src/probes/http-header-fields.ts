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
