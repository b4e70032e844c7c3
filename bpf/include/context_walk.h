/* Finding the span a Go call belongs to: the walk along its context.Context towards the root (trace_context.h says
 * how spans are recorded under contexts, and why the walk looks where it does). Its own header: the walk is a
 * global function, and libbpf would take it for a program of an object that has none (core.bpf.o). */
#ifndef GOTEL_CONTEXT_WALK_H
#define GOTEL_CONTEXT_WALK_H

#include "trace_context.h"

#define GOTEL_CTX_WALK_MAX 32

#define GOTEL_VALUE_CTX_KEY 16

/* 1 when types <= t < etypes, without a branch (addresses stay below 2^47, so no difference reaches the sign bit) */
static __always_inline __u64 gotel_in_types(__u64 t, __u64 types, __u64 etypes)
{
	__s64 d = t - types;
	return (__u64)(~d & (d - (__s64)(etypes - types))) >> 63;
}

/* The span pointer a context.valueCtx at ctx carries as its value, or 0 when ctx does not look like one: its key's
 * and value's types must lie in [types, etypes). Without a branch: the verifier walks each iteration of the context
 * walk once per path through it, and with a branch per comparison database/sql's query entry program cost it 6,660
 * instructions processed instead of 4,990. */
static __always_inline __u64 gotel_context_value(__u64 types, __u64 etypes, __u64 ctx)
{
	struct {
		struct go_iface key, val; /* any: (type, data) */
	} kv;
	/* a failed read leaves zeros, which lie outside the types */
	bpf_probe_read_user(&kv, sizeof(kv), (const void *)(ctx + GOTEL_VALUE_CTX_KEY));
	return kv.val.data & -(gotel_in_types(kv.key.tab, types, etypes) & gotel_in_types(kv.val.tab, types, etypes));
}

/* The context under which the span of ctx or of the nearest of its ancestors is recorded, or 0. A global (not
 * inlined) function: the kernel verifies its walk once per program, on its own, instead of along every path of the
 * program that calls it (the net/http client's entry program: 18,842 -> 12,415 instructions processed).
 * Kernels before 5.12 take only scalar arguments. */
__attribute__((noinline)) __u64 gotel_parent_ctx(__u32 tgid, __u64 ctx)
{
	struct gotel_ctx_key k = {.tgid = tgid};
	/* as scalars, not through the map value's pointer: fewer instructions processed (measured with the lookup
	 * of 0 below: 3,603 against 3,780 for database/sql's query entry) */
	__u64 types = 0, etypes = 0;
	const struct gotel_api_process *api = bpf_map_lookup_elem(&gotel_api_tgids, &tgid);
	if (api) {
		types = api->types;
		etypes = api->etypes;
	}
	for (int i = 0; i < GOTEL_CTX_WALK_MAX && ctx; i++) {
		k.ctx = ctx;
		if (bpf_map_lookup_elem(&gotel_spans_by_ctx, &k))
			return ctx;
		if (types) {
			/* 0 when ctx is no valueCtx carrying a span. Not looked up then: looking up 0 too (nothing is
			 * recorded under it) would spare the verifier ~1,400 instructions per program (3,603 instead of
			 * 4,990 for database/sql's query entry), at one lookup more per hop of every call in processes
			 * that use the API */
			k.ctx = gotel_context_value(types, etypes, ctx);
			if (k.ctx && bpf_map_lookup_elem(&gotel_spans_by_ctx, &k))
				return k.ctx;
		}
		/* the embedded parent Context: (itab, data). Background and TODO have none: their first word, read as an
		 * itab, is zero (a zero-size struct at runtime.zerobase, or an emptyCtx int before Go 1.21) */
		struct go_iface parent = {};
		if (bpf_probe_read_user(&parent, sizeof(parent), (const void *)ctx) || !parent.tab || parent.data == ctx)
			return 0;
		ctx = parent.data;
	}
	return 0;
}

/* The span recorded for ctx or the nearest of its ancestors, or NULL. */
static __always_inline struct gotel_span_context *gotel_find_parent(__u32 tgid, __u64 ctx)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = gotel_parent_ctx(tgid, ctx)};
	return k.ctx ? bpf_map_lookup_elem(&gotel_spans_by_ctx, &k) : NULL;
}

#endif
