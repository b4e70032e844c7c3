/* Finding headers in a net/http.Header (map[string][]string, keys canonicalized by net/textproto) from the
 * kernel, for every Go map implementation: runtime.hmap buckets before Go 1.24, Swiss tables
 * (internal/runtime/maps) from 1.24. Only this map type is read, so its slot layout follows from Go's rules: a
 * string key is 16 bytes, a []string value 24.
 *
 * The walks are bounded: up to 8 classic buckets (B <= 3, ~50 headers; overflow buckets are not followed) or
 * 2 Swiss tables of up to 8 groups (a small map of <= 8 headers is one group). A header beyond that is
 * not found: the span lacks user_agent.original, or its incoming parent.
 */
#ifndef GOTEL_HTTP_HEADER_H
#define GOTEL_HTTP_HEADER_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "go_types.h"
#include "probe.h"

/* Per process: offsets of the map internals (GOTEL_OFFSET_ABSENT for the implementation a Go version lacks). */
struct go_map_offsets {
	/* Go < 1.24 */
	__u64 hmap_b;             /* runtime.hmap.B (uint8) */
	__u64 hmap_buckets;       /* runtime.hmap.buckets */
	/* Go >= 1.24 */
	__u64 swiss_dir_ptr;      /* internal/runtime/maps.Map.dirPtr */
	__u64 swiss_dir_len;      /* internal/runtime/maps.Map.dirLen */
	__u64 swiss_table_groups; /* internal/runtime/maps.table.groups */
	__u64 swiss_groups_data;  /* internal/runtime/maps.groupsReference.data */
	__u64 swiss_groups_mask;  /* internal/runtime/maps.groupsReference.lengthMask */
};

enum http_header_name {
	HTTP_HEADER_USER_AGENT,
	HTTP_HEADER_TRACEPARENT,
	HTTP_HEADER_TRACESTATE,
	HTTP_HEADER_COUNT,
};

/* Where each header's []string value sits, 0 when absent. */
struct http_header_values {
	__u64 at[HTTP_HEADER_COUNT];
};

#define CLASSIC_BUCKET_SIZE (8 + 8 * 16 + 8 * 24 + 8) /* tophash, keys, values, overflow */
#define CLASSIC_MAX_B 3
#define CLASSIC_MIN_TOPHASH 5                          /* below: an empty slot */
#define SWISS_SLOT_SIZE (16 + 24)
#define SWISS_GROUP_SIZE (8 + 8 * SWISS_SLOT_SIZE)    /* control word, 8 slots */
#define SWISS_MAX_TABLES 2
#define SWISS_MAX_GROUPS 8

static __always_inline int bytes_equal(const char *a, const char *b, const int n)
{
	for (int i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* Which header a map key names: an enum http_header_name + 1, or 0. A global (not inlined) function: the
 * kernel verifies it once instead of once per slot of the walks below, which keeps the probes well inside
 * the verifier's budget. */
__attribute__((noinline)) int http_header_key(__u64 key_addr)
{
	struct go_string k = {};
	char b[16] = {};
	if (bpf_probe_read_user(&k, sizeof(k), (const void *)key_addr) || (k.len != 10 && k.len != 11))
		return 0;
	if (bpf_probe_read_user(b, k.len == 10 ? 10 : 11, (const void *)k.ptr))
		return 0;
	if (k.len == 11)
		return bytes_equal(b, "Traceparent", 11) ? HTTP_HEADER_TRACEPARENT + 1 : 0;
	if (bytes_equal(b, "User-Agent", 10))
		return HTTP_HEADER_USER_AGENT + 1;
	if (bytes_equal(b, "Tracestate", 10))
		return HTTP_HEADER_TRACESTATE + 1;
	return 0;
}

static __always_inline void http_header_match(__u64 key_addr, __u64 value, struct http_header_values *out)
{
	switch (http_header_key(key_addr)) {
	case HTTP_HEADER_USER_AGENT + 1:
		out->at[HTTP_HEADER_USER_AGENT] = value;
		break;
	case HTTP_HEADER_TRACEPARENT + 1:
		out->at[HTTP_HEADER_TRACEPARENT] = value;
		break;
	case HTTP_HEADER_TRACESTATE + 1:
		out->at[HTTP_HEADER_TRACESTATE] = value;
		break;
	}
}

static __always_inline void http_header_classic(const struct go_map_offsets *o, __u64 hmap, struct http_header_values *out)
{
	__u8 b = 0;
	__u64 buckets = read_u64_at(hmap, o->hmap_buckets);
	if (bpf_probe_read_user(&b, 1, (const void *)(hmap + o->hmap_b)) || !buckets || b > CLASSIC_MAX_B)
		return;
	for (__u32 bucket = 0; bucket < (1u << CLASSIC_MAX_B); bucket++) {
		if (bucket >= (1u << b))
			break;
		__u64 base = buckets + bucket * CLASSIC_BUCKET_SIZE;
		__u8 tophash[8] = {};
		if (bpf_probe_read_user(tophash, sizeof(tophash), (const void *)base))
			return;
		for (int slot = 0; slot < 8; slot++)
			if (tophash[slot] >= CLASSIC_MIN_TOPHASH)
				http_header_match(base + 8 + slot * 16, base + 8 + 8 * 16 + slot * 24, out);
	}
}

/* Slot i of a Swiss group sits at 8 + i*40: its key, then its value. */
static __always_inline void http_header_swiss_group(__u64 group, struct http_header_values *out)
{
	__u64 ctrl = 0;
	if (!group || bpf_probe_read_user(&ctrl, sizeof(ctrl), (const void *)group))
		return;
	for (int slot = 0; slot < 8; slot++) {
		/* the high bit of a control byte marks an empty or deleted slot */
		if (!((ctrl >> (slot * 8)) & 0x80))
			http_header_match(group + 8 + slot * SWISS_SLOT_SIZE, group + 8 + slot * SWISS_SLOT_SIZE + 16, out);
	}
}

static __always_inline void http_header_swiss(const struct go_map_offsets *o, __u64 m, struct http_header_values *out)
{
	__u64 dir = read_u64_at(m, o->swiss_dir_ptr);
	__s64 dir_len = read_u64_at(m, o->swiss_dir_len);
	if (!dir)
		return;
	if (dir_len == 0) { /* a small map: dirPtr is its one group */
		http_header_swiss_group(dir, out);
		return;
	}
	for (__u32 t = 0; t < SWISS_MAX_TABLES; t++) {
		if (t >= dir_len)
			break;
		__u64 table = read_u64_at(dir + t * 8, 0);
		__u64 groups = read_u64_at(table, o->swiss_table_groups + o->swiss_groups_data);
		__u64 mask = read_u64_at(table, o->swiss_table_groups + o->swiss_groups_mask);
		for (__u32 g = 0; g < SWISS_MAX_GROUPS; g++) {
			if (!groups || g > mask)
				break;
			http_header_swiss_group(groups + g * SWISS_GROUP_SIZE, out);
		}
	}
}

/* Finds the headers we read in the Header map at `header` (a map pointer). */
static __always_inline void http_header_find(const struct go_map_offsets *o, __u64 header, struct http_header_values *out)
{
	if (!header)
		return;
	if (o->hmap_b != GOTEL_OFFSET_ABSENT && o->hmap_buckets != GOTEL_OFFSET_ABSENT)
		http_header_classic(o, header, out);
	else if (o->swiss_dir_ptr != GOTEL_OFFSET_ABSENT && o->swiss_dir_len != GOTEL_OFFSET_ABSENT &&
		 o->swiss_table_groups != GOTEL_OFFSET_ABSENT && o->swiss_groups_data != GOTEL_OFFSET_ABSENT &&
		 o->swiss_groups_mask != GOTEL_OFFSET_ABSENT)
		http_header_swiss(o, header, out);
}

/* Copies the first value of the []string at value_addr; returns the string's full length (may exceed cap). */
static __always_inline __u32 http_header_first_value(char *dst, const __u32 cap, __u64 value_addr, __u32 *copied)
{
	struct go_slice v = {};
	struct go_string s = {};
	*copied = 0;
	if (!value_addr || bpf_probe_read_user(&v, sizeof(v), (const void *)value_addr) || v.len < 1)
		return 0;
	if (bpf_probe_read_user(&s, sizeof(s), (const void *)v.ptr) || s.len <= 0)
		return 0;
	*copied = go_read_bytes(dst, cap, s.ptr, s.len);
	return s.len > 0xffff ? 0xffff : (__u32)s.len;
}

#endif
