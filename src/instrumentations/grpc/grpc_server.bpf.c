/* gRPC server spans: one SERVER span per RPC that google.golang.org/grpc's server handles, unary or streaming,
 * from entry probes only (a RET is single-stepped, ~10x dearer: DESIGN.md decision 8).
 *
 *   transport.(*http2Server).operateHeaders   t = arg 1; frame = arg 2 (< v1.60) or 4 (ctx before it)
 *       runs on the connection's reader goroutine for each HEADERS frame that opens a stream: a W3C
 *       traceparent (and tracestate) among the frame's decoded fields is kept under (transport, stream id)
 *       until that stream's handleStream starts.
 *   grpc.(*Server).handleStream               t = args 2-3 (ServerTransport), stream = arg 4
 *       starts the span (the incoming context's child, else the child of a span recorded on the stream's
 *       context, as when grpc's ServeHTTP serves it inside a net/http handler) and records it under the
 *       stream's context, from which the handler's context descends: calls made with it are its children.
 *   transport.(*http2Server).WriteStatus (< v1.69) / writeStatus, and the same of serverHandlerTransport
 *                                             s = arg 2, st = arg 3 (*status.Status)
 *       ends it with the status the server sends: every path of grpc's server writes one when the RPC ends
 *       (the handler returned, an unknown method, a malformed request), on the handler's goroutine.
 *
 * handleStream's stream is a *transport.Stream before v1.69, a *transport.ServerStream after, which embeds
 * the Stream by pointer until v1.76 and by value from v1.77 (stream_embed).
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
#include "same_host.h"
#include "grpc_status.h"

char LICENSE[] SEC("license") = "GPL";

#define METHOD_MAX 128
#define HEADER_FIELDS_MAX 32

enum grpc_stream_embed {
	GRPC_STREAM_IS_STREAM = 0,   /* < v1.69: handleStream gets the *Stream itself */
	GRPC_STREAM_EMBED_PTR = 1,   /* v1.69 - v1.76: ServerStream{*Stream, …} */
	GRPC_STREAM_EMBED_VALUE = 2, /* >= v1.77: ServerStream{Stream, …} */
};

struct grpc_server_config {
	__u64 stream_method;           /* transport.Stream.method (string) */
	__u64 stream_ctx;              /* transport.Stream.ctx (context.Context) */
	__u64 stream_id;               /* transport.Stream.id (uint32) */
	__u64 server_stream_stream;    /* transport.ServerStream.Stream (>= v1.69) */
	__u64 stream_embed;            /* enum grpc_stream_embed */
	__u64 http2_server_remote_addr; /* transport.http2Server.remoteAddr (net.Addr, older releases) */
	__u64 http2_server_peer;       /* transport.http2Server.peer (peer.Peer, newer releases) */
	__u64 peer_addr;               /* peer.Peer.Addr (net.Addr) */
	__u64 tcp_addr_ip;             /* net.TCPAddr.IP ([]byte) */
	__u64 tcp_addr_port;           /* net.TCPAddr.Port (int) */
	__u64 frame_arg;               /* operateHeaders' frame argument: 2 or 4 */
	__u64 meta_headers_frame;      /* x/net http2.MetaHeadersFrame.HeadersFrame (*HeadersFrame) */
	__u64 meta_fields;             /* http2.MetaHeadersFrame.Fields ([]hpack.HeaderField) */
	__u64 headers_frame_header;    /* http2.HeadersFrame.FrameHeader */
	__u64 frame_stream_id;         /* http2.FrameHeader.StreamID (uint32) */
	__u64 header_field_name;       /* hpack.HeaderField.Name */
	__u64 header_field_value;      /* hpack.HeaderField.Value */
	__u64 header_field_size;       /* the size of an hpack.HeaderField: the slice's stride */
	struct grpc_status_offsets status;
};

struct grpc_server_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__u32 parent_remote;    /* the parent came in the call's traceparent */
	__u32 method_len;
	__s64 code;             /* the status sent; -1 until it is */
	__u64 transport_type;   /* runtime type of handleStream's transport: the peer is read as http2Server's */
	__u64 peer_type;        /* runtime type of the peer's net.Addr: kept only for *net.TCPAddr */
	__s64 peer_port;
	__u32 peer_ip_len;
	__u32 message_len;
	__u8 peer_ip[16];
	char method[METHOD_MAX];
	char message[GRPC_MESSAGE_MAX];
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

struct grpc_server_inflight {
	__u64 ctx; /* the stream's context, under which the span is recorded */
	struct grpc_server_event event;
};

GOTEL_BTF_TYPE(grpc_server_event, struct grpc_server_event);
GOTEL_BTF_TYPE(grpc_stream_embed, enum grpc_stream_embed);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct grpc_server_config);
} grpc_server_config SEC(".maps");

/* Keyed by (tgid, the stream handleStream got): the end is seen by the stream, not the goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct grpc_server_inflight);
} grpc_server_inflight SEC(".maps");

/* (tgid, stream id in pad, transport) -> the context that came in the stream's HEADERS, until handleStream
 * takes it. LRU: a stream refused before its handler (too many streams, a bad header) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_span_context);
} grpc_server_incoming SEC(".maps");

struct scratch {
	struct grpc_server_inflight inflight;
	struct gotel_span_context remote;
	char value[64];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} grpc_server_scratch SEC(".maps");

/* operateHeaders: the W3C context among the stream's header fields (HTTP/2 names are lowercase) */
static __always_inline int on_headers(const void *ctx)
{
	if (!(gotel_propagation & GOTEL_PROPAGATION_EXTRACT))
		return 0;
	__u32 tgid = gotel_current_tgid();
	struct grpc_server_config *cfg = bpf_map_lookup_elem(&grpc_server_config, &tgid);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&grpc_server_scratch, &zero);
	if (!cfg || !s || cfg->meta_fields == GOTEL_OFFSET_ABSENT || !cfg->header_field_size)
		return 0;
	/* both registers read first: selecting which register to read is a variable access to the context,
	 * which the verifier refuses */
	__u64 arg2 = go_arg(ctx, 2), arg4 = go_arg(ctx, 4);
	barrier_var(arg2);
	barrier_var(arg4);
	__u64 frame = cfg->frame_arg == 2 ? arg2 : arg4;
	struct go_slice fields = {};
	if (!frame || bpf_probe_read_user(&fields, sizeof(fields), (const void *)(frame + cfg->meta_fields)))
		return 0;
	struct go_string traceparent = {}, tracestate = {};
	for (int i = 0; i < HEADER_FIELDS_MAX && i < fields.len; i++) {
		__u64 f = fields.ptr + i * cfg->header_field_size;
		struct go_string name = {};
		if (bpf_probe_read_user(&name, sizeof(name), (const void *)(f + cfg->header_field_name)))
			break;
		if (go_string_is(name.ptr, name.len, "traceparent", 11))
			bpf_probe_read_user(&traceparent, sizeof(traceparent), (const void *)(f + cfg->header_field_value));
		else if (go_string_is(name.ptr, name.len, "tracestate", 10))
			bpf_probe_read_user(&tracestate, sizeof(tracestate), (const void *)(f + cfg->header_field_value));
	}
	/* nothing to continue: most calls, where same-host linking is off */
	if (!traceparent.ptr && !(gotel_propagation & GOTEL_PROPAGATION_SAME_HOST))
		return 0;
	__u64 header = read_u64_at(frame, cfg->meta_headers_frame);
	__u32 id = 0;
	if (!header || bpf_probe_read_user(&id, sizeof(id), (const void *)(header + cfg->headers_frame_header + cfg->frame_stream_id)))
		return 0;
	struct gotel_span_context *remote = &s->remote;
	__u64 g = go_goroutine(ctx);
	if (!traceparent.ptr) {
		/* same host (same_host.h): the client's span filed under this connection and stream; this is the
		 * goroutine that reads the connection */
		if (gotel_link_take_stream(tgid, g, id, remote))
			return 0;
	} else {
		gotel_link_take_stream(tgid, g, id, 0); /* its own header wins; nothing stays behind */
		__u32 len = go_read_bytes(s->value, sizeof(s->value), traceparent.ptr, traceparent.len);
		if (len < GOTEL_TRACEPARENT_LEN || traceparent.len > sizeof(s->value) ||
		    gotel_parse_traceparent(s->value, traceparent.len, remote))
			return 0;
		__u32 ts = go_read_bytes(remote->tracestate, GOTEL_TRACESTATE_MAX, tracestate.ptr, tracestate.len);
		remote->tracestate_len = ts;
		if (tracestate.len > GOTEL_TRACESTATE_MAX) /* cut at a member's end (W3C): only when the whole list was not kept */
			remote->tracestate_len = gotel_trim_tracestate(remote->tracestate, tracestate.len);
	}
	struct gotel_ctx_key k = {.tgid = tgid, .pad = id, .ctx = go_arg(ctx, 1)};
	bpf_map_update_elem(&grpc_server_incoming, &k, remote, BPF_ANY);
	return 0;
}

/* The transport.Stream inside what handleStream was given. */
static __always_inline __u64 stream_of(const struct grpc_server_config *cfg, __u64 stream)
{
	if (cfg->stream_embed == GRPC_STREAM_EMBED_PTR)
		return read_u64_at(stream, cfg->server_stream_stream);
	if (cfg->stream_embed == GRPC_STREAM_EMBED_VALUE && cfg->server_stream_stream != GOTEL_OFFSET_ABSENT)
		return stream + cfg->server_stream_stream;
	return stream;
}

/* The peer's address as the HTTP/2 transport holds it (user space keeps it only for that transport). */
static __always_inline void read_peer(const struct grpc_server_config *cfg, __u64 transport, struct grpc_server_event *e)
{
	struct go_iface addr = {};
	__u64 at = cfg->http2_server_peer != GOTEL_OFFSET_ABSENT ? cfg->http2_server_peer + cfg->peer_addr : cfg->http2_server_remote_addr;
	if (!transport || at == GOTEL_OFFSET_ABSENT || (cfg->peer_addr == GOTEL_OFFSET_ABSENT && cfg->http2_server_peer != GOTEL_OFFSET_ABSENT) ||
	    bpf_probe_read_user(&addr, sizeof(addr), (const void *)(transport + at)) || !addr.tab || !addr.data)
		return;
	e->peer_type = read_u64_at(addr.tab, 8); /* itab._type */
	struct go_slice ip = {};
	if (cfg->tcp_addr_ip == GOTEL_OFFSET_ABSENT || bpf_probe_read_user(&ip, sizeof(ip), (const void *)(addr.data + cfg->tcp_addr_ip)))
		return;
	e->peer_ip_len = go_read_bytes(e->peer_ip, sizeof(e->peer_ip), ip.ptr, ip.len);
	e->peer_port = read_u64_at(addr.data, cfg->tcp_addr_port);
}

static __always_inline int on_handle_stream(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct grpc_server_config *cfg = bpf_map_lookup_elem(&grpc_server_config, &tgid);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&grpc_server_scratch, &zero);
	if (!cfg || !s)
		return 0;
	struct grpc_server_inflight *f = &s->inflight;
	/* the tracestate bytes past its length are never read: no need to clear them */
	__builtin_memset(f, 0, __builtin_offsetof(typeof(*f), event.sc.tracestate));

	__u64 server_stream = go_arg(ctx, 4);
	__u64 transport_itab = go_arg(ctx, 2), transport = go_arg(ctx, 3);
	__u64 stream = stream_of(cfg, server_stream);
	struct grpc_server_event *e = &f->event;
	gotel_fill_header(&e->hdr, gotel_event_type_id, go_goroutine(ctx));
	e->code = -1;
	READ_STRING_FIELD(e->method, e->method_len, stream, cfg->stream_method);
	f->ctx = read_u64_at(stream, cfg->stream_ctx + 8); /* the data word of the interface */
	e->transport_type = read_u64_at(transport_itab, 8);
	read_peer(cfg, transport, e);

	struct gotel_span_context *parent = 0;
	__u32 id = 0;
	if (cfg->stream_id != GOTEL_OFFSET_ABSENT)
		bpf_probe_read_user(&id, sizeof(id), (const void *)(stream + cfg->stream_id));
	struct gotel_ctx_key k = {.tgid = tgid, .pad = id, .ctx = transport};
	struct gotel_span_context *remote = bpf_map_lookup_elem(&grpc_server_incoming, &k);
	if (remote) {
		/* copied into the event's own context, where the span starts from it (its trace id, its tracestate) */
		bpf_probe_read_kernel(&e->sc, sizeof(e->sc), remote);
		bpf_map_delete_elem(&grpc_server_incoming, &k);
		parent = &e->sc;
		e->parent_remote = 1;
	} else {
		parent = gotel_find_parent(tgid, f->ctx);
	}
	if (parent)
		__builtin_memcpy(e->parent_span_id, parent->span_id, 8);
	gotel_start_span(&e->sc, parent);

	if (gotel_inflight_put(&grpc_server_inflight, tgid, server_stream, f) == 0) {
		gotel_track(tgid, f->ctx, &e->sc);
		/* the handler runs on this goroutine */
		gotel_track_goroutine(tgid, e->hdr.goroutine, &e->sc);
	}
	return 0;
}

/* WriteStatus / writeStatus: the status the RPC ends with */
static __always_inline int on_write_status(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_arg(ctx, 2)};
	struct grpc_server_inflight *f = bpf_map_lookup_elem(&grpc_server_inflight, &key);
	if (!f)
		return 0;
	gotel_untrack(tgid, f->ctx);
	gotel_untrack_goroutine(tgid, f->event.hdr.goroutine);
	struct grpc_server_event *e = &f->event;
	if (!(e->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		bpf_map_delete_elem(&grpc_server_inflight, &key);
		return 0;
	}
	e->hdr.end_ns = bpf_ktime_get_ns();
	struct grpc_server_config *cfg = bpf_map_lookup_elem(&grpc_server_config, &tgid);
	if (cfg)
		e->message_len = grpc_read_status(&cfg->status, go_arg(ctx, 3), &e->code, e->message);
	gotel_emit_span(e);
	bpf_map_delete_elem(&grpc_server_inflight, &key);
	return 0;
}

GOTEL_UPROBE(grpc_server_headers, on_headers)
GOTEL_UPROBE(grpc_server_handle_stream, on_handle_stream)
GOTEL_UPROBE(grpc_server_write_status, on_write_status)
