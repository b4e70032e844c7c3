/* database/sql client spans: one CLIENT span per statement a Go program runs through database/sql, and per
 * transaction BEGIN / COMMIT / ROLLBACK. Uprobes at the entry of each function below start the span (a child
 * of the span recorded for the call's context or an ancestor of it, else a new trace); uprobes on every RET
 * of them end it with the returned error's dynamic type.
 *
 *   func (db *DB) queryDC(ctx, txctx context.Context, dc *driverConn, releaseConn func(error), query string,
 *                         args []any) (*Rows, error)
 *       Go ABI words: db 1, ctx 2-3, txctx 4-5, dc 6, releaseConn 7, query 8-9; results: *Rows 1, error 2-3
 *   func (db *DB) execDC(ctx context.Context, dc *driverConn, release func(error), query string, args []any)
 *                        (Result, error)
 *       db 1, ctx 2-3, dc 4, release 5, query 6-7; results: Result 1-2, error 3-4
 *   func (s *Stmt) QueryContext(ctx context.Context, args ...any) (*Rows, error)    s 1, ctx 2-3; error 2-3
 *   func (s *Stmt) ExecContext(ctx context.Context, args ...any) (Result, error)    s 1, ctx 2-3; error 3-4
 *       (prepared statements run through neither queryDC nor execDC; the text is Stmt.query)
 *   func (db *DB) beginDC(ctx context.Context, dc *driverConn, release func(error), opts *TxOptions) (*Tx, error)
 *       db 1, ctx 2-3; error 2-3
 *   func (tx *Tx) Commit() error / func (tx *Tx) rollback(discardConn bool) error
 *       tx 1; error 1-2; the context is Tx.ctx. Rollback is a one-line wrapper the compiler inlines into its
 *       callers, so its body, rollback, is probed. A rollback of a finished transaction (the `defer
 *       tx.Rollback()` idiom after Commit) only returns ErrTxDone: Tx.done is already set at entry, and no span
 *       is made.
 *
 * Every DB, Tx and Stmt path of database/sql ends in one of these (DB/Conn/Tx Query*, QueryRow*, Exec* in
 * queryDC/execDC; Stmt and Tx.Stmt in Stmt.*Context). Preparing a statement makes no span.
 *
 * pgx's own API (github.com/jackc/pgx/v5, and pgxpool on it) does not go through database/sql:
 *   func (c *Conn) Query(ctx context.Context, sql string, args ...any) (Rows, error)
 *   func (c *Conn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
 *       c 1, ctx 2-3, sql 4-5; results: Rows 1-2 / CommandTag{s string} 1-2, error 3-4
 *   func (c *Conn) CopyFrom(ctx context.Context, tableName Identifier, columnNames []string,
 *                           rowSrc CopyFromSource) (int64, error)
 *       c 1, ctx 2-3, tableName 4-6 ([]string); results: int64 1, error 2-3; a COPY span named by the table
 *   func (c *Conn) SendBatch(ctx context.Context, b *Batch) BatchResults          c 1, ctx 2-3, b 4
 *       sends the queued statements; they run as the results are read. Its span ends at a RET of the results'
 *       Close() error (batchResults, and v5's pipelineBatchResults; error 1-2), on the same goroutine
 * pgx v4 (github.com/jackc/pgx/v4) has the same four, except that Exec's CommandTag is a []byte: error 4-5.
 * QueryRow goes through Query; Begin, Commit and Rollback run Exec("begin"), …. pgx's
 * database/sql driver calls them too, inside database/sql's own call: a goroutine with a database/sql call in
 * flight makes no pgx span, so each statement is one span. Each kind of call has its own return program, which
 * ends only a span of its kind.
 *
 * The statement text is read only when user space asks for it (database_sql_capture_query), up to
 * DATABASE_SQL_QUERY_MAX bytes, at the return; the event is sent up to the text's length.
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

char LICENSE[] SEC("license") = "GPL";

#define DATABASE_SQL_QUERY_MAX 4096

/* which API made the call */
enum database_sql_client {
	DATABASE_SQL_CLIENT_STDLIB = 0, /* database/sql */
	DATABASE_SQL_CLIENT_PGX = 1,    /* pgx's own Conn (v5 or v4) */
};

/* what a span stands for; user space names the span after it when the statement is not parsed */
enum database_sql_operation {
	DATABASE_SQL_QUERY = 1,
	DATABASE_SQL_EXEC = 2,
	DATABASE_SQL_BEGIN = 3,
	DATABASE_SQL_COMMIT = 4,
	DATABASE_SQL_ROLLBACK = 5,
	DATABASE_SQL_COPY = 6, /* pgx's CopyFrom: the "statement" is the table's name */
	DATABASE_SQL_BATCH = 7, /* pgx's SendBatch, until its results are closed */
};

struct database_sql_config {
	__u64 stmt_query; /* database/sql.Stmt.query (string) */
	__u64 stmt_db;    /* database/sql.Stmt.db (*DB) */
	__u64 tx_ctx;     /* database/sql.Tx.ctx (context.Context) */
	__u64 tx_db;      /* database/sql.Tx.db (*DB) */
	__u64 tx_done;    /* database/sql.Tx.done (int32 before Go 1.20, atomic.Bool since: a 4-byte word) */
	__u64 db_connector; /* database/sql.DB.connector (driver.Connector) */
	__u64 pgx_conn_config; /* github.com/jackc/pgx/v5.Conn.config (*ConnConfig), or v4's */
	__u64 pgx_batch_queries; /* github.com/jackc/pgx/v5.Batch.QueuedQueries, or v4's Batch.items (slices) */
	__u64 exec_err_capture; /* where execDC's deferred closure keeps &err in its context (plan.ts: EXEC_DONE) */
};

/* What a span event carries before its statement; kept in flight between entry and return. */
#define DATABASE_SQL_SPAN_FIELDS                                                                            \
	struct gotel_event_header hdr;                                                                        \
	__u8 parent_span_id[8]; /* zero: a root span */                                                        \
	struct go_iface connector; /* the DB's driver.Connector: user space reads driver and data source once per \
				      connector (a DB keeps its connector; a new DB at a reused address has another); \
				      for pgx, data is the Conn's *ConnConfig */                                   \
	__u64 error_type;       /* runtime._type of the returned error's dynamic type; 0: no error */          \
	__u64 error_data;       /* the error's data word: user space reads the database's code from it */     \
	__u64 query_full_len;   /* the statement's length in the target, to tell a truncated one */            \
	__u32 operation;        /* enum database_sql_operation */                                              \
	__u32 query_len;        /* bytes of query sent */                                                      \
	__u32 client;           /* enum database_sql_client */                                                 \
	__u32 batch_size;       /* a BATCH span: the statements queued */                                      \
	struct gotel_span_context sc;

struct database_sql_event {
	DATABASE_SQL_SPAN_FIELDS
	char query[DATABASE_SQL_QUERY_MAX]; /* last: sent up to query_len */
};

/* The statement is copied at the return, when the event is sent: the string is the caller's and still there,
 * and an in-flight entry stays small (no 4 KiB per call waiting for the database). */
struct database_sql_inflight {
	__u32 error_word; /* the first Go ABI result word of the error this function returns */
	__u32 pad;
	__u64 query;      /* the statement's bytes in the target, and their length */
	__s64 query_len;
	struct database_sql_head {
		DATABASE_SQL_SPAN_FIELDS
	} head;
};

#define DATABASE_SQL_HEAD_SIZE __builtin_offsetof(struct database_sql_event, query)
_Static_assert(__builtin_offsetof(struct database_sql_head, sc) == __builtin_offsetof(struct database_sql_event, sc) &&
		       DATABASE_SQL_HEAD_SIZE <= sizeof(struct database_sql_head),
	       "an in-flight head is the event up to its statement");

GOTEL_BTF_TYPE(database_sql_event, struct database_sql_event);
GOTEL_BTF_TYPE(database_sql_operation, enum database_sql_operation);
GOTEL_BTF_TYPE(database_sql_client, enum database_sql_client);

/* set by user space before load: read the statement text (OTEL_GO_AUTO_INCLUDE/PARSE_DB_STATEMENT) */
volatile const __u32 database_sql_capture_query = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct database_sql_config);
} database_sql_config SEC(".maps");

/* Keyed by (tgid, goroutine). Preallocated: kernels before 6.1 refuse other hash maps in tracing programs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct gotel_ctx_key);
	__type(value, struct database_sql_inflight);
} database_sql_inflight SEC(".maps");

struct scratch {
	struct database_sql_inflight inflight; /* built at the entry */
	__u64 go_ctx;                          /* the call's context.Context (data word), for the start program */
	struct database_sql_event event;       /* sent at the return */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} database_sql_scratch SEC(".maps");

/* The entry programs (12) end in one program that finds the call's parent and files its span: the walk along the
 * context chain is most of what the kernel verifies per program (~4,500 of ~5,000 instructions processed), and a
 * program's global functions are verified with it, once per program. The entry programs call no function, so the
 * tail call works on every kernel gotel runs on (mixing the two needs 5.10 on x86, 6.0 on arm64). ProbeObject
 * fills each slot before the first attach, with the program its member names (DATABASE_SQL_TAIL_X: database_sql_x). */
enum database_sql_tail {
	DATABASE_SQL_TAIL_START = 0,
};
GOTEL_BTF_TYPE(database_sql_tail, enum database_sql_tail);
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} database_sql_tails SEC(".maps");

/* this object's own reasons for losing spans (src/instrumentations/index.ts says what the `stopped` line calls them) */
enum database_sql_counter {
	DATABASE_SQL_COUNTER_NO_START = 0, /* the entry's tail call failed: its slot empty (never after attach) */
};
GOTEL_BTF_TYPE(database_sql_counter, enum database_sql_counter);

/* Starts the span of a call: ctx is the data word of its context.Context, (query, query_len) its statement;
 * db the *sql.DB, or pgx_conn the *pgx.Conn. What the call gives goes into this CPU's scratch, and the start
 * program (on_start) goes on from there. */
static __always_inline int start(const void *ctx, const struct database_sql_config *cfg, __u32 operation, __u32 error_word,
				 __u64 db, __u64 pgx_conn, __u64 go_ctx, __u64 query, __s64 query_len, __u32 batch_size)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&database_sql_scratch, &zero);
	if (!s)
		return 0;
	struct database_sql_inflight *f = &s->inflight;
	/* the tracestate bytes past its length are never read */
	__builtin_memset(f, 0, __builtin_offsetof(typeof(*f), head.sc.tracestate));
	f->error_word = error_word;
	if ((database_sql_capture_query || operation == DATABASE_SQL_COPY) && query && query_len > 0) {
		f->query = query;
		f->query_len = query_len;
	}
	struct database_sql_head *e = &f->head;
	e->operation = operation;
	e->batch_size = batch_size;
	if (pgx_conn) {
		e->client = DATABASE_SQL_CLIENT_PGX;
		e->connector.data = read_u64_at(pgx_conn, cfg->pgx_conn_config);
	} else if (db && cfg->db_connector != GOTEL_OFFSET_ABSENT) {
		bpf_probe_read_user(&e->connector, sizeof(e->connector), (const void *)(db + cfg->db_connector));
	}
	s->go_ctx = go_ctx;
	bpf_tail_call((void *)ctx, &database_sql_tails, DATABASE_SQL_TAIL_START);
	gotel_count_own(DATABASE_SQL_COUNTER_NO_START);
	return 0;
}

/* The start program, tail-called by every entry: the span's parent, its IDs and its header; then in flight. */
static __always_inline int on_start(const void *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&database_sql_scratch, &zero);
	if (!s)
		return 0;
	__u32 tgid = gotel_current_tgid();
	struct database_sql_inflight *f = &s->inflight;
	struct database_sql_head *e = &f->head;
	__u64 g = go_goroutine(ctx);
	gotel_fill_header(&e->hdr, gotel_event_type_id, g);
	struct gotel_span_context *parent = gotel_find_parent(tgid, s->go_ctx);
	if (parent)
		__builtin_memcpy(e->parent_span_id, parent->span_id, 8);
	gotel_start_span(&e->sc, parent);
	gotel_inflight_put(&database_sql_inflight, tgid, g, f);
	return 0;
}

GOTEL_UPROBE(database_sql_start, on_start)

static __always_inline struct database_sql_config *config(void)
{
	__u32 tgid = gotel_current_tgid();
	return bpf_map_lookup_elem(&database_sql_config, &tgid);
}

static __always_inline int on_query_dc(const void *ctx)
{
	struct database_sql_config *cfg = config();
	if (!cfg)
		return 0;
	return start(ctx, cfg, DATABASE_SQL_QUERY, 2, go_arg(ctx, 1), 0, go_arg(ctx, 3), go_arg(ctx, 8), go_arg(ctx, 9), 0);
}

static __always_inline int on_exec_dc(const void *ctx)
{
	struct database_sql_config *cfg = config();
	if (!cfg)
		return 0;
	return start(ctx, cfg, DATABASE_SQL_EXEC, 3, go_arg(ctx, 1), 0, go_arg(ctx, 3), go_arg(ctx, 6), go_arg(ctx, 7), 0);
}

static __always_inline int on_stmt(const void *ctx, __u32 operation, __u32 error_word)
{
	struct database_sql_config *cfg = config();
	if (!cfg)
		return 0;
	__u64 s = go_arg(ctx, 1);
	struct go_string q = {};
	if (s && cfg->stmt_query != GOTEL_OFFSET_ABSENT)
		bpf_probe_read_user(&q, sizeof(q), (const void *)(s + cfg->stmt_query));
	return start(ctx, cfg, operation, error_word, read_u64_at(s, cfg->stmt_db), 0, go_arg(ctx, 3), q.ptr, q.len, 0);
}

static __always_inline int on_stmt_query(const void *ctx)
{
	return on_stmt(ctx, DATABASE_SQL_QUERY, 2);
}

static __always_inline int on_stmt_exec(const void *ctx)
{
	return on_stmt(ctx, DATABASE_SQL_EXEC, 3);
}

static __always_inline int on_begin_dc(const void *ctx)
{
	struct database_sql_config *cfg = config();
	if (!cfg)
		return 0;
	return start(ctx, cfg, DATABASE_SQL_BEGIN, 2, go_arg(ctx, 1), 0, go_arg(ctx, 3), 0, 0, 0);
}

static __always_inline int on_tx_end(const void *ctx, __u32 operation)
{
	struct database_sql_config *cfg = config();
	if (!cfg)
		return 0;
	__u64 tx = go_arg(ctx, 1);
	__u32 done = 0;
	if (!tx || cfg->tx_done == GOTEL_OFFSET_ABSENT ||
	    bpf_probe_read_user(&done, sizeof(done), (const void *)(tx + cfg->tx_done)) || done)
		return 0;
	return start(ctx, cfg, operation, 1, read_u64_at(tx, cfg->tx_db), 0, read_u64_at(tx, cfg->tx_ctx + 8), 0, 0, 0);
}

static __always_inline int on_commit(const void *ctx)
{
	return on_tx_end(ctx, DATABASE_SQL_COMMIT);
}

static __always_inline int on_rollback(const void *ctx)
{
	return on_tx_end(ctx, DATABASE_SQL_ROLLBACK);
}

static __always_inline int on_pgx(const void *ctx, __u32 operation, __u32 error_word, __u64 query, __s64 query_len,
				  __u32 batch_size)
{
	struct database_sql_config *cfg = config();
	if (!cfg)
		return 0;
	/* called by pgx's database/sql driver inside database/sql's call: no span. A pgx span in flight is replaced
	 * (the entry again after morestack; a batch whose results were closed elsewhere or never) */
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	struct database_sql_inflight *inflight = bpf_map_lookup_elem(&database_sql_inflight, &key);
	if (inflight && inflight->head.client == DATABASE_SQL_CLIENT_STDLIB)
		return 0;
	return start(ctx, cfg, operation, error_word, 0, go_arg(ctx, 1), go_arg(ctx, 3), query, query_len, batch_size);
}

static __always_inline int on_pgx_query(const void *ctx)
{
	return on_pgx(ctx, DATABASE_SQL_QUERY, 3, go_arg(ctx, 4), go_arg(ctx, 5), 0);
}

static __always_inline int on_pgx_exec(const void *ctx)
{
	return on_pgx(ctx, DATABASE_SQL_EXEC, 3, go_arg(ctx, 4), go_arg(ctx, 5), 0);
}

/* pgx v4's Exec: its CommandTag is a []byte (3 words), so its error is words 4-5 */
static __always_inline int on_pgx4_exec(const void *ctx)
{
	return on_pgx(ctx, DATABASE_SQL_EXEC, 4, go_arg(ctx, 4), go_arg(ctx, 5), 0);
}

/* SendBatch(ctx, b *Batch) BatchResults: b = arg 4. The span lasts until the results are closed (see on_batch_close). */
static __always_inline int on_pgx_batch(const void *ctx)
{
	struct database_sql_config *cfg = config();
	if (!cfg)
		return 0;
	__u64 queued = read_u64_at(go_arg(ctx, 4), cfg->pgx_batch_queries == GOTEL_OFFSET_ABSENT ? GOTEL_OFFSET_ABSENT : cfg->pgx_batch_queries + 8);
	return on_pgx(ctx, DATABASE_SQL_BATCH, 1, 0, 0, queued > 0xffffffff ? 0xffffffff : queued);
}

/* CopyFrom's tableName is a pgx.Identifier ([]string: "schema", "table" or "table"): its last part names it */
static __always_inline int on_pgx_copy(const void *ctx)
{
	__u64 parts = go_arg(ctx, 4);
	__s64 n = go_arg(ctx, 5);
	struct go_string table = {};
	if (parts && n > 0 && n <= 8)
		bpf_probe_read_user(&table, sizeof(table), (const void *)(parts + (n - 1) * sizeof(table)));
	return on_pgx(ctx, DATABASE_SQL_COPY, 2, table.ptr, table.len, 0);
}

/* Ends the span in flight on this goroutine, if the API returning made it; a BATCH only where its results close. */
/* The goroutine's span of `client` in flight, if any (a batch's only at its results' Close, `batch_closed`). */
static __always_inline struct database_sql_inflight *inflight_of(struct gotel_ctx_key *key, __u32 client, __u32 batch_closed)
{
	struct database_sql_inflight *f = bpf_map_lookup_elem(&database_sql_inflight, key);
	if (!f || f->head.client != client || (f->head.operation == DATABASE_SQL_BATCH) != (batch_closed != 0))
		return 0;
	return f;
}

/* Ends the span f, with the call's error (err_tab 0: none). */
static __always_inline int end_span(struct gotel_ctx_key *key, struct database_sql_inflight *f, __u64 err_tab, __u64 err_data)
{
	if (!(f->head.sc.flags & GOTEL_FLAG_SAMPLED)) {
		gotel_count(GOTEL_COUNTER_UNSAMPLED);
		bpf_map_delete_elem(&database_sql_inflight, key);
		return 0;
	}
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&database_sql_scratch, &zero);
	if (!s) {
		bpf_map_delete_elem(&database_sql_inflight, key);
		return 0;
	}
	struct database_sql_event *e = &s->event;
	bpf_probe_read_kernel(e, DATABASE_SQL_HEAD_SIZE, &f->head);
	e->hdr.end_ns = bpf_ktime_get_ns();
	if (err_tab) {
		e->error_data = err_data;
		e->error_type = read_u64_at(err_tab, 8); /* itab._type */
		if (!e->error_type)
			e->error_type = 1;
	}
	/* the caller's statement string is still there: the caller has not resumed yet */
	e->query_full_len = f->query_len > 0 ? f->query_len : 0;
	e->query_len = f->query ? go_read_bytes(e->query, DATABASE_SQL_QUERY_MAX, f->query, f->query_len) : 0;
	__u64 n = e->query_len;
	if (n > DATABASE_SQL_QUERY_MAX)
		n = DATABASE_SQL_QUERY_MAX;
	barrier_var(n);
	gotel_emit(e, DATABASE_SQL_HEAD_SIZE + n);
	bpf_map_delete_elem(&database_sql_inflight, key);
	return 0;
}

/* Ends the goroutine's span of `client` at a RET, its error among the results (f->error_word); `succeeded`: at
 * a site on the success path (plan.ts), where the registers hold no results and the call returns no error. */
static __always_inline int finish(const void *ctx, __u32 client, __u32 batch_closed, __u32 succeeded)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	struct database_sql_inflight *f = inflight_of(&key, client, batch_closed);
	if (!f)
		return 0;
	/* load the five words first: a load per case becomes one load at a computed context offset, which the
	 * verifier refuses */
	__u64 w1 = go_arg(ctx, 1), w2 = go_arg(ctx, 2), w3 = go_arg(ctx, 3), w4 = go_arg(ctx, 4), w5 = go_arg(ctx, 5);
	barrier_var(w1);
	barrier_var(w2);
	barrier_var(w3);
	barrier_var(w4);
	barrier_var(w5);
	__u64 err_tab = succeeded ? 0 : f->error_word == 1 ? w1 : f->error_word == 2 ? w2 : f->error_word == 3 ? w3 : w4;
	__u64 err_data = f->error_word == 1 ? w2 : f->error_word == 2 ? w3 : f->error_word == 3 ? w4 : w5;
	return end_span(&key, f, err_tab, err_data);
}

GOTEL_UPROBE(database_sql_query_entry, on_query_dc)
GOTEL_UPROBE(database_sql_exec_entry, on_exec_dc)
GOTEL_UPROBE(database_sql_stmt_query_entry, on_stmt_query)
GOTEL_UPROBE(database_sql_stmt_exec_entry, on_stmt_exec)
GOTEL_UPROBE(database_sql_begin_entry, on_begin_dc)
GOTEL_UPROBE(database_sql_commit_entry, on_commit)
GOTEL_UPROBE(database_sql_rollback_entry, on_rollback)

static __always_inline int on_return(const void *ctx)
{
	return finish(ctx, DATABASE_SQL_CLIENT_STDLIB, 0, 0);
}

/* queryDC's calls of (*Rows).initContextClose: the query succeeded and queryDC returns its rows next */
static __always_inline int on_query_done(const void *ctx)
{
	return finish(ctx, DATABASE_SQL_CLIENT_STDLIB, 0, 1);
}

/* The entry of execDC's deferred `func() { release(err) }`, run on each of execDC's returns (and on a panic
 * through it): err, execDC's named result, through the pointer the closure captured (amd64: its context in DX). */
static __always_inline int on_exec_done(const void *ctx)
{
	struct gotel_ctx_key key = {.tgid = gotel_current_tgid(), .ctx = go_goroutine(ctx)};
	struct database_sql_inflight *f = inflight_of(&key, DATABASE_SQL_CLIENT_STDLIB, 0);
	struct database_sql_config *cfg = config();
	if (!f || f->head.operation != DATABASE_SQL_EXEC || !cfg || cfg->exec_err_capture == GOTEL_OFFSET_ABSENT)
		return 0;
	struct go_iface err = {};
	bpf_probe_read_user(&err, sizeof(err), (const void *)read_u64_at(go_closure_context(ctx), cfg->exec_err_capture));
	return end_span(&key, f, err.tab, err.data);
}

static __always_inline int on_pgx_return(const void *ctx)
{
	return finish(ctx, DATABASE_SQL_CLIENT_PGX, 0, 0);
}

/* a RET of the batch results' Close() error (error 1-2): the batch's statements have all run */
static __always_inline int on_batch_close(const void *ctx)
{
	return finish(ctx, DATABASE_SQL_CLIENT_PGX, 1, 0);
}

GOTEL_UPROBE(database_sql_return, on_return)
GOTEL_UPROBE(database_sql_query_done, on_query_done)
GOTEL_UPROBE(database_sql_exec_done, on_exec_done)
GOTEL_UPROBE(database_sql_pgx_query_entry, on_pgx_query)
GOTEL_UPROBE(database_sql_pgx_exec_entry, on_pgx_exec)
GOTEL_UPROBE(database_sql_pgx_copy_entry, on_pgx_copy)
GOTEL_UPROBE(database_sql_pgx4_exec_entry, on_pgx4_exec)
GOTEL_UPROBE(database_sql_pgx_batch_entry, on_pgx_batch)
GOTEL_UPROBE(database_sql_pgx_batch_close, on_batch_close)
GOTEL_UPROBE(database_sql_pgx_return, on_pgx_return)
