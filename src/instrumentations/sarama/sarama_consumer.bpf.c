/* IBM/sarama consumer spans: one CONSUMER "process" span per message a ConsumerGroup handler marks.
 *
 * Messages reach the application's ConsumeClaim through a channel, and nothing of Sarama's runs on its goroutine
 * per message until it marks the message as processed — which every group consumer that commits does:
 *   func (s *consumerGroupSession) MarkMessage(msg *ConsumerMessage, metadata string)   s = arg 1, msg = arg 2
 * That is where the span ends. It starts when the goroutine could begin processing the message: the later of
 *   - when the message was handed to the claim's channel: the return of the fetch that brought it,
 *       func (child *partitionConsumer) parseResponse(response *FetchResponse) ([]*ConsumerMessage, error)
 *     (messages = result registers 1-2: its first and last offsets and the time are kept, the last
 *     SARAMA_FETCHES of each (topic, partition), found by the offset), and
 *   - when the goroutine was done with the previous one: its previous MarkMessage, or the start of its claim,
 *       func (s *consumerGroupSession) consume(topic string, partition int32)   (it runs ConsumeClaim)
 * An application that marks a message before processing it gets a span of its wait alone. A message marked on
 * a goroutine gotel has not seen begin, whose fetch it did not see either (attached mid-claim), has no start:
 * counted (KAFKA_COUNTER_START_UNSEEN). The span is sent when it ends, so calls made while processing cannot be its
 * children.
 *
 * Parent and link: the W3C traceparent among the message's first headers (the producer's span), else none.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "probe.h"
#include "trace_context.h"
#include "sarama.h"

char LICENSE[] SEC("license") = "GPL";

#define SARAMA_GROUP_MAX 128
#define SARAMA_FETCHES 8

struct sarama_consumer_config {
	__u64 message_topic;     /* ConsumerMessage.Topic (string) */
	__u64 message_partition; /* ConsumerMessage.Partition (int32) */
	__u64 message_offset;    /* ConsumerMessage.Offset (int64) */
	__u64 message_key;       /* ConsumerMessage.Key ([]byte) */
	__u64 message_headers;   /* ConsumerMessage.Headers ([]*RecordHeader) */
	__u64 header_key;        /* RecordHeader.Key ([]byte) */
	__u64 header_value;      /* RecordHeader.Value ([]byte) */
	__u64 session_parent;    /* consumerGroupSession.parent (*consumerGroup) */
	__u64 group_id;          /* consumerGroup.groupID (string) */
};

struct sarama_consumer_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__u32 parent_remote;    /* the parent came in the message's traceparent */
	__u32 group_len;
	__s64 partition;
	__s64 offset;
	struct kafka_message message;
	char group[SARAMA_GROUP_MAX];
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

GOTEL_BTF_TYPE(sarama_consumer_event, struct sarama_consumer_event);

/* the recent fetches of a partition: by (process, the topic's string data, partition) — every message of a
 * partition consumer shares its topic string */
struct fetch_key {
	__u32 tgid;
	__u32 partition;
	__u64 topic;
};
struct fetch {
	__s64 first;
	__s64 last;
	__u64 ns;
};
struct fetches {
	__u32 next;
	__u32 pad;
	struct fetch at[SARAMA_FETCHES];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct sarama_consumer_config);
} sarama_consumer_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fetch_key);
	__type(value, struct fetches);
} sarama_consumer_fetches SEC(".maps");

/* (tgid, goroutine) -> when it was last ready for a message (its claim began, or it marked one) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, __u64);
} sarama_consumer_ready SEC(".maps");

struct scratch {
	struct sarama_consumer_event event;
	char traceparent[64];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} sarama_consumer_scratch SEC(".maps");

static __always_inline int on_parse_response_return(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	__u64 msgs = go_arg(ctx, 1);
	__s64 n = (__s64)go_arg(ctx, 2);
	struct sarama_consumer_config *cfg = bpf_map_lookup_elem(&sarama_consumer_config, &tgid);
	if (!cfg || n <= 0)
		return 0;
	__u64 first = read_u64_at(msgs, 0), last = read_u64_at(msgs, (n - 1) * 8);
	struct fetch_key key = {
		.tgid = tgid,
		.partition = (__u32)read_u64_at(first, cfg->message_partition),
		.topic = read_u64_at(first, cfg->message_topic),
	};
	struct fetch f = {
		.first = (__s64)read_u64_at(first, cfg->message_offset),
		.last = (__s64)read_u64_at(last, cfg->message_offset),
		.ns = bpf_ktime_get_ns(),
	};
	struct fetches *r = bpf_map_lookup_elem(&sarama_consumer_fetches, &key);
	if (!r) {
		struct fetches fresh = {.next = 1};
		fresh.at[0] = f;
		bpf_map_update_elem(&sarama_consumer_fetches, &key, &fresh, BPF_ANY);
		return 0;
	}
	__u32 i = r->next % SARAMA_FETCHES;
	r->at[i] = f;
	r->next = i + 1;
	return 0;
}

static __always_inline int on_consume(const void *ctx)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&sarama_consumer_ready, &key, &now, BPF_ANY);
	return 0;
}

/* When the fetch that brought (topic, partition, offset) returned; 0 when it is not among the recent ones. */
static __always_inline __u64 fetched_at(__u32 tgid, __u64 topic, __u32 partition, __s64 offset)
{
	struct fetch_key key = {.tgid = tgid, .partition = partition, .topic = topic};
	struct fetches *r = bpf_map_lookup_elem(&sarama_consumer_fetches, &key);
	if (!r)
		return 0;
	for (int i = 0; i < SARAMA_FETCHES; i++) {
		if (r->at[i].ns && r->at[i].first <= offset && offset <= r->at[i].last)
			return r->at[i].ns;
	}
	return 0;
}

static __always_inline int on_mark_message(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct sarama_consumer_config *cfg = bpf_map_lookup_elem(&sarama_consumer_config, &tgid);
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&sarama_consumer_scratch, &zero);
	if (!cfg || !s)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct gotel_ctx_key ready_key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	__u64 *ready = bpf_map_lookup_elem(&sarama_consumer_ready, &ready_key);
	__u64 since = ready ? *ready : 0;
	bpf_map_update_elem(&sarama_consumer_ready, &ready_key, &now, BPF_ANY);

	__u64 msg = go_arg(ctx, 2);
	struct sarama_consumer_event *e = &s->event;
	__builtin_memset(e, 0, __builtin_offsetof(struct sarama_consumer_event, message.key));
	__builtin_memset(&e->sc, 0, __builtin_offsetof(struct gotel_span_context, tracestate));
	e->partition = (__s32)read_u64_at(msg, cfg->message_partition);
	e->offset = (__s64)read_u64_at(msg, cfg->message_offset);
	__u64 fetched = fetched_at(tgid, read_u64_at(msg, cfg->message_topic), (__u32)e->partition, e->offset);
	__u64 start = fetched > since ? fetched : since;
	if (!start) {
		gotel_count_own(KAFKA_COUNTER_START_UNSEEN);
		return 0;
	}
	gotel_fill_header(&e->hdr, gotel_event_type_id, ready_key.ctx);
	e->hdr.start_ns = start;
	e->hdr.end_ns = now;
	READ_STRING_FIELD(e->message.topic, e->message.topic_len, msg, cfg->message_topic);
	kafka_read_key(e->message.key, &e->message.key_len, &e->message.key_size, msg + cfg->message_key);
	__u64 group = read_u64_at(go_arg(ctx, 1), cfg->session_parent);
	READ_STRING_FIELD(e->group, e->group_len, group, cfg->group_id);

	struct gotel_span_context *parent = 0;
	if ((gotel_propagation & GOTEL_PROPAGATION_EXTRACT) &&
	    kafka_read_traceparent(msg + cfg->message_headers, 1, cfg->header_key, cfg->header_value, s->traceparent, &e->sc) == 0) {
		parent = &e->sc;
		e->parent_remote = 1;
		__builtin_memcpy(e->parent_span_id, e->sc.span_id, 8);
	}
	gotel_start_span(&e->sc, parent);
	if (!(e->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		return 0;
	}
	gotel_emit_span(e);
	return 0;
}

GOTEL_UPROBE(sarama_parse_response_return, on_parse_response_return)
GOTEL_UPROBE(sarama_consume, on_consume)
GOTEL_UPROBE(sarama_mark_message, on_mark_message)
