/* segmentio/kafka-go consumer spans: one CONSUMER "process" span per message (*Reader).FetchMessage returns
 * (ReadMessage calls it too), from its return to what the goroutine does next with the Reader: the next
 * FetchMessage's entry, or Close's. That is the application's processing of the message, as upstream measures it.
 *
 *   func (r *Reader) FetchMessage(ctx context.Context) (Message, error)
 *   Go ABI: r = arg 1, ctx = args 2-3. Message (19 words) does not fit the result registers: it is returned on
 *   the stack, the first thing above the return address (SP + 8 at the RET); error = result registers 1-2.
 *   func (r *Reader) Close() error                                   r = arg 1
 *
 * The span's parent is the W3C context in the message's `traceparent` header (the producer's span: one trace
 * across the topic), else the span on the ctx FetchMessage got; it is recorded under that ctx while it lasts,
 * so calls made with it are its children.
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
#include "../kafka.h"

char LICENSE[] SEC("license") = "GPL";

#define KAFKA_GROUP_MAX 128

struct kafka_go_consumer_config {
	__u64 message_topic;     /* kafka.Message.Topic (string) */
	__u64 message_partition; /* kafka.Message.Partition (int) */
	__u64 message_offset;    /* kafka.Message.Offset (int64) */
	__u64 message_key;       /* kafka.Message.Key ([]byte) */
	__u64 message_headers;   /* kafka.Message.Headers ([]protocol.Header) */
	__u64 header_key;        /* protocol.Header.Key (string) */
	__u64 header_value;      /* protocol.Header.Value ([]byte, the last field: stride = it + 24) */
	__u64 reader_config;     /* kafka.Reader.config (ReaderConfig) */
	__u64 config_group_id;   /* kafka.ReaderConfig.GroupID (string) */
};

struct kafka_go_consumer_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__u32 parent_remote;    /* the parent came in the message's traceparent */
	__u32 key_len;
	__u32 key_size;
	__u32 topic_len;
	__u32 group_len;
	__u32 pad;
	__s64 partition;
	__s64 offset;
	char key[KAFKA_KEY_MAX];
	char topic[KAFKA_TOPIC_MAX];
	char group[KAFKA_GROUP_MAX];
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

GOTEL_BTF_TYPE(kafka_go_consumer_event, struct kafka_go_consumer_event);

/* a message being processed: its span, and the ctx it is recorded under */
struct kafka_go_consumer_inflight {
	__u64 ctx;
	struct kafka_go_consumer_event event;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct kafka_go_consumer_config);
} kafka_go_consumer_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct kafka_go_consumer_inflight);
} kafka_go_consumer_inflight SEC(".maps");

/* a FetchMessage call in progress: its Reader and ctx (the return has neither) */
struct kafka_go_consumer_fetch {
	__u64 reader;
	__u64 ctx;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct kafka_go_consumer_fetch);
} kafka_go_consumer_fetching SEC(".maps");

struct scratch {
	struct kafka_go_consumer_inflight inflight;
	char traceparent[64];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} kafka_go_consumer_scratch SEC(".maps");

/* Ends the message span in flight on this goroutine, if any (the goroutine goes back to its Reader). */
static __always_inline int end_processing(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct kafka_go_consumer_inflight *f = bpf_map_lookup_elem(&kafka_go_consumer_inflight, &key);
	if (!f)
		return 0;
	gotel_untrack(tgid, f->ctx);
	struct kafka_go_consumer_event *e = &f->event;
	if (e->sc.flags & GOTEL_FLAG_SAMPLED) {
		e->hdr.end_ns = bpf_ktime_get_ns();
		gotel_emit_span(e);
	} else {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
	}
	bpf_map_delete_elem(&kafka_go_consumer_inflight, &key);
	return 0;
}

static __always_inline int on_fetch_entry(const void *ctx)
{
	end_processing(ctx);
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	struct kafka_go_consumer_fetch f = {.reader = go_arg(ctx, 1), .ctx = go_arg(ctx, 3)};
	bpf_map_update_elem(&kafka_go_consumer_fetching, &key, &f, BPF_ANY);
	return 0;
}

static __always_inline int on_fetch_return(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	__u64 g = go_goroutine(ctx);
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = g};
	/* a call that began before gotel attached has no record: its message still gets a span, without the group
	 * and the ctx's parent */
	struct kafka_go_consumer_fetch fetch = {};
	struct kafka_go_consumer_fetch *call = bpf_map_lookup_elem(&kafka_go_consumer_fetching, &key);
	if (call) {
		fetch = *call;
		bpf_map_delete_elem(&kafka_go_consumer_fetching, &key);
	}
	if (go_arg(ctx, 1)) /* an error: no message */
		return 0;
	struct kafka_go_consumer_config *cfg = bpf_map_lookup_elem(&kafka_go_consumer_config, &tgid);
	if (!cfg)
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&kafka_go_consumer_scratch, &zero);
	if (!s)
		return 0;
	struct kafka_go_consumer_inflight *f = &s->inflight;
	/* the strings and the tracestate past their lengths are never read */
	__builtin_memset(f, 0, __builtin_offsetof(struct kafka_go_consumer_inflight, event.key));
	__builtin_memset(&f->event.sc, 0, __builtin_offsetof(struct gotel_span_context, tracestate));
	f->ctx = fetch.ctx;
	struct kafka_go_consumer_event *e = &f->event;
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);

	__u64 msg = go_stack_pointer(ctx) + 8;
	READ_STRING_FIELD(e->topic, e->topic_len, msg, cfg->message_topic);
	e->partition = (__s64)read_u64_at(msg, cfg->message_partition);
	e->offset = (__s64)read_u64_at(msg, cfg->message_offset);
	kafka_read_key(e->key, &e->key_len, &e->key_size, msg + cfg->message_key);
	if (fetch.reader && cfg->reader_config != GOTEL_OFFSET_ABSENT)
		READ_STRING_FIELD(e->group, e->group_len, fetch.reader + cfg->reader_config, cfg->config_group_id);

	/* the producer's context from the message, parsed into the event's own, then the span starts from it */
	struct gotel_span_context *parent = 0;
	if ((gotel_propagation & GOTEL_PROPAGATION_EXTRACT) && kafka_read_traceparent(msg + cfg->message_headers, 0, cfg->header_key, cfg->header_value, s->traceparent, &e->sc) == 0) {
		parent = &e->sc;
		e->parent_remote = 1;
	} else {
		parent = gotel_find_parent(tgid, fetch.ctx);
	}
	if (parent)
		__builtin_memcpy(e->parent_span_id, parent->span_id, 8);
	gotel_start_span(&e->sc, parent);
	if (gotel_inflight_put(&kafka_go_consumer_inflight, tgid, g, f) == 0 && fetch.ctx)
		gotel_track(tgid, fetch.ctx, &e->sc);
	return 0;
}

static __always_inline int on_close(const void *ctx)
{
	return end_processing(ctx);
}

GOTEL_UPROBE(kafka_go_consumer_fetch, on_fetch_entry)
GOTEL_UPROBE(kafka_go_consumer_fetch_return, on_fetch_return)
GOTEL_UPROBE(kafka_go_consumer_close, on_close)
