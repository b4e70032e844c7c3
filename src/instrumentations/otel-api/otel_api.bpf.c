/* Spans the application makes through the OpenTelemetry Go API. go.opentelemetry.io/auto/sdk (and its copy
 * inside go.opentelemetry.io/otel/trace, autoTracer/autoSpan) is an SDK made for this: each Start calls a
 * no-op (*tracer).start the agent probes, and each End marshals the whole span (name, kind, times, attributes,
 * events, links, status, its tracer's name/version/schema URL) as OTLP/JSON into a buffer it hands to the no-op
 * (*span).ended. The global tracer of go.opentelemetry.io/otel (>= v1.33.0) and the provider of a span-less
 * context (otel/trace >= v1.35.1) send their spans there once a bool the library exports for the agent is true;
 * user space sets it (otel-api/probe.ts).
 *
 *   (*tracer).start(t, ctx, spanPtr, psc, sampled, sc)     ctx = 2-3, spanPtr = 4
 *       makes the span's context in the kernel (a child of the span recorded for ctx or an ancestor of it, else
 *       a new trace, sampled like every root) and records it under spanPtr: in flight, and in the shared context
 *       map, where calls made with a context holding the span find it (trace_context.h looks at the value of a
 *       context.valueCtx for processes in gotel_api_tgids);
 *   (*span).ended(s, buf)                                   s = 1, buf = 2-3
 *       sends the span's context, its parent and the JSON; the rest is user space's.
 *   (*tracer).newSpan(t, ctx, autoSpan, …) / noopSpan.tracerProvider(autoEnabled)   flag = 4 / 3
 *       only where the binary has no symbol table: reports where the library's bool is, once per process.
 *
 * Where the kernel allows bpf_probe_write_user, otel_api_start_inject also writes the span's trace ID, span ID
 * and flags into *sc, and its parent's into *psc: the SDK copies them into the span, so the application sees
 * (span.SpanContext(), its logs) the IDs gotel exports. Plain bytes of trace.SpanContext in the caller's frame:
 * nothing the garbage collector scans. `sampled` is left true: an unsampled span still reaches ended, where it
 * is counted and its entries dropped. Where the kernel refuses (lockdown), the application sees a zero span
 * context, and gotel's IDs are the exported ones.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "probe.h"
#include "trace_context.h"
#include "context_walk.h"
#include "inject.h"

char LICENSE[] SEC("license") = "GPL";

/* go.opentelemetry.io/otel/trace.SpanContext's fields, for the writes (absent: none) */
struct otel_api_config {
	__u64 span_context_trace_id;
	__u64 span_context_span_id;
	__u64 span_context_trace_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct otel_api_config);
} otel_api_config SEC(".maps");

/* A span's JSON as the application marshalled it; a bigger one is lost and counted (OTEL_API_COUNTER_TOO_LARGE). */
#define JSON_MAX 16000

/* Its own reasons for losing spans (gotel_count_own; named in src/instrumentations/index.ts) */
enum otel_api_counter {
	OTEL_API_COUNTER_TOO_LARGE = 0,   /* a span bigger than an event carries, or unreadable */
	OTEL_API_COUNTER_SWITCHED_OFF = 1, /* started before gotel could switch the API on (binaries without a symbol
					    * table) */
};
GOTEL_BTF_TYPE(otel_api_counter, enum otel_api_counter);

enum otel_api_event_kind {
	OTEL_API_SPAN = 1, /* a span ended */
	OTEL_API_FLAG = 2, /* where the library's "auto-instrumentation attached" bool is (flag) */
};
GOTEL_BTF_TYPE(otel_api_event_kind, enum otel_api_event_kind);

struct otel_api_event {
	struct gotel_event_header hdr;
	__u32 kind;             /* enum otel_api_event_kind */
	__u32 json_len;
	__u64 flag;             /* OTEL_API_FLAG: the bool's address */
	__u8 parent_span_id[8]; /* zero: a root span */
	struct gotel_span_context sc;
	char json[JSON_MAX]; /* last: sent up to json_len */
};
GOTEL_BTF_TYPE(otel_api_event, struct otel_api_event);

/* what start leaves for ended */
struct otel_api_inflight {
	__u8 parent_span_id[8];
	__u64 start_ns;
	struct gotel_span_context sc;
};

/* (tgid, span pointer) -> the span started there, until it ends. LRU: a span the application never ends ages
 * out (the SDK would not export it either). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct otel_api_inflight);
} otel_api_inflight SEC(".maps");

/* (tgid, bool address) already reported */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct gotel_ctx_key);
	__type(value, __u8);
} otel_api_flags SEC(".maps");

struct scratch {
	struct otel_api_inflight inflight;
	struct otel_api_event event;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} otel_api_scratch SEC(".maps");

static __always_inline struct scratch *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&otel_api_scratch, &zero);
}

/* Makes the span's context and records it; the parent's context is copied to `parent` (zero IDs: none). NULL
 * when nothing was recorded. */
static __always_inline struct otel_api_inflight *start_span(const void *ctx, struct scratch *s, struct inject_context *parent)
{
	__u64 span = go_arg(ctx, 4);
	if (!span)
		return NULL;
	__u32 tgid = gotel_current_tgid();
	struct otel_api_inflight *f = &s->inflight;
	__builtin_memset(f, 0, __builtin_offsetof(typeof(*f), sc.tracestate));
	f->start_ns = bpf_ktime_get_ns();
	struct gotel_span_context *p = gotel_find_parent(tgid, go_arg(ctx, 3));
	if (p) {
		__builtin_memcpy(f->parent_span_id, p->span_id, 8);
		__builtin_memcpy(parent->trace_id, p->trace_id, 16);
		__builtin_memcpy(parent->span_id, p->span_id, 8);
		parent->flags = p->flags;
	}
	gotel_start_span(&f->sc, p);
	if (gotel_inflight_put(&otel_api_inflight, tgid, span, f))
		return NULL;
	gotel_track(tgid, span, &f->sc);
	return f;
}

static __always_inline int on_start(const void *ctx)
{
	struct scratch *s = scratch();
	struct inject_context parent = {};
	if (s)
		start_span(ctx, s, &parent);
	return 0;
}

/* Writes IDs and flags into the trace.SpanContext at dst. */
static __always_inline void write_span_context(__u64 dst, const struct otel_api_config *cfg, const __u8 *trace_id, const __u8 *span_id, __u8 flags)
{
	if (!dst || cfg->span_context_trace_id == GOTEL_OFFSET_ABSENT || cfg->span_context_span_id == GOTEL_OFFSET_ABSENT ||
	    cfg->span_context_trace_flags == GOTEL_OFFSET_ABSENT)
		return;
	inject_write_user((void *)(dst + cfg->span_context_trace_id), trace_id, 16);
	inject_write_user((void *)(dst + cfg->span_context_span_id), span_id, 8);
	inject_write_user((void *)(dst + cfg->span_context_trace_flags), &flags, 1);
}

static __always_inline int on_start_inject(const void *ctx)
{
	struct scratch *s = scratch();
	struct inject_context parent = {};
	__u32 tgid = gotel_current_tgid();
	struct otel_api_config *cfg = bpf_map_lookup_elem(&otel_api_config, &tgid);
	if (!s || !cfg)
		return 0;
	struct otel_api_inflight *f = start_span(ctx, s, &parent);
	if (!f)
		return 0;
	/* psc = 5, sc = 7 */
	if (parent.span_id[0] | parent.span_id[1] | parent.span_id[2] | parent.span_id[3] | parent.span_id[4] | parent.span_id[5] |
	    parent.span_id[6] | parent.span_id[7])
		write_span_context(go_arg(ctx, 5), cfg, parent.trace_id, parent.span_id, parent.flags);
	write_span_context(go_arg(ctx, 7), cfg, f->sc.trace_id, f->sc.span_id, f->sc.flags);
	return 0;
}

static __always_inline int on_ended(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_arg(ctx, 1)};
	struct otel_api_inflight *f = bpf_map_lookup_elem(&otel_api_inflight, &key);
	struct scratch *s = scratch();
	if (!f || !s)
		return 0; /* started before gotel attached: the application's context is not gotel's */
	__u64 len = go_arg(ctx, 3);
	if (!(f->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
	} else if (len == 0 || len > JSON_MAX) {
		gotel_count_own(OTEL_API_COUNTER_TOO_LARGE);
	} else {
		struct otel_api_event *e = &s->event;
		gotel_fill_header(&e->hdr, gotel_event_type_id, go_goroutine(ctx));
		e->hdr.start_ns = f->start_ns;
		e->kind = OTEL_API_SPAN;
		e->flag = 0;
		__builtin_memcpy(e->parent_span_id, f->parent_span_id, 8);
		bpf_probe_read_kernel(&e->sc, sizeof(e->sc), &f->sc);
		if (bpf_probe_read_user(e->json, len, (const void *)go_arg(ctx, 2)) == 0) {
			e->json_len = len;
			gotel_emit(e, __builtin_offsetof(struct otel_api_event, json) + len);
		} else {
			gotel_count_own(OTEL_API_COUNTER_TOO_LARGE);
		}
	}
	gotel_untrack(tgid, key.ctx);
	bpf_map_delete_elem(&otel_api_inflight, &key);
	return 0;
}

/* Reports the bool at arg n once per process while it is false. Each newSpan until user space has set it starts
 * a span the application does not record, counted (per_span); the tracers a provider hands out meanwhile make any
 * number of them, which cannot be. */
static __always_inline int report_flag(const void *ctx, const int n, const int per_span)
{
	__u64 flag = go_arg(ctx, n);
	__u8 on = 1;
	if (!flag || bpf_probe_read_user(&on, 1, (const void *)flag) || on)
		return 0;
	if (per_span)
		gotel_count_own(OTEL_API_COUNTER_SWITCHED_OFF);
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = flag};
	if (bpf_map_update_elem(&otel_api_flags, &key, &on, BPF_NOEXIST))
		return 0;
	struct scratch *s = scratch();
	if (!s)
		return 0;
	struct otel_api_event *e = &s->event;
	__builtin_memset(e, 0, __builtin_offsetof(struct otel_api_event, sc));
	gotel_fill_header(&e->hdr, gotel_event_type_id, go_goroutine(ctx));
	e->kind = OTEL_API_FLAG;
	e->flag = flag;
	gotel_emit(e, __builtin_offsetof(struct otel_api_event, sc));
	return 0;
}

static __always_inline int on_new_span(const void *ctx) { return report_flag(ctx, 4, 1); }
/* noopSpan embeds the interface embedded.Span: the receiver takes words 1-2 */
static __always_inline int on_tracer_provider(const void *ctx) { return report_flag(ctx, 3, 0); }

GOTEL_UPROBE(otel_api_start, on_start)
GOTEL_UPROBE(otel_api_start_inject, on_start_inject)
GOTEL_UPROBE(otel_api_ended, on_ended)
GOTEL_UPROBE(otel_api_global_flag, on_new_span)
GOTEL_UPROBE(otel_api_trace_flag, on_tracer_provider)

#include "global_tracer_legacy.h"
