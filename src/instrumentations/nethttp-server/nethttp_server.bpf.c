/* net/http server spans: a uprobe at the entry of net/http.serverHandler.ServeHTTP starts the span (a child of
 * the request's W3C traceparent when it has one, sampled in the kernel) and records it under the request's
 * context, so that calls made with that context find their parent; when the handler is done (see below) the
 * span is completed with the response status and the ServeMux pattern (set while the handler ran) and sent.
 *
 * The status is read from the ResponseWriter net/http made for the request: *http.response for HTTP/1; for
 * HTTP/2 the bundled server's writer (http2responseWriter, or from Go 1.27 net/http/internal/http2's
 * responseWriter inside http.http2ResponseWriter), whose state rws is still there when the handler has returned (it
 * is recycled after). An HTTP/2 server from golang.org/x/net (http2.ConfigureServer before Go 1.27) passes its
 * own writer, of the same shape with x/net's offsets. Both are read; the event carries the writer's itab and
 * user space keeps the one that belongs to the writer's type.
 *
 *   func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request)
 *   Go ABI: sh = arg 1, rw = args 2-3 (itab, data), req = arg 4.
 *
 * x/net's HTTP/2 server runs each stream's handler on its own goroutine, and with the h2c handler
 * (h2c.NewHandler, unencrypted HTTP/2) that handler is the application's: serverHandler.ServeHTTP never runs
 * for those streams. So x/net's stream is a span of its own, from these two entry probes (both emulated sites;
 * no RET probe):
 *   func (sc *serverConn) runHandler(rw *responseWriter, req *http.Request, handler func(...))   rw 2, req 3
 *   func (w *responseWriter) handlerDone()   w 1: called (deferred) when the handler returned; w.rws, where
 *                                            the status is, is still set at its entry (it is cleared inside)
 * Where x/net's stream handler is net/http's serverHandler (http2.ConfigureServer over TLS), the ServeHTTP
 * entry on the same goroutine replaces the stream's span before it is sent: one span per stream either way.
 *
 * No RET probes: a RET can only be single-stepped, which costs ~10x an emulated entry probe (DESIGN.md 8). A
 * request ends at the entry of what net/http runs right after its handler returned, all on the same goroutine:
 *   HTTP/1   (*response).finishRequest         w 1 = the request's ResponseWriter
 *            (*conn).serve.func1                the connection goroutine's deferred closure: a request still
 *                                               in flight there was hijacked, or the handler panicked (or
 *                                               called runtime.Goexit): its span ends there
 *   HTTP/2   (*serverConn).runHandler.funcN     the stream goroutine's deferred closure (net/http's bundled
 *                                               server, internal/http2 from Go 1.27, x/net's), normal or panic;
 *                                               the writer's state, where the status is, is still set there
 * A panic is seen at runtime.gopanic(e any) (e = args 1-2: type, data), which notes its value on the goroutine's
 * request, and runtime.recovery(gp *g) (gp = arg 1: it runs on g0 through mcall), which forgets it again when
 * the panic is recovered before it leaves the handler (a recovery middleware): what is still noted when the
 * request ends unwound the handler. Both run only when a program panics.
 * Where those functions cannot be found, the span ends at every RET of ServeHTTP instead (user space decides).
 *
 * Routes (http_route.h): a request's ServeMux pattern is read from the request the innermost ServeMux served,
 * noted at the entry of (*ServeMux).ServeHTTP(mux, w, r) (r = arg 4), which is a copy when a middleware made
 * one (r.WithContext): the request serverHandler got never has its Pattern then. Go >= 1.22 only (Pattern).
 *
 * Struct offsets differ between Go versions; user space writes them per process into nethttp_server_config.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "probe.h"
#include "http_header.h"
#include "trace_context.h"
#include "same_host.h"
#include "http_route.h"

char LICENSE[] SEC("license") = "GPL";

#define METHOD_MAX 16
#define PATH_MAX 256
#define HOST_MAX 128
#define REMOTE_MAX 64
#define USER_AGENT_MAX 128
#define PANIC_TEXT_MAX 128

/* Per process: byte offsets of the fields read (GOTEL_OFFSET_ABSENT when a version lacks one). */
struct nethttp_server_config {
	__u64 request_method;      /* net/http.Request.Method (string) */
	__u64 request_url;         /* net/http.Request.URL (*url.URL) */
	__u64 request_proto_major; /* net/http.Request.ProtoMajor (int) */
	__u64 request_proto_minor; /* net/http.Request.ProtoMinor (int) */
	__u64 request_host;        /* net/http.Request.Host (string) */
	__u64 request_remote_addr; /* net/http.Request.RemoteAddr (string) */
	__u64 request_tls;         /* net/http.Request.TLS (*tls.ConnectionState) */
	__u64 request_pattern;     /* net/http.Request.Pattern (string, Go >= 1.23) */
	__u64 request_pat;         /* net/http.Request.pat (*pattern, Go 1.22) */
	__u64 pattern_str;         /* net/http.pattern.str (string, Go 1.22) */
	__u64 url_path;            /* net/url.URL.Path (string) */
	__u64 response_status;     /* net/http.response.status (int), HTTP/1 ResponseWriter */
	__u64 h2_writer_rws;          /* net/http.http2responseWriter.rws (*http2responseWriterState), Go < 1.27 */
	__u64 h2_rws_status;          /* net/http.http2responseWriterState.status (int) */
	__u64 h2_internal_writer_rws; /* net/http/internal/http2.responseWriter.rws, Go >= 1.27 */
	__u64 h2_internal_rws_status; /* net/http/internal/http2.responseWriterState.status */
	__u64 xnet_writer_rws;        /* golang.org/x/net/http2.responseWriter.rws */
	__u64 xnet_rws_status;        /* golang.org/x/net/http2.responseWriterState.status */
	/* same-host linking: a writer's state -> its connection (*serverConn) and its stream's id, per server */
	__u64 h2_rws_conn;            /* net/http.http2responseWriterState.conn */
	__u64 h2_rws_stream;          /* net/http.http2responseWriterState.stream (*http2stream) */
	__u64 h2_stream_id;           /* net/http.http2stream.id (uint32) */
	__u64 h2_internal_rws_conn;   /* the same in net/http/internal/http2, Go >= 1.27 */
	__u64 h2_internal_rws_stream;
	__u64 h2_internal_stream_id;
	__u64 xnet_rws_conn;          /* the same in golang.org/x/net/http2 */
	__u64 xnet_rws_stream;
	__u64 xnet_stream_id;
	__u64 request_header;      /* net/http.Request.Header (map[string][]string) */
	__u64 request_ctx;         /* net/http.Request.ctx (context.Context) */
	struct go_map_offsets map;
};

struct nethttp_server_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__u32 parent_remote;    /* the parent came in the request's traceparent */
	__u32 tls;
	__s64 status;      /* HTTP/1's; for HTTP/2 through net/http's own server's offsets */
	__s64 status_xnet; /* HTTP/2: through golang.org/x/net's server's offsets */
	__u64 writer_itab; /* HTTP/2: the ResponseWriter's itab, which tells whose writer it is */
	__u64 route_node;  /* GOTEL_ROUTE_HTTPROUTER: the root of the tree the route's path was looked up in */
	__u32 writer_xnet; /* the span is x/net's stream (runHandler): its writer is x/net's, no itab */
	__u32 panic_text_len;
	__s64 proto_major;
	__s64 proto_minor;
	__u32 abandoned;      /* HTTP/1: it ended with its connection, unfinished (hijacked, panic, Goexit) */
	__u32 panicked;       /* a panic unwound its handler; panic_* say what the panic value was */
	__u64 panic_type;     /* the value's runtime type (*abi.Type) */
	__u64 panic_ns;
	__u64 panic_value[3]; /* the first 24 bytes its data word points to: a string header, an error struct, … */
	char panic_text[PANIC_TEXT_MAX]; /* the bytes of the string panic_value[0..1] would be, if it is one */
	__u32 method_len;
	__u32 path_len;
	__u32 host_len;
	__u32 remote_len;
	__u32 pattern_len;
	__u32 route_kind;     /* enum gotel_http_route_kind: how pattern is to be read */
	__u32 route_path_len; /* GOTEL_ROUTE_SERVEMUX: the length of the path the innermost ServeMux matched */
	__u32 user_agent_len;
	char method[METHOD_MAX];
	char path[PATH_MAX];
	char host[HOST_MAX];
	char remote[REMOTE_MAX];
	char pattern[2 * GOTEL_ROUTE_MAX]; /* the route, or the ServeMux pattern it comes from */
	char user_agent[USER_AGENT_MAX];
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

/* a request in flight, with what only the entry can see */
struct nethttp_server_inflight {
	__u64 request;
	__u64 response_writer_itab; /* 0 for x/net's stream: response_writer is its *responseWriter */
	__u64 response_writer;
	__u64 ctx;
	struct nethttp_server_event event;
};

GOTEL_BTF_TYPE(nethttp_server_event, struct nethttp_server_event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct nethttp_server_config);
} nethttp_server_config SEC(".maps");

/* Keyed by (tgid, goroutine): entry and return of one call run on the same goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct nethttp_server_inflight);
} nethttp_server_inflight SEC(".maps");

/* (tgid, *serverConn) -> its connection (same-host linking of HTTP/2 streams), from its serve goroutine's last
 * read at (*serverConn).serve's entry; a later connection at the same address overwrites it */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_conn_key);
} nethttp_server_h2_conns SEC(".maps");

/* building an entry takes more than the 512-byte BPF stack */
struct scratch {
	struct nethttp_server_inflight inflight;
	char traceparent[64];
	__u64 end_writer;    /* finish_request's arguments, for the end program */
	__u32 end_abandoned;
	__u32 pad;
	__u64 start_req;     /* start_request's, for the start program */
	__u64 start_rw_itab;
	__u64 start_rw;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} nethttp_server_scratch SEC(".maps");

/* The programs that end a request (five) tail-call one end program: reading the route is most of what the kernel
 * verifies per program (~3,300 of ~3,600 instructions processed each). The two that start one (net/http's and
 * x/net's) tail-call one start program (~13,000 each). ProbeObject fills each slot before the first attach, with
 * the program its member names (NETHTTP_SERVER_TAIL_X: nethttp_server_x). */
enum nethttp_server_tail {
	NETHTTP_SERVER_TAIL_END = 0,
	NETHTTP_SERVER_TAIL_START = 1,
};
GOTEL_BTF_TYPE(nethttp_server_tail, enum nethttp_server_tail);
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} nethttp_server_tails SEC(".maps");

/* this object's own reasons for losing spans (src/instrumentations/index.ts says what the `stopped` line calls them) */
enum nethttp_server_counter {
	NETHTTP_SERVER_COUNTER_NO_END = 0,   /* a tail call to the end program failed: its slot empty (never after attach) */
	NETHTTP_SERVER_COUNTER_NO_START = 1, /* the same, to the start program */
};
GOTEL_BTF_TYPE(nethttp_server_counter, enum nethttp_server_counter);

/* The incoming W3C context, from the []string values of the Traceparent and Tracestate headers at these
 * addresses (0: absent): parent IDs and flags into the scratch event's context, tracestate too; 0 when there is a
 * valid one. Global, scalar arguments only (the scratch is this CPU's): the kernel verifies the parse once, not
 * once per path of the entry that reaches it (inlined, ~14,000 of the entry's 44,000 instructions verified). */
__attribute__((noinline)) int nethttp_server_incoming(__u64 traceparent_at, __u64 tracestate_at)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_server_scratch, &zero);
	if (!s)
		return -1;
	struct gotel_span_context *remote = &s->inflight.event.sc;
	__u32 copied = 0;
	__u32 len = http_header_first_value(s->traceparent, sizeof(s->traceparent), traceparent_at, &copied);
	if (copied < GOTEL_TRACEPARENT_LEN || gotel_parse_traceparent(s->traceparent, len, remote))
		return -1;
	len = http_header_first_value(remote->tracestate, sizeof(remote->tracestate), tracestate_at, &copied);
	remote->tracestate_len = gotel_trim_tracestate(remote->tracestate, len);
	return 0;
}

/* HTTP/2: the status in the writer's state, as net/http's own server and as x/net's would hold it */
static __always_inline void read_h2_status(const struct nethttp_server_config *cfg,
					   const struct nethttp_server_inflight *f, struct nethttp_server_event *e)
{
	__u64 rws_off = cfg->h2_writer_rws, status_off = cfg->h2_rws_status;
	if (rws_off == GOTEL_OFFSET_ABSENT) {
		rws_off = cfg->h2_internal_writer_rws;
		status_off = cfg->h2_internal_rws_status;
	}
	e->writer_itab = f->response_writer_itab;
	e->writer_xnet = f->response_writer_itab == 0;
	e->status = read_u64_at(read_u64_at(f->response_writer, rws_off), status_off);
	e->status_xnet = read_u64_at(read_u64_at(f->response_writer, cfg->xnet_writer_rws), cfg->xnet_rws_status);
}

/* HTTP/2, same-host linking: the connection and stream of the request whose writer is rw, through the writer's
 * state with one server's offsets (rws: the writer's field; conn, stream: the state's; id: the stream's); 0
 * when that server's serve entry named the connection. */
static __always_inline int h2_stream_of(__u32 tgid, __u64 rw, __u64 rws_off, __u64 conn_off, __u64 stream_off,
					__u64 id_off, struct gotel_conn_key *out)
{
	__u64 rws = read_u64_at(rw, rws_off);
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = read_u64_at(rws, conn_off)};
	struct gotel_conn_key *conn = k.ctx ? bpf_map_lookup_elem(&nethttp_server_h2_conns, &k) : 0;
	if (!conn)
		return -1;
	*out = *conn;
	out->stream = (__u32)read_u64_at(read_u64_at(rws, stream_off), id_off);
	return out->stream ? 0 : -1;
}

/* HTTP/2: the client span of this host filed under the request's connection and stream, taken into out (NULL:
 * only taken, the request brought its own context); 0 when there was one. A writer of net/http's own server (or
 * itab 0: x/net's) is read with that server's offsets: the other's find no connection. */
static __always_inline int h2_link_take(const struct nethttp_server_config *cfg, __u32 tgid, __u64 rw_itab, __u64 rw,
					struct gotel_span_context *out)
{
	if (!(gotel_propagation & GOTEL_PROPAGATION_SAME_HOST))
		return -1;
	struct gotel_conn_key conn;
	int found = -1;
	if (rw_itab) {
		if (cfg->h2_writer_rws != GOTEL_OFFSET_ABSENT)
			found = h2_stream_of(tgid, rw, cfg->h2_writer_rws, cfg->h2_rws_conn, cfg->h2_rws_stream, cfg->h2_stream_id, &conn);
		else
			found = h2_stream_of(tgid, rw, cfg->h2_internal_writer_rws, cfg->h2_internal_rws_conn,
					     cfg->h2_internal_rws_stream, cfg->h2_internal_stream_id, &conn);
	}
	if (found)
		found = h2_stream_of(tgid, rw, cfg->xnet_writer_rws, cfg->xnet_rws_conn, cfg->xnet_rws_stream, cfg->xnet_stream_id, &conn);
	if (found) {
		/* counted only where the connection tracepoint reads this process's connections: it starts with the
		 * first traced client (src/probes/probe-set.ts), and a gotel tracing only servers names none */
		__u32 *roles = out ? bpf_map_lookup_elem(&gotel_link_tgids, &tgid) : 0;
		if (roles && (*roles & GOTEL_LINK_READS))
			gotel_count(GOTEL_COUNTER_LINK_UNNAMED_CONNECTION);
		return -1;
	}
	return gotel_link_take_conn(&conn, out);
}

/* x/net's stream span of this request (runHandler), which the ServeHTTP entry replaces (http2.ConfigureServer),
 * already looked for the stream's link (and took it): -1 when there is no such span; 1 when it has a remote
 * parent, copied into out (unless NULL); else 0. */
static __always_inline int xnet_stream_parent(__u32 tgid, __u64 g, __u64 req, struct gotel_span_context *out)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = g};
	struct nethttp_server_inflight *prev = bpf_map_lookup_elem(&nethttp_server_inflight, &k);
	if (!prev || prev->request != req || prev->response_writer_itab)
		return -1;
	if (!prev->event.parent_remote)
		return 0;
	if (!out)
		return 1;
	__builtin_memcpy(out->trace_id, prev->event.sc.trace_id, 16);
	__builtin_memcpy(out->span_id, prev->event.parent_span_id, 8);
	out->flags = prev->event.sc.flags;
	out->tracestate_len = prev->event.sc.tracestate_len;
	if (out->tracestate_len)
		bpf_probe_read_kernel(out->tracestate, sizeof(out->tracestate), prev->event.sc.tracestate);
	return 1;
}

/* Starts the span of a request served with the ResponseWriter (itab, rw) (itab 0: x/net's *responseWriter), in the
 * start program (on_start). */
static __always_inline int start_request(const void *ctx, __u64 req, __u64 rw_itab, __u64 rw)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_server_scratch, &zero);
	if (!s)
		return 0;
	s->start_req = req;
	s->start_rw_itab = rw_itab;
	s->start_rw = rw;
	bpf_tail_call((void *)ctx, &nethttp_server_tails, NETHTTP_SERVER_TAIL_START);
	gotel_count_own(NETHTTP_SERVER_COUNTER_NO_START);
	return 0;
}

/* The start program, tail-called by start_request with its arguments in the scratch. */
static __always_inline int on_start(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct nethttp_server_config *cfg = bpf_map_lookup_elem(&nethttp_server_config, &tgid);
	if (!cfg)
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_server_scratch, &zero);
	if (!s)
		return 0;
	__u64 req = s->start_req, rw_itab = s->start_rw_itab, rw = s->start_rw;
	struct nethttp_server_inflight *f = &s->inflight;
	/* the tracestate and panic text bytes past their lengths are never read: no need to clear them (clang
	 * inlines a memset only up to a size) */
	__builtin_memset(f, 0, __builtin_offsetof(typeof(*f), event.panic_text));
	__builtin_memset(&f->event.method_len, 0,
			 __builtin_offsetof(typeof(*f), event.sc.tracestate) - __builtin_offsetof(typeof(*f), event.method_len));

	__u64 g = go_goroutine(ctx);
	f->request = req;
	f->response_writer_itab = rw_itab;
	f->response_writer = rw;
	f->ctx = read_u64_at(req, cfg->request_ctx + 8); /* the data word of the interface */
	struct nethttp_server_event *e = &f->event;
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);

	READ_STRING_FIELD(e->method, e->method_len, req, cfg->request_method);
	READ_STRING_FIELD(e->host, e->host_len, req, cfg->request_host);
	READ_STRING_FIELD(e->remote, e->remote_len, req, cfg->request_remote_addr);
	__u64 url = read_u64_at(req, cfg->request_url);
	READ_STRING_FIELD(e->path, e->path_len, url, cfg->url_path);
	e->proto_major = read_u64_at(req, cfg->request_proto_major);
	e->proto_minor = read_u64_at(req, cfg->request_proto_minor);
	e->tls = read_u64_at(req, cfg->request_tls) != 0;

	struct http_header_values h = {};
	http_header_find(&cfg->map, read_u64_at(req, cfg->request_header), &h);
	__u32 ua_copied = 0;
	http_header_first_value(e->user_agent, sizeof(e->user_agent), h.at[HTTP_HEADER_USER_AGENT], &ua_copied);
	e->user_agent_len = ua_copied;

	/* the remote parent is parsed into the event's own context, then the span starts from a copy of it */
	struct gotel_span_context *remote = 0;
	if ((gotel_propagation & GOTEL_PROPAGATION_EXTRACT) &&
	    nethttp_server_incoming(h.at[HTTP_HEADER_TRACEPARENT], h.at[HTTP_HEADER_TRACESTATE]) == 0)
		remote = &e->sc;
	/* no header (the client could not write one): the client span of this host that sent this request, if any.
	 * HTTP/1: its request was read by this goroutine; HTTP/2: found through its stream (an HTTP/2 handler's
	 * goroutine read nothing, and a reused one may remember another connection). */
	if (e->proto_major == 1) {
		if (remote)
			gotel_link_take(tgid, g, 0);
		else if (gotel_link_take(tgid, g, &e->sc) == 0)
			remote = &e->sc;
	} else if (e->proto_major == 2) {
		/* only a binary with x/net's server has its stream spans to replace */
		int stream = rw_itab && cfg->xnet_writer_rws != GOTEL_OFFSET_ABSENT ? xnet_stream_parent(tgid, g, req, remote ? 0 : &e->sc) : -1;
		if (stream == 1 && !remote)
			remote = &e->sc;
		else if (stream < 0 && remote)
			h2_link_take(cfg, tgid, rw_itab, rw, 0);
		else if (stream < 0 && h2_link_take(cfg, tgid, rw_itab, rw, &e->sc) == 0)
			remote = &e->sc;
	}
	if (remote) {
		__builtin_memcpy(e->parent_span_id, remote->span_id, 8);
		e->parent_remote = 1;
	}
	gotel_start_span(&e->sc, remote);

	/* morestack re-runs the prologue, so the entry may fire twice for one call: overwrite (also x/net's
	 * stream span when its handler is serverHandler.ServeHTTP) */
	gotel_http_route_clear(tgid, g);
	if (gotel_inflight_put(&nethttp_server_inflight, tgid, g, f) == 0) {
		gotel_track(tgid, f->ctx, &e->sc);
		gotel_track_goroutine(tgid, g, &e->sc);
	}
	return 0;
}

static __always_inline int on_entry(const void *ctx)
{
	return start_request(ctx, go_arg(ctx, 4), go_arg(ctx, 2), go_arg(ctx, 3));
}

static __always_inline int on_xnet_stream(const void *ctx)
{
	return start_request(ctx, go_arg(ctx, 3), 0, go_arg(ctx, 2));
}

/* The route a router noted on this goroutine (http_route.h); none noted: the ServeMux pattern of the request
 * serverHandler got, as before any router probe. A ServeMux's note is its request (a copy, when a middleware
 * made one): its pattern, and the length of the path it matched, which tells a prefix match. */
static __always_inline void read_route(const struct nethttp_server_config *cfg, const struct nethttp_server_inflight *f,
				       struct nethttp_server_event *e, __u64 goroutine)
{
	__u32 kind = 0;
	__u64 req = 0;
	e->pattern_len = gotel_http_route_take(gotel_current_tgid(), goroutine, e->pattern, &kind, &req);
	e->route_kind = kind;
	if (kind != GOTEL_ROUTE_SERVEMUX) {
		e->route_node = req;
		return;
	}
	if (!req)
		req = f->request;
	if (cfg->request_pattern != GOTEL_OFFSET_ABSENT) {
		READ_STRING_FIELD(e->pattern, e->pattern_len, req, cfg->request_pattern);
	} else {
		__u64 pat = read_u64_at(req, cfg->request_pat);
		READ_STRING_FIELD(e->pattern, e->pattern_len, pat, cfg->pattern_str);
	}
	if (e->pattern_len > GOTEL_ROUTE_MAX)
		e->pattern_len = GOTEL_ROUTE_MAX;
	/* the request serverHandler got: its path was read at the start (up to PATH_MAX, longer than any route) */
	e->route_path_len = req == f->request ? e->path_len : read_u64_at(read_u64_at(req, cfg->request_url), cfg->url_path + 8);
}

/* Ends the request in flight on this goroutine (only_writer: only if it is served with that writer), in the end
 * program (on_end). */
static __always_inline int finish_request(const void *ctx, __u64 only_writer, __u32 abandoned)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_server_scratch, &zero);
	if (!s)
		return 0;
	s->end_writer = only_writer;
	s->end_abandoned = abandoned;
	bpf_tail_call((void *)ctx, &nethttp_server_tails, NETHTTP_SERVER_TAIL_END);
	gotel_count_own(NETHTTP_SERVER_COUNTER_NO_END);
	return 0;
}

/* The end program, tail-called by finish_request with its arguments in the scratch. */
static __always_inline int on_end(const void *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_server_scratch, &zero);
	if (!s)
		return 0;
	__u64 only_writer = s->end_writer;
	__u32 abandoned = s->end_abandoned;
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct nethttp_server_inflight *f = bpf_map_lookup_elem(&nethttp_server_inflight, &key);
	if (!f || (only_writer && f->response_writer != only_writer))
		return 0;
	gotel_untrack(tgid, f->ctx);
	gotel_untrack_goroutine(tgid, key.ctx);
	struct nethttp_server_event *e = &f->event;
	if (!(e->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		bpf_map_delete_elem(&nethttp_server_inflight, &key);
		return 0;
	}
	struct nethttp_server_config *cfg = bpf_map_lookup_elem(&nethttp_server_config, &tgid);
	e->hdr.end_ns = bpf_ktime_get_ns();
	e->abandoned = abandoned;
	if (cfg) {
		if (e->proto_major == 1)
			e->status = read_u64_at(f->response_writer, cfg->response_status);
		else if (e->proto_major == 2)
			read_h2_status(cfg, f, e);
		read_route(cfg, f, e, key.ctx);
	}
	gotel_emit_span(e);
	bpf_map_delete_elem(&nethttp_server_inflight, &key);
	return 0;
}

static __always_inline int on_servemux(const void *ctx)
{
	gotel_http_route_note(gotel_current_tgid(), go_goroutine(ctx), GOTEL_ROUTE_SERVEMUX, go_arg(ctx, 4), 0, 0);
	return 0;
}

/* Called with the request's writer as arg 1 right after its handler returned: HTTP/1's
 * (*response).finishRequest, and x/net's (*responseWriter).handlerDone (the fallback for x/net's stream) */
static __always_inline int on_writer_done(const void *ctx)
{
	__u64 w = go_arg(ctx, 1);
	return w ? finish_request(ctx, w, 0) : 0;
}

/* HTTP/1's connection closure: whatever is still in flight on this goroutine did not finish normally */
static __always_inline int on_connection_done(const void *ctx)
{
	return finish_request(ctx, 0, 1);
}

/* The handler returned or panicked: HTTP/2's stream closure, or (the fallback) a RET of ServeHTTP */
static __always_inline int on_handler_done(const void *ctx)
{
	return finish_request(ctx, 0, 0);
}

/* (*serverConn).serve(sc, …) (net/http's bundled, internal and x/net's HTTP/2 servers; sc = arg 1): it runs on
 * the goroutine that read the connection's TLS handshake or preface, so that goroutine's last read names the
 * connection for the streams to come (same_host.h). */
static __always_inline int on_h2_serve(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_conn_key conn;
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = go_arg(ctx, 1)};
	if (gotel_link_read_conn(tgid, go_goroutine(ctx), &conn))
		bpf_map_delete_elem(&nethttp_server_h2_conns, &k); /* a connection of before at this address */
	else
		bpf_map_update_elem(&nethttp_server_h2_conns, &k, &conn, BPF_ANY);
	return 0;
}

/* runtime.gopanic: a request in flight on this goroutine notes the panic value (the latest one, if several) */
static __always_inline int on_panic(const void *ctx)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	struct nethttp_server_inflight *f = bpf_map_lookup_elem(&nethttp_server_inflight, &key);
	if (!f)
		return 0;
	struct nethttp_server_event *e = &f->event;
	__u64 data = go_arg(ctx, 2);
	e->panicked = 1;
	e->panic_ns = bpf_ktime_get_ns();
	e->panic_type = go_arg(ctx, 1);
	__builtin_memset(e->panic_value, 0, sizeof(e->panic_value));
	if (data)
		bpf_probe_read_user(e->panic_value, sizeof(e->panic_value), (const void *)data);
	/* read as if it were a string; user space keeps the text only for the types that are one */
	e->panic_text_len = go_read_bytes(e->panic_text, PANIC_TEXT_MAX, e->panic_value[0], e->panic_value[1]);
	return 0;
}

/* runtime.recovery(gp): the panic was recovered before it left the handler; the request goes on */
static __always_inline int on_recovered(const void *ctx)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_arg(ctx, 1)};
	struct nethttp_server_inflight *f = bpf_map_lookup_elem(&nethttp_server_inflight, &key);
	if (f)
		f->event.panicked = 0;
	return 0;
}

GOTEL_UPROBE(nethttp_server_entry, on_entry)
GOTEL_UPROBE(nethttp_server_return, on_handler_done)
GOTEL_UPROBE(nethttp_server_xnet_stream, on_xnet_stream)
GOTEL_UPROBE(nethttp_server_xnet_done, on_writer_done)
GOTEL_UPROBE(nethttp_server_finish, on_writer_done)
GOTEL_UPROBE(nethttp_server_connection_done, on_connection_done)
GOTEL_UPROBE(nethttp_server_stream_done, on_handler_done)
GOTEL_UPROBE(nethttp_server_panic, on_panic)
GOTEL_UPROBE(nethttp_server_recovered, on_recovered)
GOTEL_UPROBE(nethttp_server_servemux, on_servemux)
GOTEL_UPROBE(nethttp_server_h2_serve, on_h2_serve)
GOTEL_UPROBE(nethttp_server_end, on_end)
GOTEL_UPROBE(nethttp_server_start, on_start)
