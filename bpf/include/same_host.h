/* Same-host linking: a server span continues the client span of another traced process on this host, found
 * through the TCP connection both ends share, without writing anything into either process (DESIGN.md
 * decision 12; lockdown `integrity` refuses bpf_probe_write_user, this needs none of it).
 *
 *   client, HTTP/1: the goroutine that writes a request (net/http.(*Request).write, on the connection's write
 *     loop) records the request's span as pending under (tgid, goroutine);
 *   kernel, tcp_sendmsg (src/propagation/same_host.bpf.c): the first send of that goroutine takes the pending
 *     span and files it under the connection (client address:port, server address:port) — before its bytes
 *     are queued, so before the server can read them;
 *   kernel, tcp_recvmsg: a traced process's goroutine remembers the connection it last read from;
 *   server, HTTP/1: the request's goroutine is the one that read it (net/http's conn.serve), so its last read
 *     names the connection, and the span filed under it is the parent. The server takes it (deletes it): a
 *     client span is the parent of one server span at most, never of a later request on a reused connection.
 *
 * gRPC, by stream: grpc's loopy writer goroutine (one per connection) encodes each call's HEADERS
 *   ((*loopyWriter).writeHeader, with the stream id) and then sends; the span is filed under (connection,
 *   stream id) right there when that goroutine has sent on its connection before (the tracepoint remembers
 *   the connection each sending goroutine last wrote), else it is pending for the goroutine's next send (a
 *   new connection's first batch, up to GOTEL_LINK_STREAMS_MAX streams); the server's reader goroutine reads the
 *   HEADERS frame and, in operateHeaders, takes what was filed under its connection and the frame's stream id.
 *
 * net/http's HTTP/2, by stream too: the client's request goroutine encodes the HEADERS
 *   ((*ClientConn).writeHeaders, with the stream id) and flushes them itself, so the stream is pending for its
 *   next send (never filed under the connection it last wrote: a request goroutine is no connection's own).
 *   The server's stream handlers run on goroutines that read nothing; the connection's serve goroutine is the
 *   one that read the TLS handshake or the preface, so at (*serverConn).serve's entry its last read names the
 *   connection, which the server object keeps under the serverConn; a stream's span finds it through its
 *   ResponseWriter's state (its conn and stream) — nethttp_server.bpf.c.
 *
 * Maps are LRU and small: an entry lives from a request's send to its read.
 */
#ifndef GOTEL_SAME_HOST_H
#define GOTEL_SAME_HOST_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "trace_context.h"

/* One TCP connection seen from its client: IPv4 addresses in the first 4 bytes. Ports in host order. For
 * gRPC, a stream on it (HTTP/1: 0). */
struct gotel_conn_key {
	__u8 client_addr[16];
	__u8 server_addr[16];
	__u16 client_port;
	__u16 server_port;
	__u16 family;
	__u16 pad;
	__u32 stream;
	__u32 pad2;
};

/* The streams whose HEADERS a goroutine encoded since its last send (gRPC's loopy writer batches them). */
#define GOTEL_LINK_STREAMS_MAX 8
struct gotel_link_stream {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
	__u8 pad[3];
	__u32 id; /* 0: an empty slot */
};
struct gotel_link_streams {
	__u32 next; /* the slot the next stream takes: the oldest is overwritten past GOTEL_LINK_STREAMS_MAX */
	__u32 pad;
	struct gotel_link_stream s[GOTEL_LINK_STREAMS_MAX];
};

/* (tgid, goroutine) -> the client span whose request that goroutine is about to send */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_span_context);
} gotel_link_pending SEC(".maps");

/* (tgid, goroutine) -> the gRPC streams whose spans its next send files */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_link_streams);
} gotel_link_pending_streams SEC(".maps");

/* (tgid, goroutine) -> the connection that goroutine last wrote to (gRPC's loopy writers: one connection each) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_conn_key);
} gotel_conn_writes SEC(".maps");

/* connection -> the client span of the request last sent on it, until the server's span takes it */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_conn_key);
	__type(value, struct gotel_span_context);
} gotel_conn_links SEC(".maps");

/* (tgid, goroutine) -> the connection that goroutine last read from */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_conn_key);
} gotel_conn_reads SEC(".maps");

/* What of a traced process is looked at: its socket writes (an HTTP/1 client is attached), for same-host
 * linking (SENDS) or socket insertion (INSERTS, socket_insert.h), for the streams pending on a goroutine
 * (STREAMS: HTTP/2 and gRPC clients), or for the connection each goroutine writes (WRITERS: gRPC's loopy
 * writers); its reads (a server). */
enum gotel_link_role {
	GOTEL_LINK_SENDS = 1,
	GOTEL_LINK_READS = 2,
	GOTEL_LINK_INSERTS = 4,
	GOTEL_LINK_STREAMS = 8,
	GOTEL_LINK_WRITERS = 16,
};

/* traced process -> enum gotel_link_role bits (user space adds and removes them) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} gotel_link_tgids SEC(".maps");

/* Client side: the span of the request this goroutine is writing, for the send that follows. */
static __always_inline void gotel_link_pending_put(__u32 tgid, __u64 goroutine, const struct gotel_span_context *sc)
{
	if (!(gotel_propagation & (GOTEL_PROPAGATION_SAME_HOST | GOTEL_PROPAGATION_SOCKET)))
		return;
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = goroutine};
	bpf_map_update_elem(&gotel_link_pending, &k, sc, BPF_ANY);
}

/* Client side, by stream: the span of a stream this goroutine encodes the HEADERS of, pending for the send that
 * follows; or, on a goroutine that writes one connection all its life (writer: gRPC's loopy writer), filed
 * under the connection it last wrote, when it wrote one (sc: a scratch span context to file it from). */
static __always_inline void gotel_link_stream(__u32 tgid, __u64 goroutine, __u32 stream, const __u8 *trace_id,
					      const __u8 *span_id, __u8 flags, int writer, struct gotel_span_context *sc)
{
	if (!(gotel_propagation & GOTEL_PROPAGATION_SAME_HOST) || !stream)
		return;
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = goroutine};
	struct gotel_conn_key *wrote = writer ? bpf_map_lookup_elem(&gotel_conn_writes, &k) : 0;
	if (wrote && sc) {
		struct gotel_conn_key conn = *wrote;
		conn.stream = stream;
		__builtin_memcpy(sc->trace_id, trace_id, 16);
		__builtin_memcpy(sc->span_id, span_id, 8);
		sc->flags = flags;
		sc->tracestate_len = 0;
		bpf_map_update_elem(&gotel_conn_links, &conn, sc, BPF_ANY);
		return;
	}
	struct gotel_link_streams *p = bpf_map_lookup_elem(&gotel_link_pending_streams, &k);
	if (!p) {
		struct gotel_link_streams empty = {};
		bpf_map_update_elem(&gotel_link_pending_streams, &k, &empty, BPF_NOEXIST);
		p = bpf_map_lookup_elem(&gotel_link_pending_streams, &k);
		if (!p)
			return;
	}
	struct gotel_link_stream *s = &p->s[p->next % GOTEL_LINK_STREAMS_MAX];
	p->next++;
	__builtin_memcpy(s->trace_id, trace_id, 16);
	__builtin_memcpy(s->span_id, span_id, 8);
	s->flags = flags;
	s->id = stream;
}

/* Server side: the client span filed under conn (a connection and, for HTTP/2 and gRPC, a stream), copied into
 * out as a remote parent (IDs, flags, tracestate), and taken; 0 when there was one. With out NULL (the request
 * had its own traceparent) it is only taken, so that no later request on the connection can find it. */
static __always_inline int gotel_link_take_conn(const struct gotel_conn_key *conn, struct gotel_span_context *out)
{
	struct gotel_span_context *sc = bpf_map_lookup_elem(&gotel_conn_links, conn);
	if (!sc)
		return -1;
	if (!out) {
		bpf_map_delete_elem(&gotel_conn_links, conn);
		return 0;
	}
	__builtin_memcpy(out->trace_id, sc->trace_id, 16);
	__builtin_memcpy(out->span_id, sc->span_id, 8);
	out->flags = sc->flags;
	out->tracestate_len = sc->tracestate_len;
	if (out->tracestate_len)
		bpf_probe_read_kernel(out->tracestate, sizeof(out->tracestate), sc->tracestate);
	bpf_map_delete_elem(&gotel_conn_links, conn);
	gotel_count(GOTEL_COUNTER_LINKED_SAME_HOST);
	return 0;
}

/* Server side: the connection this goroutine last read from (a serving goroutine reads one all its life), as
 * the server sees it; 0 when it read one. */
static __always_inline int gotel_link_read_conn(__u32 tgid, __u64 goroutine, struct gotel_conn_key *out)
{
	if (!(gotel_propagation & GOTEL_PROPAGATION_SAME_HOST))
		return -1;
	struct gotel_ctx_key rk = {.tgid = tgid, .ctx = goroutine};
	struct gotel_conn_key *read = bpf_map_lookup_elem(&gotel_conn_reads, &rk);
	if (!read)
		return -1;
	*out = *read;
	return 0;
}

/* Server side: the client span filed under the connection this goroutine last read from and the stream (HTTP/1:
 * 0), as gotel_link_take_conn. */
static __always_inline int gotel_link_take_stream(__u32 tgid, __u64 goroutine, __u32 stream, struct gotel_span_context *out)
{
	struct gotel_conn_key conn;
	if (gotel_link_read_conn(tgid, goroutine, &conn))
		return -1;
	conn.stream = stream;
	return gotel_link_take_conn(&conn, out);
}

static __always_inline int gotel_link_take(__u32 tgid, __u64 goroutine, struct gotel_span_context *out)
{
	return gotel_link_take_stream(tgid, goroutine, 0, out);
}

#endif
