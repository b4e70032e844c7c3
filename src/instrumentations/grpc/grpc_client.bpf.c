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
 *
 * Context injection (DESIGN.md decision 9), only where the kernel allows writing into the target: grpc
 * builds a call's header fields in (*http2Client).createHeaderFields on the call's goroutine (inside the
 * first withRetry, which notes the call's span for its goroutine), and its loopy writer goroutine HPACK-encodes
 * them in (*loopyWriter).writeHeader into its bytes.Buffer, one (*hpack.Encoder).WriteField per field. A RET
 * probe of createHeaderFields ties the slice of fields to the span (unless the application put a traceparent
 * in the metadata itself); writeHeader's entry finds it by that slice; at the first WriteField of a field that
 * is not a pseudo-header (HTTP/2 wants those first) a literal header field "traceparent: …" (HPACK, not
 * indexed, so the encoder's dynamic table is untouched) is appended to the buffer when it has room, and the
 * buffer's length grown by it; the encoder writes the field after it and grpc sends the block as it finds it.
 * The buffer's bytes are not scanned by the garbage collector, and nothing outside its length is touched.
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
#include "same_host.h"
#include "grpc_status.h"

char LICENSE[] SEC("license") = "GPL";

#define METHOD_MAX 128
#define TARGET_MAX 128
#define ERROR_TEXT_MAX 8

struct grpc_client_config {
	__u64 client_conn_target; /* grpc.ClientConn.target (string: the dial target) */
	__u64 error_string_s;     /* errors.errorString.s: io.EOF's text */
	__u64 loopy_hbuf;         /* transport.loopyWriter.hBuf (*bytes.Buffer): where the header block is encoded */
	__u64 buffer_buf;         /* bytes.Buffer.buf ([]byte) */
	__u64 header_field_name;  /* x/net hpack.HeaderField.Name */
	__u64 header_field_size;  /* the size of an hpack.HeaderField: the slice's stride */
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

/* a header block to inject into: the context, and the loopy writer's encoding buffer */
struct grpc_inject_pending {
	struct inject_context sc;
	__u64 buffer;
};

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

/* Injection (LRU: what a call never reaches ages out): (tgid, goroutine) -> the call whose stream it is making;
 * (tgid, header fields' array) -> its context until the loopy writer encodes them; (tgid, loopy goroutine) ->
 * the block being encoded. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct inject_context);
} grpc_client_current SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct inject_context);
} grpc_client_fields SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct gotel_ctx_key);
	__type(value, struct grpc_inject_pending);
} grpc_client_pending SEC(".maps");

struct scratch {
	struct grpc_client_inflight inflight;
	char literal[128];
	struct gotel_span_context link;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} grpc_client_scratch SEC(".maps");

#define HEADER_FIELDS_MAX 32

static __always_inline int on_new_stream(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct grpc_client_config *cfg = bpf_map_lookup_elem(&grpc_client_config, &tgid);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&grpc_client_scratch, &zero);
	if (!cfg || !s)
		return 0;
	struct grpc_client_inflight *f = &s->inflight;
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

/* The goroutine is about to make the call's first stream: note its context for createHeaderFields. */
static __always_inline void note_current(struct gotel_ctx_key *goroutine, const struct gotel_span_context *call)
{
	struct inject_context sc = {.flags = call->flags};
	__builtin_memcpy(sc.trace_id, call->trace_id, 16);
	__builtin_memcpy(sc.span_id, call->span_id, 8);
	bpf_map_update_elem(&grpc_client_current, goroutine, &sc, BPF_ANY);
}

static __always_inline int on_with_retry(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct grpc_client_inflight *f = bpf_map_lookup_elem(&grpc_client_inflight, &key);
	/* later calls (each SendMsg and RecvMsg, on any goroutine) find no entry under their goroutine: only the
	 * first moves it. The context noted for the goroutine serves the streams made inside this first call,
	 * transparent retries included; an attempt a later SendMsg or RecvMsg retries goes without it */
	if (!f || f->stream)
		return 0;
	__u64 cs = go_arg(ctx, 1);
	f->stream = cs;
	if (gotel_propagation & (GOTEL_PROPAGATION_INJECT | GOTEL_PROPAGATION_SAME_HOST))
		note_current(&key, &f->event.sc);
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

/* createHeaderFields' results, ([]hpack.HeaderField, error) = AX, BX, CX, DI, SI: at the Jcc where NewStream
 * tests the error, or at createHeaderFields' RETs (client-plan.ts); the fields are nil on an error */
static __always_inline int on_header_fields(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key current = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct inject_context *sc = bpf_map_lookup_elem(&grpc_client_current, &current);
	struct grpc_client_config *cfg = bpf_map_lookup_elem(&grpc_client_config, &tgid);
	__u64 fields = go_arg(ctx, 1);
	__s64 n = go_arg(ctx, 2);
	if (!sc || !cfg || !fields || !cfg->header_field_size || cfg->header_field_name == GOTEL_OFFSET_ABSENT)
		return 0;
	for (int i = 0; i < HEADER_FIELDS_MAX && i < n; i++) {
		struct go_string name = {};
		if (bpf_probe_read_user(&name, sizeof(name), (const void *)(fields + i * cfg->header_field_size + cfg->header_field_name)))
			break;
		if (go_string_is(name.ptr, name.len, "traceparent", 11)) {
			/* the application propagates itself: its header wins */
			gotel_count(GOTEL_COUNTER_INJECT_PRESENT);
			return 0;
		}
	}
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = fields};
	bpf_map_update_elem(&grpc_client_fields, &k, sc, BPF_ANY);
	return 0;
}

/* writeHeader(l, streamID, endStream, hf, onWrite): l = 1, hf = 4-6; on the loopy writer's goroutine */
static __always_inline int on_write_header(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key loopy = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	bpf_map_delete_elem(&grpc_client_pending, &loopy);
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = go_arg(ctx, 4)};
	struct inject_context *sc = bpf_map_lookup_elem(&grpc_client_fields, &k);
	struct grpc_client_config *cfg = bpf_map_lookup_elem(&grpc_client_config, &tgid);
	if (!sc || !cfg)
		return 0;
	struct grpc_inject_pending p = {.sc = *sc, .buffer = read_u64_at(go_arg(ctx, 1), cfg->loopy_hbuf)};
	bpf_map_delete_elem(&grpc_client_fields, &k);
	/* a request's block starts with :method; anything else (a response whose fields reuse the memory of a call
	 * that never reached here) is left alone */
	struct go_string first = {};
	if (bpf_probe_read_user(&first, sizeof(first), (const void *)(k.ctx + cfg->header_field_name)) ||
	    !go_string_is(first.ptr, first.len, ":method", 7))
		return 0;
	if (p.buffer)
		bpf_map_update_elem(&grpc_client_pending, &loopy, &p, BPF_ANY);
	return 0;
}

/* Same-host linking (same_host.h), where writing is refused: writeHeader(l, streamID, endStream, hf, onWrite)'s
 * entry files the call's span for the loopy writer's next send, under the stream id (arg 2). Writes nothing. */
static __always_inline int on_link_header(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = go_arg(ctx, 4)};
	struct inject_context *sc = bpf_map_lookup_elem(&grpc_client_fields, &k);
	struct grpc_client_config *cfg = bpf_map_lookup_elem(&grpc_client_config, &tgid);
	if (!sc || !cfg)
		return 0;
	struct inject_context call = *sc;
	bpf_map_delete_elem(&grpc_client_fields, &k);
	/* a request's block starts with :method (as for injection) */
	struct go_string first = {};
	if (bpf_probe_read_user(&first, sizeof(first), (const void *)(k.ctx + cfg->header_field_name)) ||
	    !go_string_is(first.ptr, first.len, ":method", 7))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&grpc_client_scratch, &zero);
	if (s)
		gotel_link_stream(tgid, go_goroutine(ctx), (__u32)go_arg(ctx, 2), call.trace_id, call.span_id, call.flags, 1, &s->link);
	return 0;
}

/* (*hpack.Encoder).WriteField(e, f): f.Name = 2-3; before the block's first field that is not a pseudo-header */
static __always_inline int on_write_field(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key loopy = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct grpc_inject_pending *p = bpf_map_lookup_elem(&grpc_client_pending, &loopy);
	if (!p)
		return 0;
	char first = 0;
	if ((__s64)go_arg(ctx, 3) > 0 && bpf_probe_read_user(&first, 1, (const void *)go_arg(ctx, 2)) == 0 && first == ':')
		return 0;
	struct grpc_client_config *cfg = bpf_map_lookup_elem(&grpc_client_config, &tgid);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&grpc_client_scratch, &zero);
	struct go_slice buf = {};
	__u64 at = p->buffer;
	if (!cfg || !s || cfg->buffer_buf == GOTEL_OFFSET_ABSENT ||
	    bpf_probe_read_user(&buf, sizeof(buf), (const void *)(at + cfg->buffer_buf)) ||
	    !buf.ptr || buf.len < 0 || buf.len + INJECT_HPACK_LEN > buf.cap) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		bpf_map_delete_elem(&grpc_client_pending, &loopy);
		return 0;
	}
	char *l = s->literal;
	inject_hpack_traceparent(l, &p->sc);
	bpf_map_delete_elem(&grpc_client_pending, &loopy);
	/* the bytes first, then the length that makes them part of the block */
	__s64 grown = buf.len + INJECT_HPACK_LEN;
	if (inject_write_user((void *)(buf.ptr + buf.len), l, INJECT_HPACK_LEN) ||
	    inject_write_user((void *)(at + cfg->buffer_buf + 8), &grown, sizeof(grown))) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		return 0;
	}
	gotel_count(GOTEL_COUNTER_INJECTED);
	return 0;
}

GOTEL_UPROBE(grpc_client_new_stream, on_new_stream)
GOTEL_UPROBE(grpc_client_with_retry, on_with_retry)
GOTEL_UPROBE(grpc_client_finish, on_finish)
GOTEL_UPROBE(grpc_client_new_stream_return, on_new_stream_return)
GOTEL_UPROBE(grpc_client_inject_fields, on_header_fields)
GOTEL_UPROBE(grpc_client_inject_header, on_write_header)
GOTEL_UPROBE(grpc_client_inject_field, on_write_field)
/* the same RET of createHeaderFields, and writeHeader's entry, for same-host linking: nothing written */
GOTEL_UPROBE(grpc_client_link_fields, on_header_fields)
GOTEL_UPROBE(grpc_client_link_header, on_link_header)
