/* Routes of the routers on net/http's server: each router's probe notes where its matched route will be, for
 * the request being served on this goroutine (bpf/include/http_route.h says how the server span reads it).
 * Entry probes only, each at a function a router runs for every request before it calls the handler it chose;
 * the innermost router's note is the last one, and wins. (ServeMux's is the net/http server object's.)
 *
 *   gin.(*Engine).handleHTTPRequest(engine, c *Context)                  c = arg 2: c.fullPath is set when a
 *       route matched, "" for a 404 (c was reset before)
 *   chi/v5.(*node).FindRoute(n, rctx *Context, method, path)            rctx = arg 2: shared by nested routers;
 *       FindRoute clears routePattern and sets it on a match, appending it to RoutePatterns
 *   echo/v4.(*Router).Find(r, method, path string, c Context)          c = args 6-7 (itab, data): Find sets
 *       c.path to the matched route; a 404 leaves c.handler the not-found handler c.Reset put there right before
 *       (c.path is then the request's path or a node's, not a route), so its value is noted now
 *   httprouter.(*Router).ServeHTTP(r, w, req)                          an httprouter handles it: nothing matched
 *       yet (a method without a tree looks nothing up)
 *   httprouter.(*node).getValue(n, path string)                          n = arg 1, path = args 2-3: a lookup of
 *       path in the tree of root n; the last one is the request's method's (a 405 looks in the others after)
 *   gorilla/mux.(*Router).ServeHTTP(r, w, req)                         a gorilla router handles it: nothing
 *       matched yet (a 404 under a ServeMux prefix has no route)
 *   gorilla/mux.routeRegexpGroup.setMatch(v routeRegexpGroup, req, m *RouteMatch, r *Route)
 *       v takes args 1-5 (host, path, queries), m = arg 7: runs once a route matched, for it and each route
 *       around it (subrouters); m.Route is the innermost one every time, whose path template is the route
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "probe.h"
#include "trace_context.h"
#include "http_route.h"

char LICENSE[] SEC("license") = "GPL";

/* Per process: byte offsets of the fields read (GOTEL_OFFSET_ABSENT when a version lacks one). */
struct http_routes_config {
	__u64 gin_context_full_path;      /* gin.Context.fullPath (string) */
	__u64 chi_context_route_pattern;  /* chi.Context.routePattern (string) */
	__u64 chi_context_route_patterns; /* chi.Context.RoutePatterns ([]string) */
	__u64 echo_context_path;          /* echo.context.path (string) */
	__u64 echo_context_handler;       /* echo.context.handler (HandlerFunc: a func value, one pointer) */
	__u64 gorilla_match_route;        /* mux.RouteMatch.Route (*Route) */
	__u64 gorilla_route_conf;         /* mux.Route.routeConf (embedded routeConf) */
	__u64 gorilla_conf_regexp;        /* mux.routeConf.regexp (routeRegexpGroup, by value) */
	__u64 gorilla_group_path;         /* mux.routeRegexpGroup.path (*routeRegexp) */
	__u64 gorilla_regexp_template;    /* mux.routeRegexp.template (string) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct http_routes_config);
} http_routes_config SEC(".maps");

static __always_inline int on_gin(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct http_routes_config *cfg = bpf_map_lookup_elem(&http_routes_config, &tgid);
	if (cfg && cfg->gin_context_full_path != GOTEL_OFFSET_ABSENT)
		gotel_http_route_note(tgid, go_goroutine(ctx), GOTEL_ROUTE_FIELD, go_arg(ctx, 2), cfg->gin_context_full_path, 0);
	return 0;
}

static __always_inline int on_chi(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct http_routes_config *cfg = bpf_map_lookup_elem(&http_routes_config, &tgid);
	if (cfg && cfg->chi_context_route_pattern != GOTEL_OFFSET_ABSENT && cfg->chi_context_route_patterns != GOTEL_OFFSET_ABSENT)
		gotel_http_route_note(tgid, go_goroutine(ctx), GOTEL_ROUTE_CHI, go_arg(ctx, 2), cfg->chi_context_route_pattern,
				      cfg->chi_context_route_patterns);
	return 0;
}

static __always_inline int on_echo(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct http_routes_config *cfg = bpf_map_lookup_elem(&http_routes_config, &tgid);
	if (!cfg || cfg->echo_context_path == GOTEL_OFFSET_ABSENT || cfg->echo_context_handler == GOTEL_OFFSET_ABSENT)
		return 0;
	__u64 c = go_arg(ctx, 7);
	struct gotel_http_route r = {
		.kind = GOTEL_ROUTE_ECHO, .ptr = c, .off = {cfg->echo_context_path, cfg->echo_context_handler},
		.not_found = read_u64_at(c, cfg->echo_context_handler),
	};
	gotel_http_route_note_all(tgid, go_goroutine(ctx), &r);
	return 0;
}

static __always_inline int on_httprouter_lookup(const void *ctx)
{
	gotel_http_route_note(gotel_current_tgid(), go_goroutine(ctx), GOTEL_ROUTE_HTTPROUTER, go_arg(ctx, 1), go_arg(ctx, 2), go_arg(ctx, 3));
	return 0;
}

/* a router that matched nothing yet: gorilla's and httprouter's ServeHTTP */
static __always_inline int on_router(const void *ctx)
{
	gotel_http_route_note(gotel_current_tgid(), go_goroutine(ctx), GOTEL_ROUTE_NONE, 0, 0, 0);
	return 0;
}

static __always_inline int on_gorilla_match(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct http_routes_config *cfg = bpf_map_lookup_elem(&http_routes_config, &tgid);
	if (!cfg)
		return 0;
	__u64 route = read_u64_at(go_arg(ctx, 7), cfg->gorilla_match_route);
	__u64 group = cfg->gorilla_route_conf + cfg->gorilla_conf_regexp;
	__u64 path = cfg->gorilla_route_conf == GOTEL_OFFSET_ABSENT || cfg->gorilla_conf_regexp == GOTEL_OFFSET_ABSENT
			     ? 0 : read_u64_at(route, group + cfg->gorilla_group_path);
	struct go_string template = {};
	if (path && cfg->gorilla_regexp_template != GOTEL_OFFSET_ABSENT)
		bpf_probe_read_user(&template, sizeof(template), (const void *)(path + cfg->gorilla_regexp_template));
	if (template.len > 0)
		gotel_http_route_note(tgid, go_goroutine(ctx), GOTEL_ROUTE_STRING, template.ptr, template.len, 0);
	else /* a route without a path template (Host or Methods only): no route */
		gotel_http_route_note(tgid, go_goroutine(ctx), GOTEL_ROUTE_NONE, 0, 0, 0);
	return 0;
}

GOTEL_UPROBE(http_route_gin, on_gin)
GOTEL_UPROBE(http_route_chi, on_chi)
GOTEL_UPROBE(http_route_echo, on_echo)
GOTEL_UPROBE(http_route_httprouter_router, on_router)
GOTEL_UPROBE(http_route_httprouter_lookup, on_httprouter_lookup)
GOTEL_UPROBE(http_route_gorilla_router, on_router)
GOTEL_UPROBE(http_route_gorilla_match, on_gorilla_match)
