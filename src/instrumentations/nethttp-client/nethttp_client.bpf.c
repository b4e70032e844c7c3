/* net/http client spans: a uprobe at the entry of net/http.(*Transport).roundTrip starts a CLIENT span (a child
 * of the span recorded for the request's context or an ancestor of it, else a new trace), uprobes on every RET
 * of it complete it with the response or the error.
 *
 *   func (t *Transport) roundTrip(req *Request) (*Response, error)
 *   Go ABI: t = arg 1, req = arg 2; at a RET the results are in the argument registers: *Response = 1,
 *   error = 2-3 (itab, data).
 *
 * Context injection (DESIGN.md decision 9): HTTP/1 requests are serialized by net/http.Header.writeSubset
 * into the connection's *bufio.Writer, on the connection's write goroutine. The entry records the span under
 * the request's Header map; a uprobe at writeSubset's entry, when it finds that map, appends
 * "Traceparent: …\r\n" (and "Tracestate: …\r\n") to the writer's buffer and advances its length — Go memory is
 * only written there, with bpf_probe_write_user, and only when the buffer has room. Those programs are loaded
 * only where the kernel allows the helper (lockdown none) and propagation is on.
 *
 * HTTP/2 (net/http's own client: bundled as http2* before Go 1.27, net/http/internal/http2 from 1.27): the
 * first two probes below also serve same-host linking (they write nothing, and are loaded without injection). A
 * request's header block is HPACK-encoded into the connection's bytes.Buffer, which holds just what the largest
 * block so far needed (often 64 bytes: no room). So the field is added to the HEADERS frame instead, in the
 * connection's 4 KB *bufio.Writer, where the framer has just put it, before the flush that sends it. With the
 * connection's write lock held, on the request's goroutine:
 *   (*clientStream).encodeAndWriteHeaders(cs, req)         notes the request's span for the goroutine (found
 *                                                          by its Header map, as for HTTP/1), or forgets one;
 *   (*ClientConn).writeHeaders(cc, streamID, endStream, maxFrameSize, hdrs)
 *                                                          notes the stream, the block's length, the frame limit;
 *   its call of bufio.(*Writer).Flush (a probe on the CALL, emulated, the writer in the first argument register)
 *       when the buffer ends with exactly that HEADERS frame (length, type, END_HEADERS, not padded, stream id)
 *       and both it and the frame limit have room: appends an HPACK literal "traceparent" to the block, patches
 *       the frame's 24-bit length, then grows the writer's length. A block split into CONTINUATION frames, a
 *       frame already flushed or any mismatch: nothing is written (counted as no room).
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
#include "context_walk.h"
#include "inject.h"
#include "same_host.h"

char LICENSE[] SEC("license") = "GPL";

#define METHOD_MAX 16
#define SCHEME_MAX 16
#define HOST_MAX 128
#define PATH_MAX 256
#define QUERY_MAX 256
#define FRAGMENT_MAX 128

struct nethttp_client_config {
	__u64 request_method;        /* net/http.Request.Method (string) */
	__u64 request_url;           /* net/http.Request.URL (*url.URL) */
	__u64 request_header;        /* net/http.Request.Header (map) */
	__u64 request_ctx;           /* net/http.Request.ctx (context.Context) */
	__u64 url_scheme;            /* net/url.URL.Scheme */
	__u64 url_opaque;            /* net/url.URL.Opaque */
	__u64 url_user;              /* net/url.URL.User (*Userinfo) */
	__u64 url_host;              /* net/url.URL.Host */
	__u64 url_path;              /* net/url.URL.Path */
	__u64 url_raw_path;          /* net/url.URL.RawPath */
	__u64 url_raw_query;         /* net/url.URL.RawQuery */
	__u64 url_fragment;          /* net/url.URL.Fragment */
	__u64 url_raw_fragment;      /* net/url.URL.RawFragment */
	__u64 response_status_code;  /* net/http.Response.StatusCode (int) */
	__u64 response_proto_major;  /* net/http.Response.ProtoMajor (int) */
	__u64 response_proto_minor;  /* net/http.Response.ProtoMinor (int) */
	__u64 bufio_writer_err;      /* bufio.Writer.err (error) */
	__u64 bufio_writer_buf;      /* bufio.Writer.buf ([]byte) */
	__u64 bufio_writer_n;        /* bufio.Writer.n (int) */
	__u64 h2_request_header;     /* net/http/internal/http2.ClientRequest.Header (map; Go >= 1.27) */
	struct go_map_offsets map;
};

struct nethttp_client_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__s64 status;
	__s64 proto_major;
	__s64 proto_minor;
	__u64 error_type;       /* runtime._type of the returned error's dynamic type; 0: no error */
	__u32 method_len;
	__u32 scheme_len;
	__u32 host_len;
	__u32 path_len;         /* of path, which holds URL.RawPath when set, else URL.Path */
	__u32 path_raw;
	__u32 query_len;
	__u32 fragment_len;
	__u32 raw_fragment_len;
	__u32 opaque;           /* URL.Opaque is set: path holds it */
	__u32 has_user;         /* the URL carries credentials (never read, only redacted) */
	char method[METHOD_MAX];
	char scheme[SCHEME_MAX];
	char host[HOST_MAX];
	char path[PATH_MAX];
	char query[QUERY_MAX];
	char fragment[FRAGMENT_MAX];
	char raw_fragment[FRAGMENT_MAX];
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

struct nethttp_client_inflight {
	__u64 header; /* the request's Header map: the injection key */
	struct nethttp_client_event event;
};

GOTEL_BTF_TYPE(nethttp_client_event, struct nethttp_client_event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct nethttp_client_config);
} nethttp_client_config SEC(".maps");

/* Keyed by (tgid, goroutine): entry and return of one call run on the same goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct nethttp_client_inflight);
} nethttp_client_inflight SEC(".maps");

/* (tgid, Header map) -> the span to inject, while its roundTrip runs (one per call in flight at most) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_span_context);
} nethttp_client_inject SEC(".maps");

/* (tgid, goroutine) -> an HTTP/2 request whose HEADERS frame is being written */
struct nethttp_client_h2_pending {
	struct inject_context sc;
	__u32 stream;   /* 0 until writeHeaders */
	__u32 block;    /* the header block's length */
	__u64 max_frame;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct gotel_ctx_key);
	__type(value, struct nethttp_client_h2_pending);
} nethttp_client_h2_pending SEC(".maps");

#define INJECT_MAX GOTEL_HTTP1_TRACE_LINES_MAX

struct scratch {
	struct nethttp_client_inflight inflight;
	char line[1024]; /* >= INJECT_MAX, a power of two for the verifier's bounds */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} nethttp_client_scratch SEC(".maps");


static __always_inline void read_url(struct nethttp_client_config *cfg, struct nethttp_client_event *e, __u64 url)
{
	READ_STRING_FIELD(e->scheme, e->scheme_len, url, cfg->url_scheme);
	READ_STRING_FIELD(e->host, e->host_len, url, cfg->url_host);
	READ_STRING_FIELD(e->query, e->query_len, url, cfg->url_raw_query);
	READ_STRING_FIELD(e->fragment, e->fragment_len, url, cfg->url_fragment);
	READ_STRING_FIELD(e->raw_fragment, e->raw_fragment_len, url, cfg->url_raw_fragment);
	e->has_user = read_u64_at(url, cfg->url_user) != 0;
	READ_STRING_FIELD(e->path, e->path_len, url, cfg->url_opaque);
	if (e->path_len) {
		e->opaque = 1;
		return;
	}
	READ_STRING_FIELD(e->path, e->path_len, url, cfg->url_raw_path);
	if (e->path_len) {
		e->path_raw = 1;
		return;
	}
	READ_STRING_FIELD(e->path, e->path_len, url, cfg->url_path);
}

static __always_inline int on_entry(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct nethttp_client_config *cfg = bpf_map_lookup_elem(&nethttp_client_config, &tgid);
	if (!cfg)
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_client_scratch, &zero);
	if (!s)
		return 0;
	struct nethttp_client_inflight *f = &s->inflight;
	/* the string buffers and the tracestate past their lengths are never read: only what precedes them is cleared */
	__builtin_memset(f, 0, __builtin_offsetof(typeof(*f), event.method));

	__u64 g = go_goroutine(ctx);
	__u64 req = go_arg(ctx, 2);
	struct nethttp_client_event *e = &f->event;
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);
	READ_STRING_FIELD(e->method, e->method_len, req, cfg->request_method);
	read_url(cfg, e, read_u64_at(req, cfg->request_url));

	/* the header walk before the context walk: the verifier follows what comes after the walk once per exit */
	f->header = read_u64_at(req, cfg->request_header);
	/* the span is kept for the request's header writer to inject, to insert into the socket's bytes, or, on the
	 * same host, to link. What writes a header looks for the application's own traceparent first; a linked
	 * server prefers a header it reads to the link. */
	int inject = (gotel_propagation & (GOTEL_PROPAGATION_INJECT | GOTEL_PROPAGATION_SAME_HOST | GOTEL_PROPAGATION_SOCKET)) && f->header;
	if (inject && (gotel_propagation & (GOTEL_PROPAGATION_INJECT | GOTEL_PROPAGATION_SOCKET))) {
		struct http_header_values h = {};
		http_header_find(&cfg->map, f->header, &h);
		if (h.at[HTTP_HEADER_TRACEPARENT]) {
			/* the application propagates itself: its header wins */
			gotel_count(GOTEL_COUNTER_INJECT_PRESENT);
			inject = 0;
		}
	}
	if (!inject)
		f->header = 0;

	struct gotel_span_context *parent = gotel_find_parent(tgid, read_u64_at(req, cfg->request_ctx + 8));
	if (parent)
		__builtin_memcpy(e->parent_span_id, parent->span_id, 8);
	gotel_start_span(&e->sc, parent);
	if (inject) {
		struct gotel_ctx_key k = {.tgid = tgid, .ctx = f->header};
		bpf_map_update_elem(&nethttp_client_inject, &k, &e->sc, BPF_ANY);
	}
	gotel_inflight_put(&nethttp_client_inflight, tgid, g, f);
	return 0;
}

static __always_inline int on_return(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct nethttp_client_inflight *f = bpf_map_lookup_elem(&nethttp_client_inflight, &key);
	if (!f)
		return 0;
	if (f->header) {
		struct gotel_ctx_key k = {.tgid = tgid, .ctx = f->header};
		bpf_map_delete_elem(&nethttp_client_inject, &k);
	}
	struct nethttp_client_event *e = &f->event;
	if (!(e->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		bpf_map_delete_elem(&nethttp_client_inflight, &key);
		return 0;
	}
	e->hdr.end_ns = bpf_ktime_get_ns();
	struct nethttp_client_config *cfg = bpf_map_lookup_elem(&nethttp_client_config, &tgid);
	__u64 resp = go_arg(ctx, 1);
	__u64 err_tab = go_arg(ctx, 2);
	if (cfg && resp) {
		e->status = read_u64_at(resp, cfg->response_status_code);
		e->proto_major = read_u64_at(resp, cfg->response_proto_major);
		e->proto_minor = read_u64_at(resp, cfg->response_proto_minor);
	}
	if (err_tab) {
		e->error_type = read_u64_at(err_tab, 8); /* itab._type */
		if (!e->error_type)
			e->error_type = 1;
	}
	gotel_emit_span(e);
	bpf_map_delete_elem(&nethttp_client_inflight, &key);
	return 0;
}

/* roundTrip's check of its connection's answer (plan.ts: RESULT_CHECK), a JE the kernel emulates where a RET
 * would be single-stepped: AX = *Response, BX:CX = error, as at a RET. A nil error is the success path, whose
 * RET has no probe; an error may still be retried, and ends the span at one of the other RETs. */
static __always_inline int on_result(const void *ctx)
{
	if (go_arg(ctx, 2))
		return 0;
	return on_return(ctx);
}

/* A *bufio.Writer as its owner leaves it between writes, before anything is written into it: no sticky error,
 * a full-length buffer, a length within it. Non-zero when it cannot be read or does not look like one. */
static __always_inline int read_bufio_writer(const struct nethttp_client_config *cfg, __u64 w, struct go_slice *buf, __s64 *n)
{
	struct go_iface err = {};
	if (bpf_probe_read_user(&err, sizeof(err), (const void *)(w + cfg->bufio_writer_err)) ||
	    bpf_probe_read_user(buf, sizeof(*buf), (const void *)(w + cfg->bufio_writer_buf)) ||
	    bpf_probe_read_user(n, sizeof(*n), (const void *)(w + cfg->bufio_writer_n)))
		return -1;
	return err.tab || !buf->ptr || buf->len != buf->cap || *n < 0 || *n > buf->len;
}

/*   func (h Header) writeSubset(w io.Writer, exclude map[string]bool, trace *httptrace.ClientTrace) error
 *   Go ABI: h = arg 1, w = args 2-3 (itab, data). */
static __always_inline int on_write_headers(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = go_arg(ctx, 1)};
	struct gotel_span_context *sc = bpf_map_lookup_elem(&nethttp_client_inject, &k);
	if (!sc)
		return 0;
	struct nethttp_client_config *cfg = bpf_map_lookup_elem(&nethttp_client_config, &tgid);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_client_scratch, &zero);
	__u64 w = go_arg(ctx, 3);
	if (!cfg || !s || !w)
		return 0;

	/* Request.write hands writeSubset the connection's *bufio.Writer (it wraps any writer that is not an
	 * io.ByteWriter in one) */
	struct go_slice buf = {};
	__s64 n = -1;
	if (read_bufio_writer(cfg, w, &buf, &n)) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		return 0;
	}

	char *line = s->line;
	__u64 size = gotel_http1_trace_lines(line, sc);
	if (size > INJECT_MAX || n + size > buf.len) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		return 0;
	}
	/* the bytes first, then the length that makes them part of the request */
	__s64 grown = n + size;
	if (inject_write_user((void *)(buf.ptr + n), line, size) ||
	    inject_write_user((void *)(w + cfg->bufio_writer_n), &grown, sizeof(grown))) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		return 0;
	}
	gotel_count(GOTEL_COUNTER_INJECTED);
	return 0;
}

/* Same-host linking (same_host.h): the goroutine writing an HTTP/1 request sends it next; its span is filed as
 * pending for that send. Writes nothing: loaded where injection is refused too. At Request.write, which only
 * requests go through (Header.writeSubset also writes every server response's headers: a trap each for nothing).
 *   func (r *Request) write(w io.Writer, usingProxy bool, extraHeaders Header, waitForContinue func() bool) error */
static __always_inline int on_link_request(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct nethttp_client_config *cfg = bpf_map_lookup_elem(&nethttp_client_config, &tgid);
	if (!cfg)
		return 0;
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = read_u64_at(go_arg(ctx, 1), cfg->request_header)};
	if (!k.ctx)
		return 0;
	struct gotel_span_context *sc = bpf_map_lookup_elem(&nethttp_client_inject, &k);
	if (sc)
		gotel_link_pending_put(tgid, go_goroutine(ctx), sc);
	return 0;
}

/*   func (cs *clientStream) encodeAndWriteHeaders(req *Request) error          (*ClientRequest from Go 1.27)
 *   Go ABI: cs = arg 1, req = arg 2. */
static __always_inline int on_h2_encode(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key g = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct nethttp_client_config *cfg = bpf_map_lookup_elem(&nethttp_client_config, &tgid);
	if (!cfg)
		return 0;
	__u64 header_at = cfg->h2_request_header != GOTEL_OFFSET_ABSENT ? cfg->h2_request_header : cfg->request_header;
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = read_u64_at(go_arg(ctx, 2), header_at)};
	struct gotel_span_context *sc = k.ctx ? bpf_map_lookup_elem(&nethttp_client_inject, &k) : 0;
	if (!sc) {
		bpf_map_delete_elem(&nethttp_client_h2_pending, &g);
		return 0;
	}
	struct nethttp_client_h2_pending p = {.sc.flags = sc->flags};
	__builtin_memcpy(p.sc.trace_id, sc->trace_id, 16);
	__builtin_memcpy(p.sc.span_id, sc->span_id, 8);
	bpf_map_update_elem(&nethttp_client_h2_pending, &g, &p, BPF_ANY);
	return 0;
}

/*   func (cc *ClientConn) writeHeaders(streamID uint32, endStream bool, maxFrameSize int, hdrs []byte) error
 *   Go ABI: cc = 1, streamID = 2, endStream = 3, maxFrameSize = 4, hdrs = 5-7.
 * The stream is known here: same-host linking files the span for this goroutine's next send, writeHeaders'
 * own flush of the frame (same_host.h). Where nothing is injected, the request is done with here. */
static __always_inline int on_h2_write_headers(const void *ctx)
{
	struct gotel_ctx_key g = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	struct nethttp_client_h2_pending *p = bpf_map_lookup_elem(&nethttp_client_h2_pending, &g);
	if (!p)
		return 0;
	p->stream = (__u32)go_arg(ctx, 2);
	p->block = (__u32)go_arg(ctx, 6);
	p->max_frame = go_arg(ctx, 4);
	gotel_link_stream(g.tgid, g.ctx, p->stream, p->sc.trace_id, p->sc.span_id, p->sc.flags, 0, 0);
	if (!(gotel_propagation & GOTEL_PROPAGATION_INJECT))
		bpf_map_delete_elem(&nethttp_client_h2_pending, &g);
	return 0;
}

#define H2_FRAME_HEADER_LEN 9
#define H2_FRAME_HEADERS 0x1
#define H2_FLAG_END_HEADERS 0x4
#define H2_FLAG_PADDED 0x8
#define H2_FLAG_PRIORITY 0x20

/* at writeHeaders' call of (*bufio.Writer).Flush: w = arg 1 */
static __always_inline int on_h2_flush(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key g = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct nethttp_client_h2_pending *found = bpf_map_lookup_elem(&nethttp_client_h2_pending, &g);
	if (!found)
		return 0;
	struct nethttp_client_h2_pending p = *found;
	bpf_map_delete_elem(&nethttp_client_h2_pending, &g);
	struct nethttp_client_config *cfg = bpf_map_lookup_elem(&nethttp_client_config, &tgid);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&nethttp_client_scratch, &zero);
	__u64 w = go_arg(ctx, 1);
	if (!cfg || !s || !w || !p.stream)
		return 0;

	struct go_slice buf = {};
	__s64 n = -1;
	__s64 start = -1;
	__u8 f[H2_FRAME_HEADER_LEN] = {};
	if (read_bufio_writer(cfg, w, &buf, &n) || (start = n - H2_FRAME_HEADER_LEN - (__s64)p.block) < 0 ||
	    bpf_probe_read_user(f, sizeof(f), (const void *)(buf.ptr + start))) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		return 0;
	}
	__u32 length = ((__u32)f[0] << 16) | ((__u32)f[1] << 8) | f[2];
	__u32 stream = (((__u32)f[5] << 24) | ((__u32)f[6] << 16) | ((__u32)f[7] << 8) | f[8]) & 0x7fffffff;
	__u32 grown_length = length + INJECT_HPACK_LEN;
	/* exactly this request's HEADERS frame, whole, last in the buffer; room in the buffer and under the frame limit */
	if (length != p.block || f[3] != H2_FRAME_HEADERS || stream != p.stream ||
	    (f[4] & (H2_FLAG_END_HEADERS | H2_FLAG_PADDED | H2_FLAG_PRIORITY)) != H2_FLAG_END_HEADERS ||
	    grown_length > p.max_frame || n + INJECT_HPACK_LEN > buf.len) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		return 0;
	}
	char *l = s->line;
	inject_hpack_traceparent(l, &p.sc);
	__u8 patched[3] = {grown_length >> 16, grown_length >> 8, grown_length};
	__s64 grown = n + INJECT_HPACK_LEN;
	/* the bytes, the frame's length that covers them, then the writer's length that sends them */
	if (inject_write_user((void *)(buf.ptr + n), l, INJECT_HPACK_LEN) ||
	    inject_write_user((void *)(buf.ptr + start), patched, sizeof(patched)) ||
	    inject_write_user((void *)(w + cfg->bufio_writer_n), &grown, sizeof(grown))) {
		gotel_count(GOTEL_COUNTER_INJECT_NO_ROOM);
		return 0;
	}
	gotel_count(GOTEL_COUNTER_INJECTED);
	return 0;
}

GOTEL_UPROBE(nethttp_client_entry, on_entry)
GOTEL_UPROBE(nethttp_client_return, on_return)
GOTEL_UPROBE(nethttp_client_result, on_result)
GOTEL_UPROBE(nethttp_client_inject_entry, on_write_headers)
GOTEL_UPROBE(nethttp_client_link_request, on_link_request)
GOTEL_UPROBE(nethttp_client_h2_encode, on_h2_encode)
GOTEL_UPROBE(nethttp_client_h2_headers, on_h2_write_headers)
GOTEL_UPROBE(nethttp_client_inject_h2_flush, on_h2_flush)
