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
#define USER_AGENT_MAX 128

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
	__u64 request_header;      /* net/http.Request.Header (map[string][]string) */
	/* Go < 1.24 maps */
	__u64 hmap_b;              /* runtime.hmap.B (uint8) */
	__u64 hmap_buckets;        /* runtime.hmap.buckets */
	/* Go >= 1.24 Swiss-table maps */
	__u64 swiss_dir_ptr;       /* internal/runtime/maps.Map.dirPtr */
	__u64 swiss_dir_len;       /* internal/runtime/maps.Map.dirLen */
	__u64 swiss_table_groups;  /* internal/runtime/maps.table.groups */
	__u64 swiss_groups_data;   /* internal/runtime/maps.groupsReference.data */
	__u64 swiss_groups_mask;   /* internal/runtime/maps.groupsReference.lengthMask */
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
	__u32 user_agent_len;
	__u32 reserved;
	char method[METHOD_MAX];
	char path[PATH_MAX];
	char host[HOST_MAX];
	char remote[REMOTE_MAX];
	char pattern[PATTERN_MAX];
	char user_agent[USER_AGENT_MAX];
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

/* ---- User-Agent from req.Header (map[string][]string), keys canonicalized by net/textproto ----
 * Only this map type is read, so its slot layout follows from Go's rules: a string key is 16 bytes, a
 * []string value 24. The walks are bounded (a request's headers fit in a few buckets or groups); a header map
 * bigger than that just gives no user agent. */
#define CLASSIC_BUCKET_SIZE (8 + 8 * 16 + 8 * 24 + 8) /* tophash, keys, values, overflow */
#define CLASSIC_MAX_BUCKETS 4                          /* B <= 2: up to 26 headers */
#define SWISS_SLOT_SIZE (16 + 24)
#define SWISS_GROUP_SIZE (8 + 8 * SWISS_SLOT_SIZE)    /* control word, 8 slots */
#define SWISS_MAX_TABLES 2
#define SWISS_MAX_GROUPS 4

static __always_inline int is_user_agent_key(__u64 key_addr)
{
	struct go_string k = {};
	char b[10];
	if (bpf_probe_read_user(&k, sizeof(k), (const void *)key_addr) || k.len != 10)
		return 0;
	if (bpf_probe_read_user(b, sizeof(b), (const void *)k.ptr))
		return 0;
	return b[0] == 'U' && b[1] == 's' && b[2] == 'e' && b[3] == 'r' && b[4] == '-' && b[5] == 'A' &&
	       b[6] == 'g' && b[7] == 'e' && b[8] == 'n' && b[9] == 't';
}

/* the first value of the []string at value_addr */
static __always_inline __u32 read_first_value(char *dst, __u64 value_addr)
{
	struct go_slice v = {};
	if (bpf_probe_read_user(&v, sizeof(v), (const void *)value_addr) || v.len < 1)
		return 0;
	return go_read_string_at(dst, USER_AGENT_MAX, v.ptr);
}

static __always_inline __u32 user_agent_classic(struct nethttp_server_config *cfg, __u64 hmap, char *dst)
{
	__u8 b = 0;
	__u64 buckets = read_u64_at(hmap, cfg->hmap_buckets);
	if (bpf_probe_read_user(&b, 1, (const void *)(hmap + cfg->hmap_b)) || !buckets)
		return 0;
	for (__u32 i = 0; i < CLASSIC_MAX_BUCKETS * 8; i++) {
		__u32 bucket = i / 8, slot = i % 8;
		if (bucket >= (1u << (b & 7)))
			break;
		__u64 base = buckets + bucket * CLASSIC_BUCKET_SIZE;
		if (is_user_agent_key(base + 8 + slot * 16))
			return read_first_value(dst, base + 8 + 8 * 16 + slot * 24);
	}
	return 0;
}

static __always_inline __u32 user_agent_swiss_group(__u64 group, char *dst, int *found)
{
	__u64 ctrl = 0;
	if (bpf_probe_read_user(&ctrl, sizeof(ctrl), (const void *)group))
		return 0;
	for (int slot = 0; slot < 8; slot++) {
		/* the high bit of a control byte marks an empty or deleted slot */
		if ((ctrl >> (slot * 8)) & 0x80)
			continue;
		__u64 s = group + 8 + slot * SWISS_SLOT_SIZE;
		if (is_user_agent_key(s)) {
			*found = 1;
			return read_first_value(dst, s + 16);
		}
	}
	return 0;
}

static __always_inline __u32 user_agent_swiss(struct nethttp_server_config *cfg, __u64 m, char *dst)
{
	__u64 dir = read_u64_at(m, cfg->swiss_dir_ptr);
	__s64 dir_len = read_u64_at(m, cfg->swiss_dir_len);
	int found = 0;
	if (!dir)
		return 0;
	if (dir_len == 0) /* a small map: dirPtr is its one group */
		return user_agent_swiss_group(dir, dst, &found);
	for (__u32 i = 0; i < SWISS_MAX_TABLES * SWISS_MAX_GROUPS; i++) {
		__u32 t = i / SWISS_MAX_GROUPS, g = i % SWISS_MAX_GROUPS;
		if (t >= dir_len)
			break;
		__u64 table = read_u64_at(dir + t * 8, 0);
		__u64 groups = read_u64_at(table, cfg->swiss_table_groups + cfg->swiss_groups_data);
		__u64 mask = read_u64_at(table, cfg->swiss_table_groups + cfg->swiss_groups_mask);
		if (!groups || g > mask)
			continue;
		__u32 n = user_agent_swiss_group(groups + g * SWISS_GROUP_SIZE, dst, &found);
		if (found)
			return n;
	}
	return 0;
}

static __always_inline __u32 read_user_agent(struct nethttp_server_config *cfg, __u64 req, char *dst)
{
	__u64 header = read_u64_at(req, cfg->request_header);
	if (!header)
		return 0;
	if (cfg->hmap_b != GOTEL_OFFSET_ABSENT && cfg->hmap_buckets != GOTEL_OFFSET_ABSENT)
		return user_agent_classic(cfg, header, dst);
	if (cfg->swiss_dir_ptr != GOTEL_OFFSET_ABSENT && cfg->swiss_dir_len != GOTEL_OFFSET_ABSENT &&
	    cfg->swiss_table_groups != GOTEL_OFFSET_ABSENT && cfg->swiss_groups_data != GOTEL_OFFSET_ABSENT &&
	    cfg->swiss_groups_mask != GOTEL_OFFSET_ABSENT)
		return user_agent_swiss(cfg, header, dst);
	return 0;
}

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
	e->user_agent_len = read_user_agent(cfg, req, e->user_agent);

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
