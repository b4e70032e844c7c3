/* gRPC client spans: one CLIENT span per RPC made through google.golang.org/grpc, unary (ClientConn.Invoke)
 * or streaming (ClientConn.NewStream): both go through newClientStream, and every RPC grpc starts ends in
 * exactly one (*clientStream).finish, whichever goroutine ends it (the caller's RecvMsg seeing the status, a
 * failed SendMsg, or grpc's own goroutine when the call's context is cancelled).
 *
 *   grpc.newClientStream(ctx, desc, cc, method, opts...)   ctx = 1-2, cc = 4, method = 5-6
 *       starts the span (a child of the span recorded for ctx or an ancestor of it, else a new trace),
 *       keyed by the goroutine until the stream exists;
 *   grpc.(*clientStream).withRetry(cs, …)                   cs = 1
 *       its first call, on the same goroutine right after the stream was made, re-keys the span by cs;
 *   grpc.(*clientStream).finish(cs, err)                     cs = 1, err = 2-3
 *       ends it with err: nil or io.EOF is OK, a *status.Error carries the status;
 *   every RET of newClientStream                             err = result words 3-4
 *       ends a call that failed before its stream existed (no resolved address before the deadline, a
 *       closing connection): its span was never re-keyed. The one probe here that is single-stepped.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "probe.h"
#include "trace_context.h"
#include "grpc_status.h"

char LICENSE[] SEC("license") = "GPL";

#define METHOD_MAX 128
#define TARGET_MAX 128
#define ERROR_TEXT_MAX 8

struct grpc_client_config {
	__u64 client_conn_target; /* grpc.ClientConn.target (string: the dial target) */
	__u64 error_string_s;     /* errors.errorString.s: io.EOF's text */
	struct grpc_status_offsets status;
};

struct grpc_client_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__u64 error_type;       /* runtime type of the error the call ended with; 0: none */
	__s64 code;             /* read as if the error were a *status.Error */
	__u32 method_len;
	__u32 target_len;
	__u32 message_len;
	__u32 error_text_len;
	char method[METHOD_MAX];
	char target[TARGET_MAX];
	char message[GRPC_MESSAGE_MAX];
	char error_text[ERROR_TEXT_MAX]; /* read as if the error were an *errors.errorString (io.EOF) */
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

struct grpc_client_inflight {
	__u64 stream; /* the *clientStream it is keyed by; 0 while keyed by its goroutine */
	struct grpc_client_event event;
};

GOTEL_BTF_TYPE(grpc_client_event, struct grpc_client_event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct grpc_client_config);
} grpc_client_config SEC(".maps");

/* (tgid, goroutine) while newClientStream runs, then (tgid, *clientStream) until finish. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct grpc_client_inflight);
} grpc_client_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct grpc_client_inflight);
} grpc_client_scratch SEC(".maps");

static __always_inline int on_new_stream(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct grpc_client_config *cfg = bpf_map_lookup_elem(&grpc_client_config, &tgid);
	__u32 zero = 0;
	struct grpc_client_inflight *f = bpf_map_lookup_elem(&grpc_client_scratch, &zero);
	if (!cfg || !f)
		return 0;
	__builtin_memset(f, 0, __builtin_offsetof(typeof(*f), event.sc.tracestate));
	__u64 g = go_goroutine(ctx);
	struct grpc_client_event *e = &f->event;
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);
	e->method_len = go_read_bytes(e->method, METHOD_MAX, go_arg(ctx, 5), (__s64)go_arg(ctx, 6));
	READ_STRING_FIELD(e->target, e->target_len, go_arg(ctx, 4), cfg->client_conn_target);
	struct gotel_span_context *parent = gotel_find_parent(tgid, go_arg(ctx, 2));
	if (parent)
		__builtin_memcpy(e->parent_span_id, parent->span_id, 8);
	gotel_start_span(&e->sc, parent);
	gotel_inflight_put(&grpc_client_inflight, tgid, g, f);
	return 0;
}

static __always_inline int on_with_retry(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct grpc_client_inflight *f = bpf_map_lookup_elem(&grpc_client_inflight, &key);
	if (!f || f->stream)
		return 0;
	__u64 cs = go_arg(ctx, 1);
	f->stream = cs;
	/* a retry later on another goroutine finds no entry under its goroutine: only this first call moves it */
	gotel_inflight_put(&grpc_client_inflight, tgid, cs, f);
	bpf_map_delete_elem(&grpc_client_inflight, &key);
	return 0;
}

/* Ends the call in flight under key with the error (itab, data). */
static __always_inline void finish_call(struct gotel_ctx_key *key, __u64 err_tab, __u64 err)
{
	struct grpc_client_inflight *f = bpf_map_lookup_elem(&grpc_client_inflight, key);
	if (!f)
		return;
	struct grpc_client_event *e = &f->event;
	if (!(e->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		bpf_map_delete_elem(&grpc_client_inflight, key);
		return;
	}
	e->hdr.end_ns = bpf_ktime_get_ns();
	struct grpc_client_config *cfg = bpf_map_lookup_elem(&grpc_client_config, &key->tgid);
	if (err_tab) {
		e->error_type = read_u64_at(err_tab, 8); /* itab._type */
		if (!e->error_type)
			e->error_type = 1;
		if (cfg) {
			e->message_len = grpc_read_status(&cfg->status, read_u64_at(err, cfg->status.error_s), &e->code, e->message);
			READ_STRING_FIELD(e->error_text, e->error_text_len, err, cfg->error_string_s);
		}
	}
	gotel_emit_span(e);
	bpf_map_delete_elem(&grpc_client_inflight, key);
}

static __always_inline int on_finish(const void *ctx)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_arg(ctx, 1)};
	finish_call(&key, go_arg(ctx, 2), go_arg(ctx, 3));
	return 0;
}

static __always_inline int on_new_stream_return(const void *ctx)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	__u64 err_tab = go_arg(ctx, 3);
	/* a stream that was made moved its span already; without an error nothing was started here */
	if (err_tab) {
		finish_call(&key, err_tab, go_arg(ctx, 4));
	} else if (bpf_map_delete_elem(&grpc_client_inflight, &key) == 0) {
		/* a stream made without grpc's own retry loop (a release gotel does not know): its span is lost */
		gotel_count(GOTEL_COUNTER_INFLIGHT_LOST);
	}
	return 0;
}

GOTEL_UPROBE(grpc_client_new_stream, on_new_stream)
GOTEL_UPROBE(grpc_client_with_retry, on_with_retry)
GOTEL_UPROBE(grpc_client_finish, on_finish)
GOTEL_UPROBE(grpc_client_new_stream_return, on_new_stream_return)
