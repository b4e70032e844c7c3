/**
 * database/sql client spans (database_sql.bpf.c beside it): one CLIENT span per statement run through database/sql
 * (DB, Conn, Tx and Stmt; queries and execs) and per transaction BEGIN / COMMIT / ROLLBACK, the child of the
 * span of the context the call was given. This file: what the probe needs from a binary, and how an event
 * becomes a span under the semantic conventions for database client spans.
 */
import { SpanKind, SpanStatusCode, type Attributes } from "@opentelemetry/api";
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldNeed, TableLookup } from "../../offsets/resolver.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { ERROR_CODE_FIELDS } from "./errors.ts";
import { driversIn, type DataSource } from "./source.ts";
import { fieldNeeds, offsetsOrigin, planProbe, spanEnds, type ProbePlan, type ProbeSpec } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import { recordContext, utf8, type SpanEventContext } from "../../probes/span-event.ts";
import { parseStatementCached } from "./statement.ts";

export const SCOPE = "go.opentelemetry.io/auto/database/sql";
/** spans of pgx's own API, named as upstream names the scopes of third-party instrumentations */
export const PGX_SCOPE = "go.opentelemetry.io/auto/github.com/jackc/pgx/v5";

/** Statement text sent by the kernel, bytes (DATABASE_SQL_QUERY_MAX in the C). Longer ones are cut at a character. */
export const QUERY_MAX = 4096;

/** C config field -> the Go struct field it holds the offset of (read in the kernel) */
export const FIELDS = {
  stmt_query: "database/sql.Stmt.query",
  stmt_db: "database/sql.Stmt.db",
  tx_ctx: "database/sql.Tx.ctx",
  tx_db: "database/sql.Tx.db",
  tx_done: "database/sql.Tx.done",
  db_connector: "database/sql.DB.connector",
} as const;

const PGX5 = "github.com/jackc/pgx/v5";
const PGX4 = "github.com/jackc/pgx/v4";
/** pgx v4's pgconn is a module of its own */
const PGCONN4 = "github.com/jackc/pgconn";

/** pgx's own API, read in the kernel: the Conn's config */
export const PGX_FIELDS = {
  pgx_conn_config: "github.com/jackc/pgx/v5.Conn.config",
  pgx_batch_queries: "github.com/jackc/pgx/v5.Batch.QueuedQueries",
} as const;

/** pgx's own API: where a Conn's config keeps what it talks to, read in user space once per config */
export const PGX_SOURCE_FIELDS = {
  pgx_connconfig_config: "github.com/jackc/pgx/v5.ConnConfig.Config",
  pgconn_config_host: "github.com/jackc/pgx/v5/pgconn.Config.Host",
  pgconn_config_port: "github.com/jackc/pgx/v5/pgconn.Config.Port",
  pgconn_config_database: "github.com/jackc/pgx/v5/pgconn.Config.Database",
} as const;

/**
 * pgx v4's fields (its own API: the same functions, the same shapes), each standing in for its v5 counterpart
 * when the binary has v4 (withPgx4Offsets): in the kernel's config, the source and the error code readers.
 */
export const PGX4_FIELDS = {
  pgx4_conn_config: "github.com/jackc/pgx/v4.Conn.config",
  pgx4_batch_items: "github.com/jackc/pgx/v4.Batch.items",
  pgx4_connconfig_config: "github.com/jackc/pgx/v4.ConnConfig.Config",
  pgconn4_config_host: "github.com/jackc/pgconn.Config.Host",
  pgconn4_config_port: "github.com/jackc/pgconn.Config.Port",
  pgconn4_config_database: "github.com/jackc/pgconn.Config.Database",
  pgconn4_error_code: "github.com/jackc/pgconn.PgError.Code",
} as const;
const PGX4_MODULES: Record<keyof typeof PGX4_FIELDS, string> = {
  pgx4_conn_config: PGX4, pgx4_batch_items: PGX4, pgx4_connconfig_config: PGX4,
  pgconn4_config_host: PGCONN4, pgconn4_config_port: PGCONN4, pgconn4_config_database: PGCONN4, pgconn4_error_code: PGCONN4,
};
const PGX4_STANDS_FOR: Record<keyof typeof PGX4_FIELDS, string> = {
  pgx4_conn_config: "pgx_conn_config", pgx4_batch_items: "pgx_batch_queries", pgx4_connconfig_config: "pgx_connconfig_config",
  pgconn4_config_host: "pgconn_config_host", pgconn4_config_port: "pgconn_config_port",
  pgconn4_config_database: "pgconn_config_database", pgconn4_error_code: "pgx5_error_code",
};

/** A plan's offsets with pgx v4's in place of v5's where the binary has no v5 (a binary rarely has both). */
export function withPgx4Offsets(offsets: Record<string, number | undefined>): Record<string, number | undefined> {
  const out = { ...offsets };
  for (const [v4, v5] of Object.entries(PGX4_STANDS_FOR)) {
    out[v5] ??= out[v4];
    delete out[v4];
  }
  return out;
}

/** read in user space, from the target's memory, once per DB connector (src/probes/database-sql-source.ts) */
export const SOURCE_FIELDS = {
  dsn_connector_dsn: "database/sql.dsnConnector.dsn",
  dsn_connector_driver: "database/sql.dsnConnector.driver",
} as const;

/**
 * Drivers' own connectors that keep the data source name: from the binary's DWARF, else the offsets table (pgx
 * v5's and v4's releases).
 */
export const DRIVER_FIELDS = {
  pgx5_connector_name: "github.com/jackc/pgx/v5/stdlib.driverConnector.name",
  pgx4_connector_name: "github.com/jackc/pgx/v4/stdlib.driverConnector.name",
} as const;
export const DRIVER_MODULES: Record<keyof typeof DRIVER_FIELDS, string> = {
  pgx5_connector_name: "github.com/jackc/pgx/v5",
  pgx4_connector_name: "github.com/jackc/pgx/v4",
};

const MYSQL = "github.com/go-sql-driver/mysql";
/**
 * go-sql-driver/mysql's connector (v1.5.0 on; v1.4 is opened through database/sql's dsnConnector) keeps the
 * parsed DSN: connector.cfg (*Config) and its Net, Addr and DBName. From DWARF, else the offsets table.
 */
export const MYSQL_SOURCE_FIELDS = {
  mysql_connector_cfg: `${MYSQL}.connector.cfg`,
  mysql_config_net: `${MYSQL}.Config.Net`,
  mysql_config_addr: `${MYSQL}.Config.Addr`,
  mysql_config_dbname: `${MYSQL}.Config.DBName`,
} as const;

/** read in user space: every key that is not a member of the kernel's config */
export const USER_SPACE_KEYS: ReadonlySet<string> = new Set([
  ...Object.keys(SOURCE_FIELDS), ...Object.keys(PGX_SOURCE_FIELDS), ...Object.keys(DRIVER_FIELDS), ...Object.keys(MYSQL_SOURCE_FIELDS),
  ...Object.keys(ERROR_CODE_FIELDS),
]);

/**
 * Every field is optional: without the user-space ones a span has no driver, no server and no status code;
 * the kernel's belong to types the linker keeps only when the program uses them (a program on pgx's own API
 * has no database/sql.Stmt, one that never begins a transaction may have no database/sql.Tx).
 */
const OPTIONAL: ReadonlySet<string> = new Set([...Object.keys(FIELDS), ...Object.keys(PGX_FIELDS), ...Object.keys(PGX4_FIELDS), ...USER_SPACE_KEYS]);

export const QUERY_DC = "database/sql.(*DB).queryDC";

/** program -> the function whose entry it probes; every one of them also gets RETURN_PROGRAM at its returns */
export const ENTRY_PROGRAMS = {
  database_sql_query_entry: QUERY_DC,
  database_sql_exec_entry: "database/sql.(*DB).execDC",
  database_sql_stmt_query_entry: "database/sql.(*Stmt).QueryContext",
  database_sql_stmt_exec_entry: "database/sql.(*Stmt).ExecContext",
  database_sql_begin_entry: "database/sql.(*DB).beginDC",
  database_sql_commit_entry: "database/sql.(*Tx).Commit",
  // Tx.Rollback is inlined into its callers; its body is not
  database_sql_rollback_entry: "database/sql.(*Tx).rollback",
} as const;
export const RETURN_PROGRAM = "database_sql_return";
/**
 * queryDC's success paths end with a call of (*Rows).initContextClose and return the rows: the span ends at
 * those CALLs (emulated), and only the error paths' RETs are probed. Go 1.19-1.27 have this shape; the other
 * functions end at their RETs (single-stepped on amd64).
 */
export const QUERY_DONE_PROGRAM = "database_sql_query_done";
const QUERY_DONE = { kind: "success-call", callee: "database/sql.(*Rows).initContextClose" } as const;
const EXEC_DC = "database/sql.(*DB).execDC";
/**
 * execDC begins with `defer func() { release(err) }()`: the deferred closure is entered on every return (and on
 * a panic through execDC), with execDC's named result err behind a pointer in its context. The span ends at the
 * closure's entry (emulated) and execDC's RETs get no probe; the pointer's place in the context is read from the
 * closure's own code (findCapturedArgument). Go 1.19-1.27 on amd64; elsewhere, or where the code differs, the RETs.
 */
export const EXEC_DONE_PROGRAM = "database_sql_exec_done";
const EXEC_DEFERRED = `${EXEC_DC}.func1`;

/**
 * Where a function's spans end: program -> sites, how (for readiness) where it is not simply every RET, and the
 * config execDC's end reads.
 */
function spanEndsOf(exe: GoExecutable, fn: string, returns: number[], returnProgram: string): { programs: Record<string, number[]>; how?: string; execCapture?: number } {
  if (fn === QUERY_DC) {
    const e = spanEnds(exe, fn, QUERY_DONE, returns, QUERY_DONE_PROGRAM, returnProgram);
    return { programs: e.programs, how: `queryDC ends ${e.how}` };
  }
  if (fn !== EXEC_DC) return { programs: { [returnProgram]: returns } };
  const e = execEnd(exe);
  if ("site" in e) return { programs: { [EXEC_DONE_PROGRAM]: [e.site] }, how: "execDC ends at the entry of its deferred closure (emulated)", execCapture: e.capture };
  return { programs: { [returnProgram]: returns }, how: `execDC ends at its RETs (${exe.arch === "amd64" ? `single-stepped: ${e.missing}` : "simulated"})` };
}

/** Where execDC's spans end: its deferred closure's entry and where it keeps &err, or why not. */
function execEnd(exe: GoExecutable): { site: number; capture: number } | { missing: string } {
  const capture = exe.capturedArgument(EXEC_DEFERRED);
  const entry = exe.entrySite(EXEC_DEFERRED);
  if (!capture || !entry) return { missing: `${EXEC_DEFERRED} is not in the binary` };
  if ("missing" in capture) return capture;
  return entry.emulated ? { site: entry.offset, capture: capture.offset } : { missing: `${EXEC_DEFERRED}'s entry is single-stepped` };
}

export const PGX_QUERY = "github.com/jackc/pgx/v5.(*Conn).Query";
const PGX4_QUERY = "github.com/jackc/pgx/v4.(*Conn).Query";
/**
 * pgx's own API, v5 and v4: [program, the function whose entry it probes]; PGX_RETURN_PROGRAM at their returns.
 * v4's Exec returns its CommandTag as a []byte (three words, v5's is a string): its error comes a word later.
 */
export const PGX_ENTRY_PROGRAMS: readonly (readonly [string, string])[] = [
  ["database_sql_pgx_query_entry", PGX_QUERY],
  ["database_sql_pgx_exec_entry", "github.com/jackc/pgx/v5.(*Conn).Exec"],
  ["database_sql_pgx_copy_entry", "github.com/jackc/pgx/v5.(*Conn).CopyFrom"],
  ["database_sql_pgx_query_entry", PGX4_QUERY],
  ["database_sql_pgx4_exec_entry", "github.com/jackc/pgx/v4.(*Conn).Exec"],
  ["database_sql_pgx_copy_entry", "github.com/jackc/pgx/v4.(*Conn).CopyFrom"],
];
/** SendBatch: entry only; its span ends at PGX_BATCH_CLOSE_PROGRAM, at the RETs of its results' Close */
export const PGX_BATCH_PROGRAM = "database_sql_pgx_batch_entry";
export const PGX_BATCH_CLOSE_PROGRAM = "database_sql_pgx_batch_close";
const PGX_SEND_BATCH = ["github.com/jackc/pgx/v5.(*Conn).SendBatch", "github.com/jackc/pgx/v4.(*Conn).SendBatch"];
const PGX_BATCH_CLOSE = [
  "github.com/jackc/pgx/v5.(*batchResults).Close", "github.com/jackc/pgx/v5.(*pipelineBatchResults).Close",
  "github.com/jackc/pgx/v4.(*batchResults).Close",
];
export const PGX_RETURN_PROGRAM = "database_sql_pgx_return";

export interface DatabasePlan {
  plan: ProbePlan;
  /** program -> file offsets of its probe sites */
  programs: Record<string, number[]>;
  /** the functions the linker kept (an application that never uses Stmt has no Stmt.QueryContext) */
  functions: string[];
  /** the pgx whose own API the binary has (v5 if both): its spans' scope */
  pgxModule: string;
  /** where the functions that do not simply end at their RETs end, for readiness */
  ends: string[];
}

const SPEC: ProbeSpec = {
  function: QUERY_DC,
  absent: "it uses neither database/sql nor pgx",
  fields: {
    ...FIELDS, ...PGX_FIELDS, ...PGX4_FIELDS, ...SOURCE_FIELDS, ...PGX_SOURCE_FIELDS, ...DRIVER_FIELDS, ...MYSQL_SOURCE_FIELDS,
    ...Object.fromEntries(Object.entries(ERROR_CODE_FIELDS).map(([k, f]) => [k, f.field])),
  },
  optional: OPTIONAL,
  modules: {
    ...DRIVER_MODULES, ...PGX4_MODULES, ...Object.fromEntries([...Object.keys(PGX_FIELDS), ...Object.keys(PGX_SOURCE_FIELDS)].map((k) => [k, PGX5])),
    ...Object.fromEntries(Object.keys(MYSQL_SOURCE_FIELDS).map((k) => [k, MYSQL])),
    ...Object.fromEntries(Object.entries(ERROR_CODE_FIELDS).map(([k, f]) => [k, f.module])),
  },
};

/** What the probe reads (in the kernel and in user space), for the offsets resolver and the table's generator. */
export const NEEDS: readonly FieldNeed[] = fieldNeeds(SPEC);

/** The binary uses database/sql or pgx at all (whether the object is worth loading). */
export const present = (exe: GoExecutable): boolean => [QUERY_DC, PGX_QUERY, PGX4_QUERY].some((f) => exe.functions().get(f) !== undefined);

export function plan(exe: GoExecutable, table: TableLookup = bundledTable): DatabasePlan | { skipped: string; absent?: true } {
  // a program on pgx's own API (pgxpool) may not have database/sql at all
  const main = exe.functions().get(QUERY_DC) ? QUERY_DC : [PGX_QUERY, PGX4_QUERY].find((f) => exe.functions().get(f)) ?? QUERY_DC;
  const r = planProbe(exe, { ...SPEC, function: main }, table);
  if ("skipped" in r) return r;
  const programs: Record<string, number[]> = {};
  const functions: string[] = [];
  const ends: string[] = [];
  let execCapture: number | undefined;
  const add = (entries: readonly (readonly [string, string])[], returnProgram: string): void => {
    for (const [program, fn] of entries) {
      const sites = exe.probeSites(fn);
      if (!sites) continue;
      functions.push(fn);
      (programs[program] ??= []).push(sites.entry.offset);
      const end = spanEndsOf(exe, fn, sites.returns, returnProgram);
      if (end.how) ends.push(end.how);
      execCapture ??= end.execCapture;
      for (const [p, offsets] of Object.entries(end.programs)) (programs[p] ??= []).push(...offsets);
    }
  };
  add(Object.entries(ENTRY_PROGRAMS), RETURN_PROGRAM);
  add(PGX_ENTRY_PROGRAMS, PGX_RETURN_PROGRAM);
  const sends = PGX_SEND_BATCH.filter((fn) => exe.functions().get(fn));
  const closes = PGX_BATCH_CLOSE.flatMap((fn) => exe.probeSites(fn)?.returns ?? []);
  if (sends.length && closes.length) {
    programs[PGX_BATCH_PROGRAM] = sends.flatMap((fn) => exe.entrySite(fn)?.offset ?? []);
    programs[PGX_BATCH_CLOSE_PROGRAM] = closes;
    functions.push(...sends);
  }
  return {
    plan: { ...r.plan, offsets: { ...withPgx4Offsets(r.plan.offsets), exec_err_capture: execCapture } }, programs, functions,
    pgxModule: exe.functions().get(PGX_QUERY) ? PGX5 : PGX4, ends,
  };
}

export function readiness(exe: GoExecutable): Readiness {
  const r = plan(exe);
  if ("skipped" in r) return { status: "skipped", reason: r.skipped };
  const short = r.functions.map((f) => f.replace("database/sql.", "").replace(`${PGX5}.`, "pgx.").replace(`${PGX4}.`, "pgx/v4."));
  const drivers = driversIn(exe.buildInfo.deps.map((d) => d.path));
  return {
    status: "ready",
    reason: `${short.join(", ")}: entry and ${[RETURN_PROGRAM, PGX_RETURN_PROGRAM, PGX_BATCH_CLOSE_PROGRAM].reduce((n, p) => n + (r.programs[p]?.length ?? 0), 0)} return sites ` +
      `(${exe.arch === "amd64" ? "single-stepped" : "simulated"})${r.ends.map((e) => `; ${e}`).join("")}; ` +
      (drivers.length ? `drivers ${drivers.join(", ")}` : "no SQL driver gotel knows (spans say other_sql)"),
    ...offsetsOrigin(r.plan),
  };
}

export type Operation = "QUERY" | "EXEC" | "BEGIN" | "COMMIT" | "ROLLBACK" | "COPY" | "BATCH";

/** The API a span's call went through */
export type Client = "database/sql" | "pgx";

/** The event as the kernel sent it, its statement decoded. */
export interface DatabaseEvent extends SpanEventContext {
  operation: Operation;
  client: Client;
  /** the statement when it was captured, cut to QUERY_MAX bytes at a character boundary; COPY: the table */
  query?: string;
  truncated: boolean;
  errorType?: string;
  /** the database's code in the error (SQLSTATE, MySQL error number, SQLite result code) */
  responseStatusCode?: string;
  /** pgx's spans: the pgx module (v5 or v4), which names their scope */
  pgxModule?: string;
  /** a BATCH: the statements it sent (0: unknown) */
  batchSize?: number;
}

export interface StatementOptions {
  /** OTEL_GO_AUTO_INCLUDE_DB_STATEMENT */
  includeText: boolean;
  /** OTEL_GO_AUTO_PARSE_DB_STATEMENT */
  parse: boolean;
}

/**
 * The statement bytes as a string: a cut statement loses its last, incomplete UTF-8 character (never half of
 * one); bytes that are not UTF-8 at all (binary data in a statement) become U+FFFD.
 */
export function decodeStatement(bytes: Uint8Array, truncated: boolean): string {
  let end = bytes.length;
  if (truncated && end > 0) {
    // back up over continuation bytes to the last lead byte; drop that character if it is incomplete
    let lead = end - 1;
    while (lead > 0 && lead > end - 4 && (bytes[lead]! & 0xc0) === 0x80) lead--;
    const b = bytes[lead]!;
    const need = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    if (end - lead < need) end = lead;
  }
  return utf8.decode(bytes.subarray(0, end));
}

/** Semantic conventions for a database client span. */
export function toSpanRecord(e: DatabaseEvent, source: DataSource, opts: StatementOptions): SpanRecord {
  const attributes: Attributes = { "db.system.name": source.system };
  if (source.namespace) attributes["db.namespace"] = source.namespace;
  if (source.serverAddress) attributes["server.address"] = source.serverAddress;
  if (source.serverPort !== undefined) attributes["server.port"] = source.serverPort;
  let name = "DB";
  if (e.operation === "BEGIN" || e.operation === "COMMIT" || e.operation === "ROLLBACK") {
    attributes["db.operation.name"] = e.operation;
    name = e.operation;
  } else if (e.operation === "BATCH") {
    // semantic conventions: a batch has two or more operations; its statements are not read
    attributes["db.operation.name"] = "BATCH";
    name = "BATCH";
    if (e.batchSize !== undefined && e.batchSize >= 2) attributes["db.operation.batch.size"] = e.batchSize;
  } else if (e.operation === "COPY") {
    // pgx's CopyFrom: no statement, the table it copies into (not parsed, so always known)
    attributes["db.operation.name"] = "COPY";
    name = "COPY";
    if (e.query) {
      attributes["db.collection.name"] = e.query;
      name = `COPY ${e.query}`;
    }
  } else if (e.query !== undefined) {
    if (opts.includeText) attributes["db.query.text"] = e.query;
    const parsed = opts.parse ? parseStatementCached(e.query) : undefined;
    if (parsed) {
      attributes["db.operation.name"] = parsed.operation;
      name = parsed.operation;
      // a cut statement may have lost its table; the operation is the first word and is safe
      if (parsed.collection !== undefined) {
        attributes["db.collection.name"] = parsed.collection;
        name = `${parsed.operation} ${parsed.collection}`;
      }
    }
  }
  let status: SpanRecord["status"] = { code: SpanStatusCode.UNSET };
  if (e.errorType !== undefined) {
    attributes["error.type"] = e.errorType;
    if (e.responseStatusCode !== undefined) attributes["db.response.status_code"] = e.responseStatusCode;
    status = { code: SpanStatusCode.ERROR };
  }
  return {
    ...recordContext(e),
    name,
    kind: SpanKind.CLIENT,
    attributes,
    status,
    scope: e.client === "pgx" ? (e.pgxModule ? `go.opentelemetry.io/auto/${e.pgxModule}` : PGX_SCOPE) : SCOPE,
  };
}
