/* Routes: what the innermost router that handled a request matched, for its net/http server span's http.route.
 *
 * A router's probe (src/instrumentations/http-routes/http_routes.bpf.c) notes under (tgid, goroutine) where the
 * route will be once it has matched; the next router entered on that goroutine replaces the note (it runs
 * inside the one before: the innermost wins), and the server span (nethttp_server.bpf.c) reads the note when
 * its request ends, on the same goroutine, and deletes it; a request's start deletes what an earlier one left.
 * Notes are read late because routers set the route after their match function returns and gotel uses no
 * return probes (DESIGN.md 8): what they point to is still there when the request ends (a Request, or a pooled
 * router context that goes back to its pool on this goroutine right before, and is taken again only by a
 * later request of the same P).
 *
 * Handlers that serve a request on another goroutine than net/http's are not seen (their route is lost, never
 * another request's). The map is LRU: a note with no server span around it (a router called by a test's
 * recorder) ages out.
 */
#ifndef GOTEL_HTTP_ROUTE_H
#define GOTEL_HTTP_ROUTE_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "go_types.h"
#include "event.h"
#include "trace_context.h"

/* How to read a note's route; user space shapes the text by kind (a ServeMux pattern, chi's parts). */
enum gotel_http_route_kind {
	GOTEL_ROUTE_SERVEMUX = 0, /* ptr: the *http.Request a ServeMux served; its Pattern (the server reads it) */
	GOTEL_ROUTE_NONE = 1,     /* a router known to gotel is handling it and matched nothing (yet) */
	GOTEL_ROUTE_STRING = 2,   /* the Go string (ptr, off[0] = length): gorilla/mux's path template */
	GOTEL_ROUTE_FIELD = 3,    /* the string field at ptr + off[0]: gin's Context.fullPath */
	GOTEL_ROUTE_CHI = 4,      /* ptr: chi's *Context; its routePattern (off[0]) says whether the last router
				   * matched, its RoutePatterns (off[1], []string) are the parts of every router */
	GOTEL_ROUTE_ECHO = 5,     /* ptr: echo's *context; its path (off[0]) is the route unless its handler (off[1])
				   * is still the not-found handler (not_found) its Reset put there */
	GOTEL_ROUTE_HTTPROUTER = 6, /* ptr: the root *node of julienschmidt/httprouter's tree it looked the path
				     * (the Go string off[0], off[1]) up in; user space walks the tree (no template
				     * is stored in it) */
};

GOTEL_BTF_TYPE(http_route_kind, enum gotel_http_route_kind);

struct gotel_http_route {
	__u32 kind;
	__u32 pad;
	__u64 ptr;
	__u64 off[2];
	__u64 not_found;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct gotel_http_route);
} gotel_http_routes SEC(".maps");

/* each part of a route is read up to this long, and a part starts before it: buffers are twice as long */
#define GOTEL_ROUTE_MAX 128
/* chi: at most this many routers' parts */
#define GOTEL_ROUTE_PARTS 6

static __always_inline void gotel_http_route_note_all(__u32 tgid, __u64 goroutine, const struct gotel_http_route *r)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = goroutine};
	bpf_map_update_elem(&gotel_http_routes, &k, r, BPF_ANY);
}

static __always_inline void gotel_http_route_note(__u32 tgid, __u64 goroutine, __u32 kind, __u64 ptr, __u64 off0, __u64 off1)
{
	struct gotel_http_route r = {.kind = kind, .ptr = ptr, .off = {off0, off1}};
	gotel_http_route_note_all(tgid, goroutine, &r);
}

/* Appends up to GOTEL_ROUTE_MAX bytes of the Go string (ptr, len) to dst[2 * GOTEL_ROUTE_MAX] at *pos, if *pos
 * is short of GOTEL_ROUTE_MAX: a route is at most 2 * GOTEL_ROUTE_MAX - 1 bytes. */
static __always_inline void gotel_route_append(char *dst, __u32 *pos, __u64 ptr, __s64 len)
{
	__u64 at = *pos;
	if (at >= GOTEL_ROUTE_MAX)
		return;
	/* the compiler knows at < GOTEL_ROUTE_MAX and would drop the mask the verifier needs to see */
	asm volatile("" : "+r"(at));
	at &= GOTEL_ROUTE_MAX - 1;
	*pos = at + go_read_bytes(dst + at, GOTEL_ROUTE_MAX, ptr, len);
}

/* chi: the parts of every router that matched, when the last one did (its routePattern is set) */
static __always_inline __u32 gotel_route_chi(char *dst, const struct gotel_http_route *r)
{
	struct go_string last = {};
	struct go_slice parts = {};
	if (bpf_probe_read_user(&last, sizeof(last), (const void *)(r->ptr + r->off[0])) || last.len <= 0)
		return 0;
	if (bpf_probe_read_user(&parts, sizeof(parts), (const void *)(r->ptr + r->off[1])))
		return 0;
	__u32 pos = 0;
	for (int i = 0; i < GOTEL_ROUTE_PARTS; i++) {
		if (i >= parts.len)
			break;
		struct go_string s = {};
		if (bpf_probe_read_user(&s, sizeof(s), (const void *)(parts.ptr + i * sizeof(s))))
			break;
		gotel_route_append(dst, &pos, s.ptr, s.len);
	}
	return pos;
}

/* The route noted for (tgid, goroutine) into dst[2 * GOTEL_ROUTE_MAX]: its length, and the note's kind and
 * pointer (for GOTEL_ROUTE_SERVEMUX, which the caller reads); no note: GOTEL_ROUTE_SERVEMUX with ptr 0. The
 * note is deleted. */
static __always_inline __u32 gotel_http_route_take(__u32 tgid, __u64 goroutine, char *dst, __u32 *kind, __u64 *ptr)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = goroutine};
	struct gotel_http_route *r = bpf_map_lookup_elem(&gotel_http_routes, &k);
	*kind = GOTEL_ROUTE_SERVEMUX;
	*ptr = 0;
	if (!r)
		return 0;
	struct gotel_http_route note = *r;
	bpf_map_delete_elem(&gotel_http_routes, &k);
	*kind = note.kind;
	*ptr = note.ptr;
	__u32 pos = 0;
	struct go_string s = {};
	switch (note.kind) {
	case GOTEL_ROUTE_STRING:
		gotel_route_append(dst, &pos, note.ptr, note.off[0]);
		break;
	case GOTEL_ROUTE_HTTPROUTER:
		gotel_route_append(dst, &pos, note.off[0], note.off[1]);
		break;
	case GOTEL_ROUTE_FIELD:
		if (bpf_probe_read_user(&s, sizeof(s), (const void *)(note.ptr + note.off[0])) == 0)
			gotel_route_append(dst, &pos, s.ptr, s.len);
		break;
	case GOTEL_ROUTE_CHI:
		pos = gotel_route_chi(dst, &note);
		break;
	case GOTEL_ROUTE_ECHO:
		if (bpf_probe_read_user(&s, sizeof(s), (const void *)(note.ptr + note.off[1])) == 0 && s.ptr != note.not_found &&
		    bpf_probe_read_user(&s, sizeof(s), (const void *)(note.ptr + note.off[0])) == 0)
			gotel_route_append(dst, &pos, s.ptr, s.len);
		break;
	}
	return pos;
}

/* A request starts on this goroutine: what an earlier request left is not its route. */
static __always_inline void gotel_http_route_clear(__u32 tgid, __u64 goroutine)
{
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = goroutine};
	bpf_map_delete_elem(&gotel_http_routes, &k);
}

#endif
