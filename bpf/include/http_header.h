/* Finding headers in a net/http.Header (map[string][]string, keys canonicalized by net/textproto) from the
 * kernel, for every Go map implementation: runtime.hmap buckets before Go 1.24, Swiss tables
 * (internal/runtime/maps) from 1.24. Only this map type is read, so its slot layout follows from Go's rules: a
 * string key is 16 bytes, a []string value 24.
 *
 * The walks are bounded: up to 32 classic buckets (B <= 5: net/textproto sizes the map for the request's header
 * lines, so ~200 headers) and 3 overflow buckets chained to each (a bucket that hashing filled overflows into a
 * chained one, which a 13-header request already does ~1 time in 4; a fourth is vanishingly rare), or 32 Swiss
 * groups in each of up to 2 tables (~220 headers; a small map of <= 8 headers is one group). A header beyond that is not found: the span lacks
 * user_agent.original, or its incoming parent. Entries of a classic map caught in the middle of growing (only
 * when a header block did not fit in the reader's buffer, so textproto guessed its size too small) that are
 * still in the old bucket array are not seen either.
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

#define CLASSIC_OVERFLOW (8 + 8 * 16 + 8 * 24)         /* after tophash, keys, values: the overflow pointer */
#define CLASSIC_BUCKET_SIZE (CLASSIC_OVERFLOW + 8)
#define CLASSIC_MAX_B 5
#define CLASSIC_MAX_OVERFLOW 3                        /* overflow buckets followed from each main bucket */
#define CLASSIC_MIN_TOPHASH 5                          /* below: an empty slot */
#define CLASSIC_EMPTY_REST 0                           /* empty, and so is every later slot and overflow bucket */
#define SWISS_SLOT_SIZE (16 + 24)
#define SWISS_GROUP_SIZE (8 + 8 * SWISS_SLOT_SIZE)    /* control word, 8 slots */
#define SWISS_MAX_TABLES 2
#define SWISS_MAX_GROUPS 32

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

/* 8 slots, behind 8 tag bytes: a classic bucket (8 string keys, then 8 []string values) or a Swiss group
 * (8 key-value pairs). */
enum http_header_slots_kind { HTTP_HEADER_SLOTS_CLASSIC, HTTP_HEADER_SLOTS_SWISS };

/* Which slot of one bucket/group holds each header we read: 4 bits per enum http_header_name, the slot + 1
 * (0: not there). `tags` is the 8 tag bytes in front of the slots (classic tophash or Swiss control word),
 * which say which slots are full. Global, with scalar arguments only (kernels before 5.12 allow no memory
 * pointers here): the kernel verifies the 8-slot scan once, not once per bucket of the walks below, which
 * keeps loading fast. */
__attribute__((noinline)) __u32 http_header_slots(__u64 first_key, __u64 stride, __u64 tags, __u32 kind)
{
	__u32 found = 0;
	for (int slot = 0; slot < 8; slot++) {
		__u8 tag = tags >> (slot * 8);
		/* classic: a tophash below minTopHash marks an empty or evacuated slot; Swiss: the high bit, an empty or deleted one */
		int full = kind == HTTP_HEADER_SLOTS_SWISS ? !(tag & 0x80) : tag >= CLASSIC_MIN_TOPHASH;
		int name = full ? http_header_key(first_key + slot * stride) : 0;
		if (name)
			found |= (__u32)(slot + 1) << ((name - 1) * 4);
	}
	return found;
}

/* The walk's input and output. It runs in a global function, which the kernel verifies on its own, once: its
 * loops then cannot multiply the states of what the probe does after it (before, kernel 6.1's verifier gave up
 * on the server's entry program at 1M instructions). A global function takes no pointer to the caller's stack
 * before kernel 5.12, so both sides meet in this per-CPU map (a probe runs to its end on one CPU). */
struct http_header_walk {
	struct go_map_offsets o;
	__u64 header;
	struct http_header_values out;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_header_walk);
} http_header_walks SEC(".maps");

/* Records, in the walk's output, where the headers found in the bucket/group at `at` keep their values: keys
 * from at + 8, `key_stride` apart; values from at + `values`, `value_stride` apart. Returns its tag bytes (0 when
 * unreadable). Global, scalar arguments only: the kernel verifies one bucket's scan once, not once for each of
 * the up to 128 buckets the walks below visit (inlined, the walks cost the verifier ~28,000 instructions). */
__attribute__((noinline)) __u64 http_header_scan(__u64 at, __u32 kind, __u64 key_stride, __u64 values, __u64 value_stride)
{
	__u32 zero = 0;
	struct http_header_walk *w = bpf_map_lookup_elem(&http_header_walks, &zero);
	__u64 tags = 0;
	if (!w || !at || bpf_probe_read_user(&tags, sizeof(tags), (const void *)at))
		return 0;
	__u32 found = http_header_slots(at + 8, key_stride, tags, kind);
	for (int h = 0; h < HTTP_HEADER_COUNT; h++) {
		__u32 slot = (found >> (h * 4)) & 0xf;
		if (slot)
			w->out.at[h] = at + values + (slot - 1) * value_stride;
	}
	return tags;
}

/* A classic main bucket at `at` and the overflow buckets chained to it. Global, like the scan: verified once,
 * not once per main bucket. */
__attribute__((noinline)) int http_header_bucket_chain(__u64 at)
{
	for (int chain = 0; chain <= CLASSIC_MAX_OVERFLOW && at; chain++) {
		__u64 tags = http_header_scan(at, HTTP_HEADER_SLOTS_CLASSIC, 16, 8 + 8 * 16, 24);
		/* last slot emptyRest (0): nothing further in this bucket or its overflows, so no overflow pointer
		 * to read (a map of a few headers: the one bucket, one read less per request) */
		if ((tags >> 56) == CLASSIC_EMPTY_REST)
			break;
		at = read_u64_at(at, CLASSIC_OVERFLOW);
	}
	return 0;
}

/* Visits each main bucket and the overflow chain hanging off it. Two nested loops with constant bounds, not
 * one loop choosing "overflow or next bucket" each time: that choice made a counter whose every value the
 * kernel's verifier explored separately (kernel 6.1 gave up at 1M instructions). */
static __always_inline void http_header_classic(const struct go_map_offsets *o, __u64 hmap)
{
	__u8 b = 0;
	__u64 buckets = read_u64_at(hmap, o->hmap_buckets);
	if (bpf_probe_read_user(&b, 1, (const void *)(hmap + o->hmap_b)) || !buckets || b > CLASSIC_MAX_B)
		return;
	__u32 n = 1u << b;
	for (__u32 i = 0; i < (1u << CLASSIC_MAX_B); i++) {
		if (i >= n)
			break;
		http_header_bucket_chain(buckets + (__u64)i * CLASSIC_BUCKET_SIZE);
	}
}

/* A Swiss group: a control word, then 8 slots of key and value (40 bytes each). */
static __always_inline void http_header_swiss(const struct go_map_offsets *o, __u64 m)
{
	__u64 dir = read_u64_at(m, o->swiss_dir_ptr);
	__s64 dir_len = read_u64_at(m, o->swiss_dir_len);
	if (!dir)
		return;
	if (dir_len == 0) { /* a small map: dirPtr is its one group */
		http_header_scan(dir, HTTP_HEADER_SLOTS_SWISS, SWISS_SLOT_SIZE, 8 + 16, SWISS_SLOT_SIZE);
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
			http_header_scan(groups + g * SWISS_GROUP_SIZE, HTTP_HEADER_SLOTS_SWISS, SWISS_SLOT_SIZE, 8 + 16,
					 SWISS_SLOT_SIZE);
		}
	}
}

__attribute__((noinline)) int http_header_walk(__u32 slot)
{
	struct http_header_walk *w = bpf_map_lookup_elem(&http_header_walks, &slot);
	if (!w || !w->header)
		return 0;
	const struct go_map_offsets *o = &w->o;
	if (o->hmap_b != GOTEL_OFFSET_ABSENT && o->hmap_buckets != GOTEL_OFFSET_ABSENT)
		http_header_classic(o, w->header);
	else if (o->swiss_dir_ptr != GOTEL_OFFSET_ABSENT && o->swiss_dir_len != GOTEL_OFFSET_ABSENT &&
		 o->swiss_table_groups != GOTEL_OFFSET_ABSENT && o->swiss_groups_data != GOTEL_OFFSET_ABSENT &&
		 o->swiss_groups_mask != GOTEL_OFFSET_ABSENT)
		http_header_swiss(o, w->header);
	return 0;
}

/* Finds the headers we read in the Header map at `header` (a map pointer). */
static __always_inline void http_header_find(const struct go_map_offsets *o, __u64 header, struct http_header_values *out)
{
	__u32 slot = 0;
	struct http_header_walk *w = bpf_map_lookup_elem(&http_header_walks, &slot);
	if (!header || !w)
		return;
	w->o = *o;
	w->header = header;
	__builtin_memset(&w->out, 0, sizeof(w->out));
	http_header_walk(slot);
	*out = w->out;
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
