/* The global tracer of go.opentelemetry.io/otel before v1.33.0 (v1.0.1-v1.32.0), included by otel_api.bpf.c.
 *
 * Without an SDK, its (*tracer).Start returns a nonRecordingSpan{sc, tracer} value that copies its parent's
 * context: nothing tells two of them apart, and gotel cannot write an identity into them under lockdown. But
 * Start boxes the value twice (runtime.convT): once into the context it returns (trace.ContextWithSpan), once
 * into the trace.Span it returns. Those two heap addresses are the span's identity while it lives: every
 * method the application calls reaches the itab's (*nonRecordingSpan).M wrapper with one of them as receiver,
 * and a call made with the context finds the first as the value of its context.valueCtx (trace_context.h).
 *
 *   (*tracer).Start entry (t, ctx, name, opts)          stashes its arguments by goroutine;
 *   (*tracer).Start RETs  (ctx itab, ctx, span itab, span)  if the span is a nonRecordingSpan (its itab's first
 *       method is the one user space gave), makes the span's context (parent: the span recorded for ctx, else a
 *       new trace, unless WithNewRoot), records it under both boxes and sends START with the name, the options
 *       and their attributes and links; where the kernel allows bpf_probe_write_user (..._inject), writes the
 *       span's IDs into both boxes' trace.SpanContext, so that the application sees them;
 *   (*nonRecordingSpan).SetAttributes / SetName / SetStatus / AddEvent / RecordError / End entries
 *       send what the call carries, tagged with the span's ID; End forgets the boxes.
 * User space (legacy-spans.ts) puts a span together from its calls. Everything is read in the kernel at the
 * call: the application may change or free it afterwards.
 */
#ifndef GOTEL_OTEL_API_GLOBAL_TRACER_LEGACY_H
#define GOTEL_OTEL_API_GLOBAL_TRACER_LEGACY_H

#define LEGACY_NAME_MAX 128    /* a span's or an event's name, a status description, an error's text */
#define LEGACY_KV_MAX 16       /* attributes read per call (the rest are counted as dropped) */
#define LEGACY_KEY_MAX 64      /* an attribute key's bytes kept */
#define LEGACY_VALUE_MAX 192   /* a string value's bytes kept, or a bool/int64/float64 slice's */
#define LEGACY_STRINGS_MAX 6   /* elements of a string slice kept, LEGACY_STRING_MAX - 1 bytes each */
#define LEGACY_STRING_MAX 32
#define LEGACY_OPTS_MAX 8      /* options read per call */
#define LEGACY_LINKS_MAX 4     /* links read per WithLinks */
#define LEGACY_SOURCES_MAX 8   /* attribute lists per call: WithAttributes options, SetAttributes, each link's */
#define LEGACY_CLOSURES_MAX 8  /* WithLinks / WithNewRoot closures the binary has (one per inlined copy) */

/* attribute.KeyValue {Key string; Value{vtype Type; numeric uint64; stringly string; slice any}} and trace.Link
 * {SpanContext (traceID, spanID, traceFlags, traceState, remote: 64 bytes); Attributes []KeyValue}: the same in
 * every release v1.0.1-v1.32.0 (64-bit; compared in each release's source). */
#define KV_SIZE 64
#define KV_VTYPE 16
#define KV_NUMERIC 24
#define KV_STRINGLY 32
#define KV_SLICE 48
#define LINK_SIZE 88
#define LINK_ATTRIBUTES 64
/* attribute.Type */
#define ATTR_STRING 4
#define ATTR_BOOLSLICE 5
#define ATTR_FLOAT64SLICE 7
#define ATTR_STRINGSLICE 8
/* abi.Type: Size_ at 0, Kind_ at 23 (Go 1.19-1.27, 64-bit) */
#define ABI_TYPE_KIND 23
#define ABI_KIND_MASK 0x1f
#define ABI_KIND_POINTER 22
/* valueCtx {Context; key, val any}: val's data word */
#define VALUE_CTX_VAL_DATA 40
/* an itab's first method: fun[0] after inter, _type, hash (+pad) */
#define ITAB_FUN0 24

/* v & (max - 1) after a check that v < max, kept by the compiler (max: a power of two): an index the verifier can
 * bound even where clang would reuse the unchecked register */
#define LEGACY_INDEX(v, max) ({ __u32 __v = (v); asm volatile("" : "+r"(__v)); __v & ((max) - 1); })

/* Per process, from its executable (link-time addresses plus its load bias) */
struct otel_api_legacy_config {
	__u64 span_method;          /* (*nonRecordingSpan).AddEvent: first method of its trace.Span itab */
	__u64 attributes_start[2];  /* attributeOption's applySpanStart (both receivers): a WithAttributes at Start */
	__u64 attributes_event[2];  /* its applyEvent: at AddEvent / RecordError */
	__u64 closure_fn[LEGACY_CLOSURES_MAX];
	__u32 closure_kind[LEGACY_CLOSURES_MAX]; /* enum otel_api_legacy_closure */
	__u64 span_context; /* where nonRecordingSpan.sc is: after an embedded.Span interface from v1.20.0 on */
};

enum otel_api_legacy_closure {
	LEGACY_CLOSURE_LINKS = 1,    /* WithLinks: captures links []Link */
	LEGACY_CLOSURE_NEW_ROOT = 2, /* WithNewRoot */
};
GOTEL_BTF_TYPE(otel_api_legacy_closure, enum otel_api_legacy_closure);

enum otel_api_legacy_call { /* after enum otel_api_event_kind's: both events start with hdr and kind */
	LEGACY_START = 16,
	LEGACY_ATTRIBUTES = 17,
	LEGACY_NAME = 18,
	LEGACY_STATUS = 19,
	LEGACY_EVENT = 20,
	LEGACY_ERROR = 21,
	LEGACY_END = 22,
};
GOTEL_BTF_TYPE(otel_api_legacy_call, enum otel_api_legacy_call);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct otel_api_legacy_config);
} otel_api_legacy_config SEC(".maps");

/* (tgid, goroutine) -> Start's arguments, from its entry to its return */
struct legacy_starting {
	__u64 tracer, ctx, name_ptr, name_len, opts_ptr, opts_len, start_ns;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct gotel_ctx_key);
	__type(value, struct legacy_starting);
} otel_api_legacy_starting SEC(".maps");

/* (tgid, box) -> the span, under both of its boxes. LRU: a span never ended ages out. */
struct legacy_span {
	struct otel_api_inflight f;
	__u64 boxes[2];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gotel_ctx_key);
	__type(value, struct legacy_span);
} otel_api_legacy_spans SEC(".maps");

struct otel_api_kv {
	__u64 type;        /* attribute.Type: BOOL 1, INT64 2, FLOAT64 3, STRING 4, then their slices 5-8 */
	__u64 numeric;     /* a bool's, int64's or float64's bits */
	__u32 group;       /* 0: the span's (or the event's); 1 + i: link i's */
	__u32 key_len;
	__u32 value_len;   /* bytes of value: a string's, a slice's elements (strings: a length byte and the bytes each) */
	__u32 pad;
	char key[LEGACY_KEY_MAX];
	__u8 value[LEGACY_VALUE_MAX];
};

struct otel_api_option {
	__u64 method;  /* its itab's first method: which option type it is */
	__u8 data[32]; /* what its data word points to: a closure (code pointer, captures), a time.Time, a slice */
};

/* a link's trace.SpanContext: its traceID, spanID and traceFlags (the first 25 bytes of the Go struct) */
struct otel_api_link {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
	__u8 pad[7];
};
#define LINK_CONTEXT_READ 25

/* what user space needs of the layouts above that their BTF does not say */
enum otel_api_legacy_layout {
	LEGACY_LAYOUT_STRING = LEGACY_STRING_MAX, /* a string slice's element in otel_api_kv.value: a length byte and the bytes */
};
GOTEL_BTF_TYPE(otel_api_legacy_layout, enum otel_api_legacy_layout);

struct otel_api_source {
	__u32 group; /* as otel_api_kv.group */
	__u32 len;   /* attributes the list had */
};

struct otel_api_call_event {
	struct gotel_event_header hdr; /* start_ns: the call's time (START: Start's entry) */
	__u32 kind;                    /* enum otel_api_legacy_call */
	__u32 name_len;
	__u32 n_opts;
	__u32 n_links;
	__u32 n_sources;
	__u32 n_kv;
	__u64 tracer; /* START: the *tracer (its name and options: user space reads them, they live as long as it) */
	__u64 value;  /* STATUS: the code; ERROR: the error's itab */
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8]; /* START; zero: a root */
	__u8 flags;
	__u8 pad[3];
	__u32 tracestate_len; /* START: its trace's tracestate, at the end */
	/* Sent as far as a call needs (send_call): End up to here; */
	struct otel_api_option opts[LEGACY_OPTS_MAX];
	/* SetName and SetStatus up to here; */
	char name[LEGACY_NAME_MAX]; /* START, NAME: the span's name; EVENT: the event's; STATUS: the description;
				     * ERROR: the first string field of the error's value */
	/* the others up to the attributes read, START with a tracestate all of it. */
	struct otel_api_source sources[LEGACY_SOURCES_MAX];
	struct otel_api_link links[LEGACY_LINKS_MAX];
	struct otel_api_kv kv[LEGACY_KV_MAX];
	char tracestate[GOTEL_TRACESTATE_MAX];
};
GOTEL_BTF_TYPE(otel_api_call_event, struct otel_api_call_event);

struct legacy_scratch {
	struct legacy_span span;
	struct otel_api_call_event event;
	struct go_slice lists[LEGACY_SOURCES_MAX]; /* the attribute lists found, read after the options */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct legacy_scratch);
} otel_api_legacy_scratch SEC(".maps");

static __always_inline struct legacy_scratch *legacy_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&otel_api_legacy_scratch, &zero);
}

static __always_inline void add_source(struct legacy_scratch *s, __u64 ptr, __s64 len, __u32 group)
{
	__u32 n = s->event.n_sources;
	if (len <= 0 || n >= LEGACY_SOURCES_MAX)
		return;
	n = LEGACY_INDEX(n, LEGACY_SOURCES_MAX);
	s->lists[n].ptr = ptr;
	s->lists[n].len = len;
	s->event.sources[n].group = group;
	s->event.sources[n].len = len > 0xffff ? 0xffff : len;
	s->event.n_sources = n + 1;
}

static __always_inline void read_kv(struct otel_api_kv *o, __u64 at, __u32 group)
{
	__u8 raw[KV_SIZE];
	o->group = group;
	o->type = 0;
	o->key_len = 0;
	o->value_len = 0;
	if (bpf_probe_read_user(raw, KV_SIZE, (const void *)at))
		return;
	struct go_string key, str;
	struct go_iface slice;
	__u64 vtype;
	__builtin_memcpy(&key, raw, sizeof(key));
	__builtin_memcpy(&vtype, raw + KV_VTYPE, 8);
	__builtin_memcpy(&o->numeric, raw + KV_NUMERIC, 8);
	__builtin_memcpy(&str, raw + KV_STRINGLY, sizeof(str));
	__builtin_memcpy(&slice, raw + KV_SLICE, sizeof(slice));
	o->type = vtype;
	o->key_len = go_read_bytes(o->key, LEGACY_KEY_MAX, key.ptr, key.len);
	if (vtype == ATTR_STRING) {
		o->value_len = go_read_bytes(o->value, LEGACY_VALUE_MAX, str.ptr, str.len);
		return;
	}
	if (vtype < ATTR_BOOLSLICE || vtype > ATTR_STRINGSLICE || !slice.tab || !slice.data)
		return;
	/* From v1.12.0 the value holds a [N]T: its bytes are its type's Size_; before, a *[]T */
	__s64 size = 0;
	__u8 kind = 0;
	if (bpf_probe_read_user(&size, 8, (const void *)slice.tab) || bpf_probe_read_user(&kind, 1, (const void *)(slice.tab + ABI_TYPE_KIND)))
		return;
	if ((kind & ABI_KIND_MASK) == ABI_KIND_POINTER) {
		struct go_slice header;
		if (bpf_probe_read_user(&header, sizeof(header), (const void *)slice.data))
			return;
		slice.data = header.ptr;
		size = header.len * (vtype == ATTR_BOOLSLICE ? 1 : vtype == ATTR_STRINGSLICE ? 16 : 8);
	}
	if (vtype <= ATTR_FLOAT64SLICE) {
		o->value_len = go_read_bytes(o->value, LEGACY_VALUE_MAX, slice.data, size);
		return;
	}
	__u32 n = 0;
	for (int j = 0; j < LEGACY_STRINGS_MAX; j++) {
		if ((j + 1) * 16 > size || bpf_probe_read_user(&str, sizeof(str), (const void *)(slice.data + j * 16)))
			break;
		__u8 *dst = o->value + j * LEGACY_STRING_MAX;
		dst[0] = go_read_bytes(dst + 1, LEGACY_STRING_MAX - 1, str.ptr, str.len);
		n = j + 1;
	}
	o->value_len = n * LEGACY_STRING_MAX;
}

/* The functions below are global (not inlined), with scalar arguments only (kernels before 5.12 allow no memory
 * pointers there): the kernel verifies each once, not once per iteration and path of its callers' loops, which
 * is what keeps the start program inside the verifier's budget. They work on this CPU's scratch. */

/* Reads the attribute at `at` into kv[i]. */
__attribute__((noinline)) int otel_api_legacy_kv(__u32 i, __u64 at, __u32 group)
{
	struct legacy_scratch *s = legacy_scratch();
	if (!s)
		return 0;
	read_kv(&s->event.kv[LEGACY_INDEX(i, LEGACY_KV_MAX)], at, group);
	return 0;
}

/* Reads attribute list d into kv[] while there is room. */
__attribute__((noinline)) int otel_api_legacy_source(__u32 d)
{
	struct legacy_scratch *s = legacy_scratch();
	if (!s)
		return 0;
	struct otel_api_call_event *e = &s->event;
	d = LEGACY_INDEX(d, LEGACY_SOURCES_MAX);
	__u64 ptr = s->lists[d].ptr;
	__s64 len = s->lists[d].len;
	__u32 group = e->sources[d].group;
	for (int j = 0; j < LEGACY_KV_MAX; j++) {
		__u32 i = e->n_kv;
		if (j >= len || i >= LEGACY_KV_MAX)
			break;
		otel_api_legacy_kv(i, ptr + (__u64)j * KV_SIZE, group);
		e->n_kv = i + 1;
	}
	return 0;
}

/* Reads the attribute lists found, in order, into kv[] until it is full. */
__attribute__((noinline)) int otel_api_legacy_sources(void)
{
	struct legacy_scratch *s = legacy_scratch();
	if (!s)
		return 0;
	s->event.n_kv = 0;
	for (__u32 d = 0; d < LEGACY_SOURCES_MAX; d++) {
		if (d >= s->event.n_sources)
			break;
		otel_api_legacy_source(d);
	}
	return 0;
}

static __always_inline void read_links(struct legacy_scratch *s, __u64 ptr, __s64 len)
{
	struct otel_api_call_event *e = &s->event;
	for (int l = 0; l < LEGACY_LINKS_MAX; l++) {
		__u32 i = e->n_links;
		if (l >= len || i >= LEGACY_LINKS_MAX)
			break;
		i = LEGACY_INDEX(i, LEGACY_LINKS_MAX);
		__u64 at = ptr + (__u64)l * LINK_SIZE;
		struct go_slice attrs = {};
		if (bpf_probe_read_user(&e->links[i], LINK_CONTEXT_READ, (const void *)at) ||
		    bpf_probe_read_user(&attrs, sizeof(attrs), (const void *)(at + LINK_ATTRIBUTES)))
			break;
		e->n_links = i + 1;
		add_source(s, attrs.ptr, attrs.len, 1 + i);
	}
}

/* Which of a call's option kinds carry attributes (the first method of attributeOption's itab for it) */
enum legacy_options { OPTIONS_START = 0, OPTIONS_EVENT = 1, OPTIONS_END = 2 };

/* Reads option i, the interface at `at`, into opts[i]: its attributes and links become sources. 1 when it is
 * WithNewRoot, -1 when there is none. */
__attribute__((noinline)) int otel_api_legacy_option(__u32 i, __u64 at, __u32 which)
{
	__u32 tgid = gotel_current_tgid();
	const struct otel_api_legacy_config *cfg = bpf_map_lookup_elem(&otel_api_legacy_config, &tgid);
	struct legacy_scratch *s = legacy_scratch();
	if (!cfg || !s)
		return -1;
	struct otel_api_call_event *e = &s->event;
	struct otel_api_option *opt = &e->opts[LEGACY_INDEX(i, LEGACY_OPTS_MAX)];
	struct go_iface o = {};
	opt->method = 0;
	__builtin_memset(opt->data, 0, sizeof(opt->data));
	if (bpf_probe_read_user(&o, sizeof(o), (const void *)at) || !o.tab)
		return -1;
	bpf_probe_read_user(&opt->method, 8, (const void *)(o.tab + ITAB_FUN0));
	bpf_probe_read_user(opt->data, sizeof(opt->data), (const void *)o.data);
	e->n_opts = LEGACY_INDEX(i, LEGACY_OPTS_MAX) + 1;
	struct go_slice list;
	__builtin_memcpy(&list, opt->data, sizeof(list));
	const __u64 *attributes = which == OPTIONS_START ? cfg->attributes_start : which == OPTIONS_EVENT ? cfg->attributes_event : NULL;
	if (opt->method && attributes && (opt->method == attributes[0] || opt->method == attributes[1])) {
		add_source(s, list.ptr, list.len, 0);
		return 0;
	}
	__u64 fn = list.ptr; /* a closure's code pointer */
	for (int c = 0; c < LEGACY_CLOSURES_MAX; c++) {
		if (!fn || cfg->closure_fn[c] != fn)
			continue;
		if (cfg->closure_kind[c] == LEGACY_CLOSURE_NEW_ROOT)
			return 1;
		if (cfg->closure_kind[c] == LEGACY_CLOSURE_LINKS) {
			struct go_slice links;
			__builtin_memcpy(&links, opt->data + 8, sizeof(links));
			read_links(s, links.ptr, links.len);
		}
		break;
	}
	return 0;
}

/* Reads a call's options (n at ptr); the attribute lists they hold are read by otel_api_legacy_sources. Returns
 * whether one was WithNewRoot. */
static __always_inline int read_options(__u64 ptr, __s64 len, __u32 which)
{
	int new_root = 0;
	for (int i = 0; i < LEGACY_OPTS_MAX; i++) {
		if (i >= len)
			break;
		int r = otel_api_legacy_option(i, ptr + i * 16, which);
		if (r < 0)
			break;
		new_root |= r;
	}
	return new_root;
}

/* Sends as much of the call event as its kind fills: most spans have no tracestate and few attributes, and an
 * End carries only its options. */
static __always_inline void send_call(struct otel_api_call_event *e)
{
	__u64 size;
	if (e->kind == LEGACY_END)
		size = __builtin_offsetof(struct otel_api_call_event, name);
	else if (e->kind == LEGACY_NAME || e->kind == LEGACY_STATUS)
		size = __builtin_offsetof(struct otel_api_call_event, sources);
	else if (e->tracestate_len)
		size = sizeof(*e);
	else
		size = __builtin_offsetof(struct otel_api_call_event, kv) + (__u64)e->n_kv * sizeof(struct otel_api_kv);
	/* bound the sum itself: clang would test its part, whose bound kernels before 6.x do not carry over */
	asm volatile("" : "+r"(size));
	if (size > sizeof(*e))
		size = sizeof(*e);
	gotel_emit(e, size);
}

/* A fresh event about span (NULL: it is not sampled). */
static __always_inline struct otel_api_call_event *span_event(const void *ctx, struct legacy_scratch *s, __u32 kind, const struct legacy_span *span)
{
	if (!(span->f.sc.flags & GOTEL_FLAG_SAMPLED))
		return NULL;
	struct otel_api_call_event *e = &s->event;
	__builtin_memset(e, 0, __builtin_offsetof(struct otel_api_call_event, opts));
	gotel_fill_header(&e->hdr, gotel_event_type_id, go_goroutine(ctx));
	e->kind = kind;
	__builtin_memcpy(e->trace_id, span->f.sc.trace_id, 16);
	__builtin_memcpy(e->span_id, span->f.sc.span_id, 8);
	e->flags = span->f.sc.flags;
	return e;
}

/* The span recorded under box, or NULL (one gotel did not see start). */
static __always_inline struct legacy_span *span_at(__u64 box)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = box};
	return bpf_map_lookup_elem(&otel_api_legacy_spans, &key);
}

/* A fresh event about the span recorded under box (NULL: none, or not sampled). */
static __always_inline struct otel_api_call_event *call_event(const void *ctx, struct legacy_scratch *s, __u32 kind, __u64 box)
{
	struct legacy_span *span = span_at(box);
	return span ? span_event(ctx, s, kind, span) : NULL;
}
static __always_inline int on_legacy_start(const void *ctx)
{
	/* attached only to processes with a config: Start's return looks it up */
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	struct legacy_starting st = {
		.tracer = go_arg(ctx, 1), .ctx = go_arg(ctx, 3), .name_ptr = go_arg(ctx, 4), .name_len = go_arg(ctx, 5),
		.opts_ptr = go_arg(ctx, 6), .opts_len = go_arg(ctx, 7), .start_ns = bpf_ktime_get_ns(),
	};
	bpf_map_update_elem(&otel_api_legacy_starting, &key, &st, BPF_ANY);
	return 0;
}

/* Writes the span's IDs and flags into nonRecordingSpan.sc of a box (trace.SpanContext: traceID, spanID,
 * traceFlags at 0, 16, 24): plain bytes of an object nothing else writes, which the application's
 * span.SpanContext() and its children's trace.SpanContextFromContext then read. */
static __always_inline void write_box(__u64 box, __u64 at, const struct gotel_span_context *sc)
{
	if (!box)
		return;
	inject_write_user((void *)(box + at), sc->trace_id, 16);
	inject_write_user((void *)(box + at + 16), sc->span_id, 8);
	inject_write_user((void *)(box + at + 24), &sc->flags, 1);
}

static __always_inline int legacy_started(const void *ctx, const int write)
{
	__u32 tgid = gotel_current_tgid();
	struct gotel_ctx_key key = {.tgid = tgid, .ctx = go_goroutine(ctx)};
	struct legacy_starting *st = bpf_map_lookup_elem(&otel_api_legacy_starting, &key);
	const struct otel_api_legacy_config *cfg = bpf_map_lookup_elem(&otel_api_legacy_config, &tgid);
	struct legacy_scratch *s = legacy_scratch();
	if (!st || !cfg || !s)
		return 0;
	struct legacy_starting start = *st;
	bpf_map_delete_elem(&otel_api_legacy_starting, &key);
	/* results: ctx (itab, *valueCtx), span (itab, box) */
	__u64 method = 0, ctx_box = 0, span_box = go_arg(ctx, 4);
	if (bpf_probe_read_user(&method, 8, (const void *)(go_arg(ctx, 3) + ITAB_FUN0)) || method != cfg->span_method || !span_box)
		return 0; /* the delegate's span: an SDK the application installed makes it */
	bpf_probe_read_user(&ctx_box, 8, (const void *)(go_arg(ctx, 2) + VALUE_CTX_VAL_DATA));

	struct otel_api_call_event *e = &s->event;
	__builtin_memset(e, 0, __builtin_offsetof(struct otel_api_call_event, opts));
	int new_root = read_options(start.opts_ptr, start.opts_len, OPTIONS_START);

	struct legacy_span *span = &s->span;
	struct otel_api_inflight *f = &span->f;
	__builtin_memset(f, 0, __builtin_offsetof(typeof(*f), sc.tracestate));
	f->start_ns = start.start_ns;
	struct gotel_span_context *p = new_root ? NULL : gotel_find_parent(tgid, start.ctx);
	if (p)
		__builtin_memcpy(f->parent_span_id, p->span_id, 8);
	gotel_start_span(&f->sc, p);
	span->boxes[0] = span_box;
	span->boxes[1] = ctx_box;
	struct gotel_ctx_key k = {.tgid = tgid, .ctx = span_box};
	if (bpf_map_update_elem(&otel_api_legacy_spans, &k, span, BPF_ANY)) {
		gotel_count(GOTEL_COUNTER_INFLIGHT_LOST);
		return 0;
	}
	gotel_track(tgid, span_box, &f->sc);
	if (ctx_box && ctx_box != span_box) {
		k.ctx = ctx_box;
		bpf_map_update_elem(&otel_api_legacy_spans, &k, span, BPF_ANY);
		gotel_track(tgid, ctx_box, &f->sc);
	}
	if (write) {
		write_box(span_box, cfg->span_context, &f->sc);
		if (ctx_box != span_box)
			write_box(ctx_box, cfg->span_context, &f->sc);
	}
	if (!(f->sc.flags & GOTEL_FLAG_SAMPLED))
		return 0; /* counted at its End */

	otel_api_legacy_sources();
	gotel_fill_header(&e->hdr, gotel_event_type_id, key.ctx);
	e->hdr.start_ns = start.start_ns;
	e->kind = LEGACY_START;
	e->tracer = start.tracer;
	__builtin_memcpy(e->trace_id, f->sc.trace_id, 16);
	__builtin_memcpy(e->span_id, f->sc.span_id, 8);
	__builtin_memcpy(e->parent_span_id, f->parent_span_id, 8);
	e->flags = f->sc.flags;
	e->tracestate_len = f->sc.tracestate_len;
	if (e->tracestate_len)
		bpf_probe_read_kernel(e->tracestate, sizeof(e->tracestate), f->sc.tracestate);
	e->name_len = go_read_bytes(e->name, LEGACY_NAME_MAX, start.name_ptr, start.name_len);
	send_call(e);
	return 0;
}

static __always_inline int on_legacy_started(const void *ctx) { return legacy_started(ctx, 0); }
static __always_inline int on_legacy_started_inject(const void *ctx) { return legacy_started(ctx, 1); }

/* SetAttributes(s, kv ...KeyValue) */
static __always_inline int on_legacy_attributes(const void *ctx)
{
	struct legacy_scratch *s = legacy_scratch();
	struct otel_api_call_event *e = s ? call_event(ctx, s, LEGACY_ATTRIBUTES, go_arg(ctx, 1)) : NULL;
	if (!e)
		return 0;
	add_source(s, go_arg(ctx, 2), go_arg(ctx, 3), 0);
	otel_api_legacy_sources();
	send_call(e);
	return 0;
}

/* SetName(s, name) */
static __always_inline int on_legacy_name(const void *ctx)
{
	struct legacy_scratch *s = legacy_scratch();
	struct otel_api_call_event *e = s ? call_event(ctx, s, LEGACY_NAME, go_arg(ctx, 1)) : NULL;
	if (!e)
		return 0;
	e->name_len = go_read_bytes(e->name, LEGACY_NAME_MAX, go_arg(ctx, 2), go_arg(ctx, 3));
	send_call(e);
	return 0;
}

/* SetStatus(s, code, description) */
static __always_inline int on_legacy_status(const void *ctx)
{
	struct legacy_scratch *s = legacy_scratch();
	struct otel_api_call_event *e = s ? call_event(ctx, s, LEGACY_STATUS, go_arg(ctx, 1)) : NULL;
	if (!e)
		return 0;
	e->value = (__u32)go_arg(ctx, 2);
	e->name_len = go_read_bytes(e->name, LEGACY_NAME_MAX, go_arg(ctx, 3), go_arg(ctx, 4));
	send_call(e);
	return 0;
}

/* AddEvent(s, name, opts ...EventOption) */
static __always_inline int on_legacy_event(const void *ctx)
{
	struct legacy_scratch *s = legacy_scratch();
	struct otel_api_call_event *e = s ? call_event(ctx, s, LEGACY_EVENT, go_arg(ctx, 1)) : NULL;
	if (!e)
		return 0;
	e->name_len = go_read_bytes(e->name, LEGACY_NAME_MAX, go_arg(ctx, 2), go_arg(ctx, 3));
	read_options(go_arg(ctx, 4), go_arg(ctx, 5), OPTIONS_EVENT);
	otel_api_legacy_sources();
	send_call(e);
	return 0;
}

/* RecordError(s, err error, opts ...EventOption): the error's text is its value's first string field, which is
 * what errors.New's and fmt.Errorf's values hold (user space uses it only for those types) */
static __always_inline int on_legacy_error(const void *ctx)
{
	if (!go_arg(ctx, 2))
		return 0; /* RecordError(nil) records nothing */
	struct legacy_scratch *s = legacy_scratch();
	struct otel_api_call_event *e = s ? call_event(ctx, s, LEGACY_ERROR, go_arg(ctx, 1)) : NULL;
	if (!e)
		return 0;
	e->value = go_arg(ctx, 2);
	e->name_len = go_read_string_at(e->name, LEGACY_NAME_MAX, go_arg(ctx, 3));
	read_options(go_arg(ctx, 4), go_arg(ctx, 5), OPTIONS_EVENT);
	otel_api_legacy_sources();
	send_call(e);
	return 0;
}

/* End(s, opts ...SpanEndOption) */
static __always_inline int on_legacy_end(const void *ctx)
{
	__u32 tgid = gotel_current_tgid();
	struct legacy_span *span = span_at(go_arg(ctx, 1));
	struct legacy_scratch *s = legacy_scratch();
	if (!span || !s)
		return 0;
	__u64 boxes[2] = {span->boxes[0], span->boxes[1]};
	struct otel_api_call_event *e = span_event(ctx, s, LEGACY_END, span);
	if (e) {
		read_options(go_arg(ctx, 2), go_arg(ctx, 3), OPTIONS_END); /* a WithTimestamp */
		send_call(e);
	} else {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
	}
	struct gotel_ctx_key key = {.tgid = tgid};
	for (int i = 0; i < 2; i++) {
		key.ctx = boxes[i];
		if (!key.ctx)
			continue;
		gotel_untrack(tgid, key.ctx);
		bpf_map_delete_elem(&otel_api_legacy_spans, &key);
	}
	return 0;
}

GOTEL_UPROBE(otel_api_legacy_start, on_legacy_start)
GOTEL_UPROBE(otel_api_legacy_started, on_legacy_started)
GOTEL_UPROBE(otel_api_legacy_started_inject, on_legacy_started_inject)
GOTEL_UPROBE(otel_api_legacy_attributes, on_legacy_attributes)
GOTEL_UPROBE(otel_api_legacy_name, on_legacy_name)
GOTEL_UPROBE(otel_api_legacy_status, on_legacy_status)
GOTEL_UPROBE(otel_api_legacy_event, on_legacy_event)
GOTEL_UPROBE(otel_api_legacy_error, on_legacy_error)
GOTEL_UPROBE(otel_api_legacy_end, on_legacy_end)

#endif
