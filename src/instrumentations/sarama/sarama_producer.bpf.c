/* IBM/sarama producer spans: one PRODUCER span per message.
 *
 * SyncProducer — on the application's goroutine, from the call's entry to its return (a single-stepped RET):
 *   func (sp *syncProducer) SendMessage(msg *ProducerMessage) (partition int32, offset int64, err error)
 *     msg = arg 2; returns partition, offset, err = result registers 1, 2, 3-4
 *   func (sp *syncProducer) SendMessages(msgs []*ProducerMessage) error
 *     msgs = args 2-3; returns err = result registers 1-2, a ProducerErrors ([]*ProducerError{Msg, Err}) naming
 *     the messages that failed
 *   A call has no context: its parent is the server span (net/http, gRPC) in flight on the calling goroutine
 *   (gotel_goroutine_span), unless the message carries a W3C traceparent header the application put there.
 *
 * AsyncProducer — messages the application puts on Input() reach (*topicProducer).partitionMessage once each (new
 * ones; retries skip it) on Sarama's goroutine of their topic: the span starts at its entry. A SyncProducer's
 * messages pass there too: they carry a reply channel (ProducerMessage.expectation) and are left to the above.
 *   func (tp *topicProducer) partitionMessage(msg *ProducerMessage) error       msg = arg 2; err = result 1-2
 *   An error there (unknown topic, no leader) ends the span, as Sarama then returns the message as failed.
 *   Otherwise it ends when the broker acknowledged it, at the entry of
 *   func (p *asyncProducer) returnSuccesses(batch []*ProducerMessage)           batch = args 2-3
 *   Its failures after that go through returnError, which the compiler inlines: not seen. Such a span stays in
 *   flight; when its message passes partitionMessage again, or its process exits, it is counted (END_UNSEEN) or
 *   reported unfinished. Its only parent is a traceparent header the application put in the message.
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

#define SARAMA_BATCH_MAX 16       /* messages of one SendMessages call with spans (a power of 2: a mask bounds an index) */
#define SARAMA_SUCCESSES_MAX 128  /* messages of one acknowledged batch ended with a span */
#define SARAMA_SUCCESSES_SEEN 2048 /* and past those, looked up to be counted */
#define SARAMA_SUCCESSES_CHUNK 16 /* those, by so many per call of sarama_forget_successes */

struct sarama_producer_config {
	__u64 message_topic;       /* ProducerMessage.Topic (string) */
	__u64 message_key;         /* ProducerMessage.Key (Encoder) */
	__u64 message_headers;     /* ProducerMessage.Headers ([]RecordHeader) */
	__u64 message_offset;      /* ProducerMessage.Offset (int64) */
	__u64 message_partition;   /* ProducerMessage.Partition (int32) */
	__u64 message_expectation; /* ProducerMessage.expectation (chan: a SyncProducer's) */
	__u64 header_key;          /* RecordHeader.Key ([]byte) */
	__u64 header_value;        /* RecordHeader.Value ([]byte, the last field: stride = it + 24) */
	__u64 error_msg;           /* ProducerError.Msg */
	__u64 error_err;           /* ProducerError.Err (error) */
};

struct sarama_producer_event {
	struct gotel_event_header hdr;
	__u8 parent_span_id[8]; /* zero: a root span */
	__u32 parent_remote;    /* the parent came in the message's traceparent header */
	__u32 sync;             /* a SyncProducer's message */
	__u64 error_type;       /* the message's error's runtime type (itab._type); 0: none */
	__u32 count;            /* messages of the SendMessages call; 1 for SendMessage, 0 for an AsyncProducer's */
	__u32 has_result;       /* partition and offset are the broker's */
	__s64 partition;
	__s64 offset;
	struct kafka_message message;
	struct gotel_span_context sc; /* last: sent up to its tracestate's length */
};

GOTEL_BTF_TYPE(sarama_producer_event, struct sarama_producer_event);

/* one message's span of a SyncProducer call (each may continue a traceparent of its own) */
struct sarama_producer_span {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8];
	__u8 flags;
	__u8 remote;
	__u8 pad[2];
	__u32 tracestate_len; /* the goroutine's span's tracestate (in the event's sc), or none */
};

/* a SendMessage(s) call in flight, by goroutine */
struct sarama_producer_inflight {
	__u64 msgs[SARAMA_BATCH_MAX];
	struct sarama_producer_span spans[SARAMA_BATCH_MAX];
	struct kafka_message messages[SARAMA_BATCH_MAX];
	struct sarama_producer_event event;
};

/* an AsyncProducer's message in flight: by goroutine while partitionMessage runs, then by message */
struct sarama_producer_async {
	__u64 msg;
	struct sarama_producer_event event;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct sarama_producer_config);
} sarama_producer_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct sarama_producer_inflight);
} sarama_producer_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct gotel_ctx_key);
	__type(value, struct sarama_producer_async);
} sarama_producer_partitioning SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gotel_ctx_key);
	__type(value, struct sarama_producer_async);
} sarama_producer_async SEC(".maps");

struct scratch {
	struct sarama_producer_inflight call;
	struct sarama_producer_async async;
	__u64 failed_msgs[SARAMA_BATCH_MAX];
	__u64 failed_types[SARAMA_BATCH_MAX];
	struct gotel_span_context parent; /* the goroutine's span, copied: the verifier follows a copy's pointer */
	char traceparent[64];
	/* SendMessage's results, for end_message */
	__u64 single_err_tab;
	__s64 single_partition;
	__s64 single_offset;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} sarama_producer_scratch SEC(".maps");

static __always_inline struct scratch *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&sarama_producer_scratch, &zero);
}

static __always_inline void read_message(const struct sarama_producer_config *cfg, struct kafka_message *m, __u64 msg)
{
	m->topic_len = 0;
	READ_STRING_FIELD(m->topic, m->topic_len, msg, cfg->message_topic);
	sarama_read_encoder_key(m, msg + cfg->message_key);
}

/* The message's traceparent header parsed into sc (0), else nothing (-1). */
static __always_inline int header_parent(const struct sarama_producer_config *cfg, struct scratch *s, __u64 msg,
					 struct gotel_span_context *sc)
{
	if (!(gotel_propagation & GOTEL_PROPAGATION_EXTRACT))
		return -1;
	return kafka_read_traceparent(msg + cfg->message_headers, 0, cfg->header_key, cfg->header_value, s->traceparent, sc);
}

/* Starts the span of msg in sc: continuing its traceparent header, else parent (may be NULL). Returns whether the
 * parent came from the header, and its span ID in parent_span_id. */
static __always_inline int start_message_span(const struct sarama_producer_config *cfg, struct scratch *s, __u64 msg,
					      const struct gotel_span_context *parent, struct gotel_span_context *sc,
					      __u8 *parent_span_id)
{
	if (header_parent(cfg, s, msg, sc) == 0) {
		__builtin_memcpy(parent_span_id, sc->span_id, 8);
		gotel_start_span(sc, sc);
		return 1;
	}
	if (parent)
		__builtin_memcpy(parent_span_id, parent->span_id, 8);
	else
		__builtin_memset(parent_span_id, 0, 8);
	gotel_start_span(sc, parent);
	return 0;
}

/* ---- SyncProducer ---- */

/* The loops over a call's messages call global functions (scalar arguments, as kernels before 5.12 require; the
 * rest in this CPU's scratch and the maps): the kernel verifies a global function once, where an inlined body is
 * verified once per iteration of the unrolled loop (SendMessages' entry and return, and returnSuccesses, took it
 * ~1,000,000 instructions together, ~480 ms of a start). */

/* Message i of the call being built in the scratch (msg): its fields and its span, whose parent is its traceparent
 * header, else the goroutine's span copied into the scratch (has_parent). */
__attribute__((noinline)) int sarama_start_message(__u32 i, __u64 msg, __u32 has_parent)
{
	__u32 tgid = gotel_current_tgid();
	struct sarama_producer_config *cfg = bpf_map_lookup_elem(&sarama_producer_config, &tgid);
	struct scratch *s = scratch();
	if (!cfg || !s || i >= SARAMA_BATCH_MAX)
		return 0;
	barrier_var(i); /* clang would drop the mask below, and the verifier loses the bound above on its copy of i */
	i &= SARAMA_BATCH_MAX - 1;
	struct sarama_producer_inflight *f = &s->call;
	struct sarama_producer_event *e = &f->event;
	f->msgs[i] = msg;
	read_message(cfg, &f->messages[i], msg);
	struct sarama_producer_span *sp = &f->spans[i];
	/* two calls, not one with `has_parent ? &s->parent : 0`: clang spills that choice, and the verifier, which
	 * does not tie the spilled pointer to has_parent, then takes the pointer for 0 on the path that reads it */
	if (has_parent)
		sp->remote = start_message_span(cfg, s, msg, &s->parent, &e->sc, sp->parent_span_id);
	else
		sp->remote = start_message_span(cfg, s, msg, 0, &e->sc, sp->parent_span_id);
	__builtin_memcpy(sp->trace_id, e->sc.trace_id, 16);
	__builtin_memcpy(sp->span_id, e->sc.span_id, 8);
	sp->flags = e->sc.flags;
	sp->tracestate_len = sp->remote ? 0 : e->sc.tracestate_len;
	return 0;
}

static __always_inline int start_call(const void *ctx, __u64 msgs, __s64 n, int single)
{
	__u32 tgid = gotel_current_tgid();
	struct sarama_producer_config *cfg = bpf_map_lookup_elem(&sarama_producer_config, &tgid);
	struct scratch *s = scratch();
	if (!cfg || !s)
		return 0;
	struct sarama_producer_inflight *f = &s->call;
	struct sarama_producer_event *e = &f->event;
	__builtin_memset(e, 0, __builtin_offsetof(struct sarama_producer_event, sc.tracestate));
	__u64 g = go_goroutine(ctx);
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);
	e->sync = 1;
	e->count = n > 0 ? (__u32)n : 0;
	struct gotel_span_context *found = gotel_goroutine_span(tgid, g);
	__u32 has_parent = found && !bpf_probe_read_kernel(&s->parent, sizeof(s->parent), found);
	for (int i = 0; i < SARAMA_BATCH_MAX; i++) {
		if (i >= n)
			break;
		sarama_start_message(i, single ? msgs : read_u64_at(msgs, i * 8), has_parent);
	}
	/* the tracestate the messages without a header of their own share */
	if (has_parent && s->parent.tracestate_len)
		bpf_probe_read_kernel(e->sc.tracestate, sizeof(e->sc.tracestate), s->parent.tracestate);
	gotel_inflight_put(&sarama_producer_inflight, tgid, g, f);
	return 0;
}

static __always_inline int on_send_message(const void *ctx)
{
	return start_call(ctx, go_arg(ctx, 2), 1, 1);
}

static __always_inline int on_send_messages(const void *ctx)
{
	return start_call(ctx, go_arg(ctx, 2), (__s64)go_arg(ctx, 3), 0);
}

/* The messages a SendMessages error names, and their errors' types, into s (how many). */
static __always_inline __u32 read_failed(const struct sarama_producer_config *cfg, struct scratch *s, __u64 err_data)
{
	struct go_slice errs = {};
	if (!err_data || bpf_probe_read_user(&errs, sizeof(errs), (const void *)err_data))
		return 0;
	__u32 n = 0;
	for (int j = 0; j < SARAMA_BATCH_MAX; j++) {
		if (j >= errs.len)
			break;
		__u64 pe = read_u64_at(errs.ptr, j * 8);
		s->failed_msgs[j] = read_u64_at(pe, cfg->error_msg);
		__u64 tab = read_u64_at(pe, cfg->error_err);
		s->failed_types[j] = tab ? (read_u64_at(tab, 8) ?: 1) : 1;
		n = j + 1;
	}
	return n;
}

/* Ends message i of the call in flight on goroutine g: its error among the `failed` the scratch holds (SendMessages),
 * or SendMessage's own results, in the scratch too (single). */
__attribute__((noinline)) int sarama_end_message(__u32 i, __u64 g, __u32 single, __u32 failed)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = g};
	struct sarama_producer_inflight *f = bpf_map_lookup_elem(&sarama_producer_inflight, &key);
	struct sarama_producer_config *cfg = bpf_map_lookup_elem(&sarama_producer_config, &tgid);
	struct scratch *s = scratch();
	if (!f || !cfg || !s || i >= SARAMA_BATCH_MAX)
		return 0;
	barrier_var(i); /* as above */
	i &= SARAMA_BATCH_MAX - 1;
	struct sarama_producer_event *e = &f->event;
	struct sarama_producer_span *sp = &f->spans[i];
	if (!(sp->flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		return 0;
	}
	__u64 msg = f->msgs[i];
	e->error_type = 0;
	if (single && s->single_err_tab) {
		e->error_type = read_u64_at(s->single_err_tab, 8) ?: 1;
	} else if (!single) {
		for (__u32 j = 0; j < SARAMA_BATCH_MAX; j++) {
			if (j >= failed)
				break;
			if (s->failed_msgs[j] == msg)
				e->error_type = s->failed_types[j];
		}
	}
	e->has_result = !e->error_type;
	if (e->has_result) {
		e->partition = single ? (__s32)s->single_partition : (__s32)read_u64_at(msg, cfg->message_partition);
		e->offset = single ? s->single_offset : (__s64)read_u64_at(msg, cfg->message_offset);
	}
	__builtin_memcpy(&e->message, &f->messages[i], sizeof(e->message));
	__builtin_memcpy(e->parent_span_id, sp->parent_span_id, 8);
	__builtin_memcpy(e->sc.trace_id, sp->trace_id, 16);
	__builtin_memcpy(e->sc.span_id, sp->span_id, 8);
	e->sc.flags = sp->flags;
	e->sc.tracestate_len = sp->tracestate_len;
	e->parent_remote = sp->remote;
	gotel_emit_span(e);
	return 0;
}

static __always_inline int end_call(const void *ctx, int single)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct sarama_producer_inflight *f = bpf_map_lookup_elem(&sarama_producer_inflight, &key);
	struct sarama_producer_config *cfg = bpf_map_lookup_elem(&sarama_producer_config, &tgid);
	struct scratch *s = scratch();
	if (!f || !cfg || !s)
		return 0;
	f->event.hdr.end_ns = bpf_ktime_get_ns();
	__u64 err_tab = go_arg(ctx, single ? 3 : 1);
	__u32 failed = 0;
	if (single) {
		s->single_err_tab = err_tab;
		s->single_partition = (__s32)go_arg(ctx, 1);
		s->single_offset = (__s64)go_arg(ctx, 2);
	} else if (err_tab) {
		failed = read_failed(cfg, s, go_arg(ctx, 2));
	}
	__u32 count = f->event.count;
	for (__u32 i = 0; i < SARAMA_BATCH_MAX; i++) {
		if (i >= count)
			break;
		sarama_end_message(i, key.ctx, single, failed);
	}
	if (count > SARAMA_BATCH_MAX)
		gotel_count_own_n(KAFKA_COUNTER_BATCH_OVERFLOW, count - SARAMA_BATCH_MAX);
	bpf_map_delete_elem(&sarama_producer_inflight, &key);
	return 0;
}

static __always_inline int on_send_message_return(const void *ctx)
{
	return end_call(ctx, 1);
}

static __always_inline int on_send_messages_return(const void *ctx)
{
	return end_call(ctx, 0);
}

/* ---- AsyncProducer ---- */

static __always_inline void emit_async(struct sarama_producer_async *a)
{
	struct sarama_producer_event *e = &a->event;
	if (!(e->sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		return;
	}
	e->hdr.end_ns = bpf_ktime_get_ns();
	gotel_emit_span(e);
}

static __always_inline int on_partition(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct sarama_producer_config *cfg = bpf_map_lookup_elem(&sarama_producer_config, &tgid);
	struct scratch *s = scratch();
	__u64 msg = go_arg(ctx, 2);
	if (!cfg || !s || read_u64_at(msg, cfg->message_expectation))
		return 0;
	struct sarama_producer_async *a = &s->async;
	struct sarama_producer_event *e = &a->event;
	__builtin_memset(e, 0, __builtin_offsetof(struct sarama_producer_event, sc.tracestate));
	__u64 g = go_goroutine(ctx);
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);
	a->msg = msg;
	read_message(cfg, &e->message, msg);
	e->parent_remote = start_message_span(cfg, s, msg, 0, &e->sc, e->parent_span_id);
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = g};
	bpf_map_update_elem(&sarama_producer_partitioning, &key, a, BPF_ANY);
	return 0;
}

static __always_inline int on_partition_return(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct sarama_producer_async *a = bpf_map_lookup_elem(&sarama_producer_partitioning, &key);
	if (!a)
		return 0;
	__u64 err_tab = go_arg(ctx, 1);
	if (err_tab) {
		/* Sarama returns the message as failed right away */
		a->event.error_type = read_u64_at(err_tab, 8) ?: 1;
		emit_async(a);
	} else {
		struct gotel_ctx_key by_msg = {.tgid = tgid, .ctx = a->msg};
		if (bpf_map_lookup_elem(&sarama_producer_async, &by_msg))
			gotel_count_own(KAFKA_COUNTER_END_UNSEEN); /* the message's previous trip ended unseen */
		gotel_inflight_put(&sarama_producer_async, tgid, a->msg, a);
	}
	bpf_map_delete_elem(&sarama_producer_partitioning, &key);
	return 0;
}

/* The broker acknowledged msg: its span, if in flight, ends with the partition and offset it got. */
__attribute__((noinline)) int sarama_async_succeeded(__u64 msg)
{
	__u32 tgid = gotel_current_tgid();
	struct sarama_producer_config *cfg = bpf_map_lookup_elem(&sarama_producer_config, &tgid);
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = msg};
	struct sarama_producer_async *a = bpf_map_lookup_elem(&sarama_producer_async, &key);
	if (!cfg || !a)
		return 0;
	a->event.has_result = 1;
	a->event.partition = (__s32)read_u64_at(msg, cfg->message_partition);
	a->event.offset = (__s64)read_u64_at(msg, cfg->message_offset);
	emit_async(a);
	bpf_map_delete_elem(&sarama_producer_async, &key);
	return 0;
}

/* Messages [from, from + SARAMA_SUCCESSES_CHUNK) of an acknowledged batch of n, past those ended with a span: a
 * span of theirs in flight is dropped and counted. */
__attribute__((noinline)) int sarama_forget_successes(__u32 tgid, __u64 batch, __s64 from, __s64 n)
{
	struct gotel_ctx_key key = {.tgid = tgid};
	for (int j = 0; j < SARAMA_SUCCESSES_CHUNK; j++) {
		if (from + j >= n)
			break;
		key.ctx = read_u64_at(batch, (from + j) * 8);
		if (bpf_map_delete_elem(&sarama_producer_async, &key) == 0)
			gotel_count_own(KAFKA_COUNTER_BATCH_OVERFLOW);
	}
	return 0;
}

static __always_inline int on_return_successes(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	if (!bpf_map_lookup_elem(&sarama_producer_config, &tgid))
		return 0;
	__u64 batch = go_arg(ctx, 2);
	__s64 n = (__s64)go_arg(ctx, 3);
	for (int i = 0; i < SARAMA_SUCCESSES_MAX; i++) {
		if (i >= n)
			break;
		sarama_async_succeeded(read_u64_at(batch, i * 8));
	}
	for (int i = SARAMA_SUCCESSES_MAX; i < SARAMA_SUCCESSES_SEEN; i += SARAMA_SUCCESSES_CHUNK) {
		if (i >= n)
			break;
		sarama_forget_successes(tgid, batch, i, n);
	}
	return 0;
}

GOTEL_UPROBE(sarama_send_message, on_send_message)
GOTEL_UPROBE(sarama_send_message_return, on_send_message_return)
GOTEL_UPROBE(sarama_send_messages, on_send_messages)
GOTEL_UPROBE(sarama_send_messages_return, on_send_messages_return)
GOTEL_UPROBE(sarama_partition_message, on_partition)
GOTEL_UPROBE(sarama_partition_message_return, on_partition_return)
GOTEL_UPROBE(sarama_return_successes, on_return_successes)
