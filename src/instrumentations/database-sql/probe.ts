/** The loaded database/sql object (database_sql.bpf.c beside it) as a SpanProbe. */
import { StructView } from "../../ebpf/struct-view.ts";
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { decodeStatement, plan, toSpanRecord, USER_SPACE_KEYS, type Client, type DatabaseEvent, type Operation, type StatementOptions } from "./plan.ts";
import { responseStatusCode, type ErrorCodeOffsets } from "./errors.ts";
import { readDataSource, readPgxSource, type DataSource, type GoIface, type SourceOffsets } from "./source.ts";
import { offsetsOrigin } from "../../probes/plan.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { errorTypeName, spanContextDecoder } from "../../probes/span-event.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { Losses } from "../../probes/instrumentation.ts";

export interface DatabaseLoadOptions extends LoadOptions, StatementOptions {
  /** a live target's memory, to name error types and read the DB's driver and data source */
  memory?: (tgid: number) => TargetMemory | undefined;
}

/** the event as decoded; `record` completes it in place (no copies: this runs for every span) */
type RawEvent = DatabaseEvent & { errorTypeAddress: bigint; errorData: bigint; connector: GoIface };

const MAX_SOURCES = 1024;

/** database_sql.bpf.c's own reasons for losing spans */
export const DATABASE_SQL_LOSSES = {
  enum: "database_sql_counter",
  reasons: { DATABASE_SQL_COUNTER_NO_START: "statement span not started (its start program was not in place)" },
} as const satisfies Losses;

interface ProcessState {
  /** user-space fields: the DB's data source, drivers' error codes */
  offsets: SourceOffsets & ErrorCodeOffsets;
  modules: string[];
  /** the pgx module whose own API the binary has: its spans' scope */
  pgxModule: string;
  /** a DB's connector: its data word -> its itab and what the DB talks to */
  sources: Map<bigint, { tab: bigint; source: DataSource }>;
}

export class DatabaseSqlProbe extends ObjectSpanProbe {
  readonly name = "database/sql";
  private readonly decode: (v: DataView) => RawEvent;
  private readonly processes = new Map<number, ProcessState>();

  private constructor(object: ProbeObject, private readonly opts: DatabaseLoadOptions) {
    // the in-flight head is the event up to its statement, whose text is gone with the process
    super(object, "head");
    const btf = object.obj.btf();
    const ops = btf.enumValues("database_sql_operation");
    const names = new Map<number, Operation>([...ops].map(([k, v]) => [Number(v), k.replace("DATABASE_SQL_", "") as Operation]));
    const pgx = Number(btf.enumValues("database_sql_client").get("DATABASE_SQL_CLIENT_PGX"));
    this.decode = eventDecoder(new StructView(btf.structLayout("database_sql_event")), names, pgx);
  }

  static load(opts: DatabaseLoadOptions): DatabaseSqlProbe {
    const capture = opts.includeText || opts.parse ? 1 : 0;
    const constants = { ...opts.constants, database_sql_capture_query: capture };
    return new DatabaseSqlProbe(ProbeObject.load("database_sql", { ...opts, constants }), opts);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const r = plan(exe);
    if ("skipped" in r) return r;
    const entries = Object.entries(r.plan.offsets);
    const kernel = Object.fromEntries(entries.filter(([k]) => !USER_SPACE_KEYS.has(k)));
    const user = Object.fromEntries(entries.filter(([k, o]) => USER_SPACE_KEYS.has(k) && o !== undefined)) as Record<string, number>;
    const modules = exe.buildInfo.deps.map((d) => d.path);
    const state = (): ProcessState => ({ offsets: user, modules, pgxModule: r.pgxModule, sources: new Map() });
    return {
      ...offsetsOrigin(r.plan),
      sites: siteCount(r.programs),
      attach: (tgid, path) => {
        this.processes.set(tgid, state());
        return this.object.attach(tgid, path, kernel, r.programs);
      },
    };
  }

  override forget(tgid: number): void {
    this.processes.delete(tgid);
    super.forget(tgid);
  }

  record(v: DataView, tgid: number, toUnixNs: (ns: bigint) => bigint): SpanRecord {
    const e = this.decode(v);
    const memory = this.opts.memory?.(tgid);
    e.errorType = errorTypeName(memory, e.errorTypeAddress);
    if (e.errorType !== undefined) e.responseStatusCode = responseStatusCode(memory, this.processes.get(tgid)?.offsets ?? {}, e.errorType, Number(e.errorData)) || undefined;
    if (e.client === "pgx") e.pgxModule = this.processes.get(tgid)?.pgxModule;
    e.startNs = toUnixNs(e.startNs);
    e.endNs = toUnixNs(e.endNs);
    return toSpanRecord(e, this.source(tgid, e.client, e.connector, memory), this.opts);
  }

  /** connector: a DB's connector, or for pgx (tab 0) its Conn's *ConnConfig */
  private source(tgid: number, client: Client, connector: GoIface, memory: TargetMemory | undefined): DataSource {
    const p = this.processes.get(tgid);
    if (!p) return readDataSource(undefined, {}, connector, []);
    const known = p.sources.get(connector.data);
    if (known?.tab === connector.tab) return known.source;
    // a program that opens a DB per request must not grow this without end
    if (p.sources.size >= MAX_SOURCES) p.sources.clear();
    const source = client === "pgx"
      ? readPgxSource(memory, p.offsets, connector.data <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(connector.data) : 0)
      : readDataSource(memory, p.offsets, connector, p.modules);
    p.sources.set(connector.data, { tab: connector.tab, source });
    return source;
  }
}

function eventDecoder(s: StructView, operations: ReadonlyMap<number, Operation>, pgx: number): (v: DataView) => RawEvent {
  const context = spanContextDecoder(s);
  const [connectorTab, connectorData] = [s.u64("connector.tab"), s.u64("connector.data")];
  const [errorType, errorData, fullLen] = [s.u64("error_type"), s.u64("error_data"), s.u64("query_full_len")];
  const [operation, queryLen, client, batchSize] = [s.u32("operation"), s.u32("query_len"), s.u32("client"), s.u32("batch_size")];
  const queryAt = s.offset("query");
  return (v) => {
    const n = Math.max(0, Math.min(queryLen(v), v.byteLength - queryAt));
    const full = fullLen(v);
    const bytes = new Uint8Array(v.buffer, v.byteOffset + queryAt, n);
    return {
      ...context(v),
      operation: operations.get(operation(v)) ?? "QUERY",
      batchSize: batchSize(v),
      client: client(v) === pgx ? "pgx" : "database/sql",
      ...(full > 0n ? { query: decodeStatement(bytes, BigInt(n) < full) } : {}),
      truncated: BigInt(n) < full,
      connector: { tab: connectorTab(v), data: connectorData(v) },
      errorTypeAddress: errorType(v),
      errorData: errorData(v),
    };
  }
}
