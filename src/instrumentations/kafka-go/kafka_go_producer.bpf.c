/* segmentio/kafka-go producer spans: one PRODUCER span per message written through (*Writer).WriteMessages,
 * from its entry to its return (a single-stepped RET: WriteMessages of a synchronous Writer blocks until the
 * broker acknowledged the batch, and nothing it calls after that runs on every path), each a child of the span
 * on the call's ctx, siblings of one trace.
 *
 *   func (w *Writer) WriteMessages(ctx context.Context, msgs ...Message) error
 *   Go ABI: w = arg 1, ctx = args 2-3 (itab, data), msgs = args 4-6 (ptr, len, cap); returns error = args 1-2.
 *
 * The entry reads the Writer's topic and, for the first KAFKA_BATCH_MAX messages, each one's key and topic (a
 * message's own topic is used when the Writer has none); the return sends one event per message, each with a
 * span ID of its own. Messages past KAFKA_BATCH_MAX in one call get no span: counted (KAFKA_COUNTER_BATCH_OVERFLOW).
 * A Message is strided by its last field: Time (time.Time, 24 bytes), as the Go compiler lays it out.
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

#define KAFKA_BATCH_MAX 16
#define GO_TIME_SIZE 24

struct kafka_go_producer_config {
	__u64 writer_topic;  /* kafka.Writer.Topic (string) */
	__u64 message_topic; /* kafka.Message.Topic (string) */
	__u64 message_key;   /* kafka.Message.Key ([]byte) */
	__u64 message_time;  /* kafka.Message.Time (time.Time, the last field: stride = it + 24) */
};


struct kafka_go_producer_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__u64 error_type;       /* the returned error's runtime type (itab._type); 0: none */
	__u32 count;            /* messages the call wrote */
	__u32 index;            /* this span's message */
	struct kafka_message message;
	__u32 topic_len;        /* the Writer's topic */
	__u32 pad;
	char topic[KAFKA_TOPIC_MAX];
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

GOTEL_BTF_TYPE(kafka_go_producer_event, struct kafka_go_producer_event);

/* a call in flight: the event every message's span starts from, and the messages */
struct kafka_go_producer_inflight {
	struct kafka_message messages[KAFKA_BATCH_MAX];
	struct kafka_go_producer_event event;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct kafka_go_producer_config);
} kafka_go_producer_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct kafka_go_producer_inflight);
} kafka_go_producer_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kafka_go_producer_inflight);
} kafka_go_producer_scratch SEC(".maps");

static __always_inline int on_entry(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct kafka_go_producer_config *cfg = bpf_map_lookup_elem(&kafka_go_producer_config, &tgid);
	if (!cfg)
		return 0;
	__u32 zero = 0;
	struct kafka_go_producer_inflight *f = bpf_map_lookup_elem(&kafka_go_producer_scratch, &zero);
	if (!f)
		return 0;
	__builtin_memset(&f->event, 0, __builtin_offsetof(struct kafka_go_producer_event, sc.tracestate));
	__u64 g = go_goroutine(ctx);
	struct kafka_go_producer_event *e = &f->event;
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);
	READ_STRING_FIELD(e->topic, e->topic_len, go_arg(ctx, 1), cfg->writer_topic);

	__u64 msgs = go_arg(ctx, 4);
	__s64 n = go_arg(ctx, 5);
	e->count = n > 0 ? (__u32)n : 0;
	__u64 stride = cfg->message_time + GO_TIME_SIZE;
	for (int i = 0; i < KAFKA_BATCH_MAX; i++) {
		if (i >= n)
			break;
		struct kafka_message *m = &f->messages[i];
		__u64 at = msgs + i * stride;
		m->topic_len = 0;
		kafka_read_key(m->key, &m->key_len, &m->key_size, at + cfg->message_key);
		if (!e->topic_len)
			READ_STRING_FIELD(m->topic, m->topic_len, at, cfg->message_topic);
	}

	struct gotel_span_context *parent = gotel_find_parent(tgid, go_arg(ctx, 3));
	if (parent)
		__builtin_memcpy(e->parent_span_id, parent->span_id, 8);
	gotel_start_span(&e->sc, parent);
	gotel_inflight_put(&kafka_go_producer_inflight, tgid, g, f);
	return 0;
}

static __always_inline int on_return(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct kafka_go_producer_inflight *f = bpf_map_lookup_elem(&kafka_go_producer_inflight, &key);
	if (!f)
		return 0;
	struct kafka_go_producer_event *e = &f->event;
	if (!(e->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count_n(GOTEL_COUNTER_UNSAMPLED, e->count);
		bpf_map_delete_elem(&kafka_go_producer_inflight, &key);
		return 0;
	}
	e->hdr.end_ns = bpf_ktime_get_ns();
	__u64 err_tab = go_arg(ctx, 1);
	if (err_tab) {
		e->error_type = read_u64_at(err_tab, 8); /* itab._type */
		if (!e->error_type)
			e->error_type = 1;
	}
	for (__u32 i = 0; i < KAFKA_BATCH_MAX; i++) {
		if (i >= e->count)
			break;
		e->index = i;
		__builtin_memcpy(&e->message, &f->messages[i], sizeof(e->message));
		/* every message its own span; the first keeps the ID made at the entry */
		if (i > 0)
			gotel_random_bytes(e->sc.span_id, 8);
		gotel_emit_span(e);
	}
	if (e->count > KAFKA_BATCH_MAX)
		gotel_count_own_n(KAFKA_COUNTER_BATCH_OVERFLOW, e->count - KAFKA_BATCH_MAX);
	bpf_map_delete_elem(&kafka_go_producer_inflight, &key);
	return 0;
}

GOTEL_UPROBE(kafka_go_producer_entry, on_entry)
GOTEL_UPROBE(kafka_go_producer_return, on_return)
