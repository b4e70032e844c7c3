/* Span contexts in the kernel: IDs, sampling, W3C traceparent/tracestate, and the link from a Go
 * context.Context to the span it carries (DESIGN.md decision 3).
 *
 * Parents inside a process follow Go's context chain: a server span is recorded under its request's
 * context (the data word of Request.ctx) in gotel_spans_by_ctx; a client call walks from its own context
 * towards the root, one parent per hop, until it meets a recorded one. Every context type of the standard
 * library (cancelCtx, valueCtx, timerCtx, withoutCancelCtx, afterFuncCtx, stopCtx) embeds its parent
 * Context as its first field, so a parent's data pointer is the word at +8; the walk ends at a context without
 * a parent (Background, TODO: the itab word is zero) or after GOTEL_CTX_WALK_MAX hops. A call made with
 * context.Background() never meets a recorded context and starts a new trace, as it would with the SDK.
 *
 * Spans the application makes through the OpenTelemetry API are recorded under their span pointer, which the
 * context carrying them holds as the value of a context.valueCtx {Context; key, val any}: for the processes in
 * gotel_api_tgids the walk also looks up the data word of a context's val (+40), when the words where key's
 * and val's types would be (+16, +32) are both addresses of runtime type descriptors of that process (its
 * [runtime.types, runtime.etypes)): a context of another type, or the memory past a smaller one, is not taken
 * for a valueCtx.
 *
 * The map is shared by every object (user space reuses the first object's map) and keyed by (tgid, pointer):
 * one map serves every traced process.
 */
#ifndef GOTEL_TRACE_CONTEXT_H
#define GOTEL_TRACE_CONTEXT_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "event.h"
#include "go_types.h"

/* W3C asks propagators to keep at least 512 characters of tracestate. */
#define GOTEL_TRACESTATE_MAX 512
#define GOTEL_FLAG_SAMPLED 0x01

struct gotel_span_context {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;     /* W3C trace-flags: bit 0 = sampled */
	__u8 reserved[3];
	__u32 tracestate_len;
	char tracestate[GOTEL_TRACESTATE_MAX]; /* last: events send only tracestate_len bytes of it */
};

/* (process, pointer in it): Go heap addresses repeat between processes of one binary, so every per-call map
 * is keyed by both. Used for contexts, goroutines (in-flight calls) and header maps. User space deletes a
 * process's keys when it exits (they start with its tgid). */
struct gotel_ctx_key {
	__u32 tgid;
	__u32 pad;
	__u64 ctx;
};

/* Records a call in flight in a HASH map (not LRU: a live entry is never evicted); a full map loses the span,
 * and that is counted. 0 when recorded. */
static __always_inline int gotel_inflight_put(void *map, __u32 tgid, __u64 goroutine, const void *value)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = goroutine};
	if (bpf_map_update_elem(map, &k, value, BPF_ANY)) {
		gotel_count(GOTEL_COUNTER_INFLIGHT_LOST);
		return -1;
	}
	return 0;
}

/* LRU: a context whose span never ended (the process died mid-request) ages out instead of filling the map.
 * Only spans recorded in flight are tracked here, and the in-flight map of server spans is a HASH map no
 * larger than this one: so the LRU only ages out such leftovers, not the context of a live server span (a
 * request that does not fit is counted as INFLIGHT_LOST instead) — unless spans the application makes through
 * the OpenTelemetry API (also tracked here, under their span pointers) fill it too: with more than 8192 of
 * both in flight at once the oldest can age out, and a call made under it then finds an older ancestor. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_span_context);
} gotel_spans_by_ctx SEC(".maps");

/* ---- settings, written by user space before load (the same in every object) ---- */
enum gotel_sampler_root {
	GOTEL_SAMPLER_ALWAYS_ON = 0,
	GOTEL_SAMPLER_ALWAYS_OFF = 1,
	GOTEL_SAMPLER_RATIO = 2,
};
enum gotel_propagation {
	GOTEL_PROPAGATION_EXTRACT = 1, /* read traceparent/tracestate from incoming requests */
	GOTEL_PROPAGATION_INJECT = 2,  /* write them into outgoing requests */
	GOTEL_PROPAGATION_SAME_HOST = 4, /* link server spans to client spans of this host (same_host.h) */
	GOTEL_PROPAGATION_SOCKET = 8,    /* insert them into the bytes sent (socket_insert.h) */
};
GOTEL_BTF_TYPE(sampler_root, enum gotel_sampler_root);
GOTEL_BTF_TYPE(propagation, enum gotel_propagation);

volatile const __u32 gotel_sampler_root = GOTEL_SAMPLER_ALWAYS_ON;
volatile const __u32 gotel_sampler_parent_based = 1;
/* traceidratio: sampled when (big-endian trace_id[8:16]) >> 1 < bound, bound = ratio * 2^63 (the Go SDK's rule,
 * so a gotel service and an SDK service with the same ratio decide alike) */
volatile const __u64 gotel_sampler_ratio_bound = 0;
volatile const __u32 gotel_propagation = GOTEL_PROPAGATION_EXTRACT | GOTEL_PROPAGATION_INJECT;

static __always_inline int gotel_ratio_sampled(const __u8 *trace_id)
{
	__u64 x;
	__builtin_memcpy(&x, trace_id + 8, 8);
	return (__builtin_bswap64(x) >> 1) < gotel_sampler_ratio_bound;
}

static __always_inline __u8 gotel_sampled(const __u8 *trace_id, const struct gotel_span_context *parent)
{
	if (parent && gotel_sampler_parent_based)
		return parent->flags & GOTEL_FLAG_SAMPLED;
	switch (gotel_sampler_root) {
	case GOTEL_SAMPLER_ALWAYS_OFF:
		return 0;
	case GOTEL_SAMPLER_RATIO:
		return gotel_ratio_sampled(trace_id);
	default:
		return 1;
	}
}

/* Random IDs, made in the kernel so that what is injected into a request and what is exported agree. */
static __always_inline void gotel_random_bytes(__u8 *dst, const int n)
{
#pragma unroll
	for (int i = 0; i < n; i += 4) {
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(dst + i, &r, 4);
	}
}

/* Starts sc as a child of parent (same trace, its tracestate) or, without one, as the root of a new trace. */
static __always_inline void gotel_start_span(struct gotel_span_context *sc, const struct gotel_span_context *parent)
{
	if (parent == sc) {
		/* a remote parent parsed in place: keep its trace id and tracestate */
	} else if (parent) {
		__builtin_memcpy(sc->trace_id, parent->trace_id, 16);
		sc->tracestate_len = parent->tracestate_len;
		if (sc->tracestate_len) /* most traces have none: skip the 512-byte copy on every child span */
			bpf_probe_read_kernel(sc->tracestate, sizeof(sc->tracestate), parent->tracestate);
	} else {
		gotel_random_bytes(sc->trace_id, 16);
		sc->tracestate_len = 0;
	}
	gotel_random_bytes(sc->span_id, 8);
	sc->flags = (parent ? parent->flags & ~GOTEL_FLAG_SAMPLED : 0) | gotel_sampled(sc->trace_id, parent);
}

/* Processes whose application makes spans through the OpenTelemetry API (src/instrumentations/otel-api), with
 * where their runtime type descriptors are. */
struct gotel_api_process {
	__u64 types;  /* runtime.types, as loaded */
	__u64 etypes; /* runtime.etypes */
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct gotel_api_process);
} gotel_api_tgids SEC(".maps");

static __always_inline void gotel_track(__u32 tgid, __u64 ctx, const struct gotel_span_context *sc)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = ctx};
	if (ctx)
		bpf_map_update_elem(&gotel_spans_by_ctx, &k, sc, BPF_ANY);
}

static __always_inline void gotel_untrack(__u32 tgid, __u64 ctx)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = ctx};
	if (ctx)
		bpf_map_delete_elem(&gotel_spans_by_ctx, &k);
}

/* Spans by goroutine, for libraries whose calls carry no context (Sarama's SyncProducer): in the processes in
 * gotel_goroutine_tgids (one of them is attached), a server span (net/http's, gRPC's) is also recorded in
 * gotel_spans_by_ctx under the goroutine its handler runs on, tagged so that it is never taken for a context
 * pointer (user-space addresses stay below 2^47), until it ends. Elsewhere it costs a server one lookup at a
 * span's start and one at its end. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} gotel_goroutine_tgids SEC(".maps");

#define GOTEL_GOROUTINE_TAG (1ULL << 63)

static __always_inline void gotel_track_goroutine(__u32 tgid, __u64 goroutine, const struct gotel_span_context *sc)
{
	if (bpf_map_lookup_elem(&gotel_goroutine_tgids, &tgid))
		gotel_track(tgid, goroutine | GOTEL_GOROUTINE_TAG, sc);
}

static __always_inline void gotel_untrack_goroutine(__u32 tgid, __u64 goroutine)
{
	if (bpf_map_lookup_elem(&gotel_goroutine_tgids, &tgid))
		gotel_untrack(tgid, goroutine | GOTEL_GOROUTINE_TAG);
}

/* The server span in flight on this goroutine, or NULL. */
static __always_inline struct gotel_span_context *gotel_goroutine_span(__u32 tgid, __u64 goroutine)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = goroutine | GOTEL_GOROUTINE_TAG};
	return bpf_map_lookup_elem(&gotel_spans_by_ctx, &k);
}

/* Sends a span event whose last member is its struct gotel_span_context: only tracestate_len bytes of the
 * tracestate travel. */
#define gotel_emit_span(e)                                                                               \
	({                                                                                               \
		_Static_assert(__builtin_offsetof(typeof(*(e)), sc.tracestate) + GOTEL_TRACESTATE_MAX ==   \
				       sizeof(*(e)),                                                       \
			       "the span context must be the event's last member");                       \
		__u64 __n = (e)->sc.tracestate_len;                                                      \
		if (__n > GOTEL_TRACESTATE_MAX)                                                          \
			__n = GOTEL_TRACESTATE_MAX;                                                      \
		gotel_emit((e), sizeof(*(e)) - GOTEL_TRACESTATE_MAX + __n);                              \
	})

/* ---- W3C traceparent: "vv-<32 hex trace id>-<16 hex span id>-<2 hex flags>" (lowercase) ---- */
#define GOTEL_TRACEPARENT_LEN 55

static __always_inline int gotel_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static __always_inline int gotel_parse_hex(const char *s, __u8 *out, const int n)
{
	__u8 any = 0;
	for (int i = 0; i < n; i++) {
		int hi = gotel_hex_value(s[2 * i]), lo = gotel_hex_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = hi << 4 | lo;
		any |= out[i];
	}
	return any ? 0 : -1; /* all-zero IDs are invalid */
}

/* Parses a traceparent value of len bytes (s holds at least 56); 0 when valid. A future version may append
 * fields after a '-'; version ff is invalid. */
static __always_inline int gotel_parse_traceparent(const char *s, __u32 len, struct gotel_span_context *sc)
{
	int v_hi = gotel_hex_value(s[0]), v_lo = gotel_hex_value(s[1]);
	int f_hi = gotel_hex_value(s[53]), f_lo = gotel_hex_value(s[54]);
	if (len < GOTEL_TRACEPARENT_LEN || v_hi < 0 || v_lo < 0 || f_hi < 0 || f_lo < 0)
		return -1;
	__u8 version = v_hi << 4 | v_lo;
	if (version == 0xff || (version == 0 && len != GOTEL_TRACEPARENT_LEN) ||
	    (len > GOTEL_TRACEPARENT_LEN && s[GOTEL_TRACEPARENT_LEN] != '-'))
		return -1;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -1;
	if (gotel_parse_hex(s + 3, sc->trace_id, 16) || gotel_parse_hex(s + 36, sc->span_id, 8))
		return -1;
	sc->flags = f_hi << 4 | f_lo;
	return 0;
}

static __always_inline void gotel_hex(char *dst, const __u8 *src, const int n)
{
	const char digits[] = "0123456789abcdef";
	for (int i = 0; i < n; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 15];
	}
}

/* Writes the 55-byte traceparent of these IDs and flags to dst. */
static __always_inline void gotel_format_traceparent_of(char *dst, const __u8 *trace_id, const __u8 *span_id, const __u8 *flags)
{
	dst[0] = '0';
	dst[1] = '0';
	dst[2] = '-';
	gotel_hex(dst + 3, trace_id, 16);
	dst[35] = '-';
	gotel_hex(dst + 36, span_id, 8);
	dst[52] = '-';
	gotel_hex(dst + 53, flags, 1);
}

/* Writes the 55-byte traceparent of sc to dst. */
static __always_inline void gotel_format_traceparent(char *dst, const struct gotel_span_context *sc)
{
	gotel_format_traceparent_of(dst, sc->trace_id, sc->span_id, &sc->flags);
}

/* 1 when x is not 0, without a branch (the verifier would follow each side) */
#define GOTEL_NONZERO(x) (((x) | -(x)) >> 63)

/* A tracestate longer than we keep loses whole list members from its end (W3C's rule), never half of one: its
 * length becomes that of the part before the last ',' within the bytes kept. Searched 8 bytes at a time from the
 * end, without a branch inside a word: the verifier walks every iteration of a loop, and one per byte cost it
 * ~8,000 instructions. */
static __always_inline __u32 gotel_trim_tracestate(const char *s, __u32 len)
{
	if (len <= GOTEL_TRACESTATE_MAX)
		return len;
	for (int w = GOTEL_TRACESTATE_MAX / 8 - 1; w >= 0; w--) {
		__u64 word;
		__builtin_memcpy(&word, s + w * 8, 8);
		/* bit 8b of each byte b (little-endian) that is ',' (exact: no carries cross bytes) */
		__u64 x = word ^ 0x2c2c2c2c2c2c2c2cULL;
		__u64 m = ~(((x & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | x | 0x7f7f7f7f7f7f7f7fULL) >> 7;
		if (!m)
			continue;
		/* the highest such bit, by halves: only multiples of 8 are set */
		__u64 s32 = GOTEL_NONZERO(m >> 32) << 5;
		m >>= s32;
		__u64 s16 = GOTEL_NONZERO(m >> 16) << 4;
		m >>= s16;
		__u64 s8 = GOTEL_NONZERO(m >> 8) << 3;
		return w * 8 + (s32 + s16 + s8) / 8;
	}
	return 0;
}

/* ---- the same as HTTP/1 header lines: "Traceparent: <value>\r\n" and, when there is one, "Tracestate: ...\r\n" ---- */
#define GOTEL_HTTP1_TRACEPARENT_LINE (13 + GOTEL_TRACEPARENT_LEN + 2)
#define GOTEL_HTTP1_TRACE_LINES_MAX (GOTEL_HTTP1_TRACEPARENT_LINE + 12 + GOTEL_TRACESTATE_MAX + 2)

/* Writes sc's header lines to line (1024 bytes, a power of two for the verifier's bounds); returns their size. */
static __always_inline __u64 gotel_http1_trace_lines(char *line, const struct gotel_span_context *sc)
{
	__builtin_memcpy(line, "Traceparent: ", 13);
	gotel_format_traceparent(line + 13, sc);
	line[13 + GOTEL_TRACEPARENT_LEN] = '\r';
	line[14 + GOTEL_TRACEPARENT_LEN] = '\n';
	__u64 size = GOTEL_HTTP1_TRACEPARENT_LINE;
	__u64 ts = sc->tracestate_len;
	if (ts > GOTEL_TRACESTATE_MAX)
		ts = GOTEL_TRACESTATE_MAX;
	barrier_var(ts); /* keep the clamp where the verifier sees it */
	if (ts > 0) {
		char *t = line + GOTEL_HTTP1_TRACEPARENT_LINE;
		__builtin_memcpy(t, "Tracestate: ", 12);
		bpf_probe_read_kernel(t + 12, ts, sc->tracestate);
		line[(GOTEL_HTTP1_TRACEPARENT_LINE + 12 + ts) & 1023] = '\r';
		line[(GOTEL_HTTP1_TRACEPARENT_LINE + 13 + ts) & 1023] = '\n';
		size += 14 + ts;
	}
	barrier_var(size);
	return size;
}

#endif
