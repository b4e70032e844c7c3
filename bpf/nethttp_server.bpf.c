/* net/http server spans: a uprobe at the entry of net/http.serverHandler.ServeHTTP records the request, uprobes
 * on every RET of it complete the span with the response status and the ServeMux pattern (set while the handler
 * ran) and send it to user space.
 *
 *   func (sh serverHandler) ServeHTTP(rw ResponseWriter, req *Request)
 *   Go ABI: sh = arg 1, rw = args 2-3 (itab, data), req = arg 4.
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

char LICENSE[] SEC("license") = "GPL";

#define METHOD_MAX 16
#define PATH_MAX 256
#define HOST_MAX 128
#define REMOTE_MAX 64
#define PATTERN_MAX 128

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
};

struct nethttp_server_event {
	struct gotel_event_header hdr;
	__u8 trace_id[16];
	__u8 span_id[8];
	__s64 status;
	__s64 proto_major;
	__s64 proto_minor;
	__u32 method_len;
	__u32 path_len;
	__u32 host_len;
	__u32 remote_len;
	__u32 pattern_len;
	__u32 tls;
	char method[METHOD_MAX];
	char path[PATH_MAX];
	char host[HOST_MAX];
	char remote[REMOTE_MAX];
	char pattern[PATTERN_MAX];
};

/* a request in flight, with what only the entry can see */
struct nethttp_server_inflight {
	__u64 request;
	__u64 response_writer;
	struct nethttp_server_event event;
};

GOTEL_BTF_TYPE(nethttp_server_event, struct nethttp_server_event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct nethttp_server_config);
} nethttp_server_config SEC(".maps");

/* Keyed by goroutine. LRU: a span whose return was never seen (the process died mid-request) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct nethttp_server_inflight);
} nethttp_server_inflight SEC(".maps");

/* building an entry takes more than the 512-byte BPF stack */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nethttp_server_inflight);
} nethttp_server_scratch SEC(".maps");

static __always_inline __u64 read_u64_at(__u64 base, __u64 offset)
{
	__u64 v = 0;
	if (base && offset != GOTEL_OFFSET_ABSENT)
		bpf_probe_read_user(&v, sizeof(v), (const void *)(base + offset));
	return v;
}

#define READ_STRING_FIELD(dst, len, base, offset)                                         \
	do {                                                                              \
		if ((base) && (offset) != GOTEL_OFFSET_ABSENT)                            \
			len = go_read_string_at(dst, sizeof(dst), (base) + (offset));    \
	} while (0)

static __always_inline int on_entry(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct nethttp_server_config *cfg = bpf_map_lookup_elem(&nethttp_server_config, &tgid);
	if (!cfg)
		return 0;
	__u32 zero = 0;
	struct nethttp_server_inflight *f = bpf_map_lookup_elem(&nethttp_server_scratch, &zero);
	if (!f)
		return 0;
	__builtin_memset(f, 0, sizeof(*f));

	__u64 g = go_goroutine(ctx);
	__u64 req = go_arg(ctx, 4);
	f->request = req;
	f->response_writer = go_arg(ctx, 3);
	struct nethttp_server_event *e = &f->event;
	gotel_fill_header(&e->hdr, GOTEL_EVENT_NETHTTP_SERVER, g);
	gotel_random_bytes(e->trace_id, 16);
	gotel_random_bytes(e->span_id, 8);

	READ_STRING_FIELD(e->method, e->method_len, req, cfg->request_method);
	READ_STRING_FIELD(e->host, e->host_len, req, cfg->request_host);
	READ_STRING_FIELD(e->remote, e->remote_len, req, cfg->request_remote_addr);
	__u64 url = read_u64_at(req, cfg->request_url);
	READ_STRING_FIELD(e->path, e->path_len, url, cfg->url_path);
	e->proto_major = read_u64_at(req, cfg->request_proto_major);
	e->proto_minor = read_u64_at(req, cfg->request_proto_minor);
	e->tls = read_u64_at(req, cfg->request_tls) != 0;

	/* morestack re-runs the prologue, so the entry may fire twice for one call: overwrite */
	bpf_map_update_elem(&nethttp_server_inflight, &g, f, BPF_ANY);
	return 0;
}

static __always_inline int on_return(const void *ctx)
{
	__u64 g = go_goroutine(ctx);
	struct nethttp_server_inflight *f = bpf_map_lookup_elem(&nethttp_server_inflight, &g);
	if (!f)
		return 0;
	__u32 tgid = gotel_current_tgid();
	struct nethttp_server_config *cfg = bpf_map_lookup_elem(&nethttp_server_config, &tgid);
	struct nethttp_server_event *e = &f->event;
	e->hdr.end_ns = bpf_ktime_get_ns();
	if (cfg) {
		/* HTTP/2's ResponseWriter is another type; its status is not read (yet) */
		if (e->proto_major == 1)
			e->status = read_u64_at(f->response_writer, cfg->response_status);
		if (cfg->request_pattern != GOTEL_OFFSET_ABSENT) {
			READ_STRING_FIELD(e->pattern, e->pattern_len, f->request, cfg->request_pattern);
		} else {
			__u64 pat = read_u64_at(f->request, cfg->request_pat);
			READ_STRING_FIELD(e->pattern, e->pattern_len, pat, cfg->pattern_str);
		}
	}
	gotel_emit(e, sizeof(*e));
	bpf_map_delete_elem(&nethttp_server_inflight, &g);
	return 0;
}

GOTEL_UPROBE(nethttp_server_entry, on_entry)
GOTEL_UPROBE(nethttp_server_return, on_return)
