/* The core object: the maps every instrumentation shares, loaded before any of them (src/probes/probe-set.ts).
 *
 * It has no programs. It owns the ring buffer every span travels through (`events`), the drop and injection
 * counters (`drops`), and the span contexts recorded under Go context pointers (`gotel_spans_by_ctx`), through
 * which a client or SQL call finds the server span it belongs to, and the maps of same-host linking
 * (same_host.h) and socket insertion (socket_insert.h), and the routes routers note for the server spans (http_route.h). Each instrumentation's object declares the
 * same maps through the same headers and reuses these (bpf_map__reuse_fd), so no instrumentation owns what the
 * others need. Its BTF is where user space reads the event header's layout and the counters' enum.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "trace_context.h"
#include "same_host.h"
#include "socket_insert.h"
#include "http_route.h"

char LICENSE[] SEC("license") = "GPL";
