/**
 * pgx's own API end to end: an HTTP service querying a real PostgreSQL through a pgxpool.Pool, no database/sql
 * (test/fixtures/pgx-native), traced by the compiled gotel, and what a real OpenTelemetry Collector received.
 * pgx's database/sql driver goes through the same pgx functions: that it still gives one span per statement is
 * checked by test/e2e/database-sql.test.ts (exact span counts for the pgx driver).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { pidOf } from "../support/chain.ts";
import { SPAN_KIND, STATUS_CODE, describeSpans, useCollector, type Collector, type ReceivedSpan } from "../support/collector.ts";
import { startPostgres, type Postgres } from "../support/databases.ts";
import { buildGoFixture } from "../support/go.ts";
import { Proc, runGotel, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
let postgres: Postgres;
beforeAll(() => {
  collector = sharedCollector();
  postgres = startPostgres();
}, 120_000);
afterAll(() => postgres?.stop());

// pgx v5, and v4 (the same service built with -tags=pgx4); stripped: offsets from gotel's table
describe.each([
  ["v5", false], ["v5", true], ["v4", false], ["v4", true],
] as const)("pgxpool service, pgx %s (stripped: %p)", (pgx, stripped) => {
  const SCOPE = `go.opentelemetry.io/auto/github.com/jackc/pgx/${pgx}`;
  let target: Awaited<ReturnType<typeof startServer>>;
  let gotel: Proc;
  beforeAll(async () => {
    const exe = buildGoFixture("pgx-native", { goVersion: "1.27.4", stripped, ...(pgx === "v4" ? { tags: ["pgx4"] } : {}) });
    target = await startServer(exe, ["127.0.0.1:0", postgres.url]);
    gotel = await runGotel(["--pid", String(target.proc.pid)], {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true", OTEL_GO_AUTO_PARSE_DB_STATEMENT: "true",
    }, target.proc.pid);
  }, 300_000);
  afterAll(async () => {
    await gotel?.stop();
    await target?.proc.stop();
  });

  /** one request: its server span and its DB spans (children of it, inside it, nothing else in the trace) */
  async function request(method: string, path: string, children: number): Promise<{ status: number; db: ReceivedSpan[] }> {
    collector.clear();
    const r = await fetch(`${target.base}${path}`, { method });
    await r.text();
    let server: ReceivedSpan | undefined;
    const all = await collector.waitFor((spans) => {
      server = spans.find((x) => pidOf(x) === target.proc.pid && x.kind === SPAN_KIND.SERVER && x.attributes["url.path"] === path.split("?")[0]);
      return server !== undefined && spans.filter((x) => x.traceId === server!.traceId).length >= 1 + children;
    }, `${method} ${path} and its ${children} DB spans`);
    await Bun.sleep(300);
    const trace = collector.spans().filter((x) => x.traceId === server!.traceId);
    expect(trace, describeSpans(all)).toHaveLength(1 + children);
    const db = trace.filter((x) => x.spanId !== server!.spanId).sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
    for (const x of db) {
      expect(x).toMatchObject({ kind: SPAN_KIND.CLIENT, parentSpanId: server!.spanId, scope: { name: SCOPE } });
      expect(x.startTimeUnixNano >= server!.startTimeUnixNano && x.endTimeUnixNano <= server!.endTimeUnixNano).toBe(true);
    }
    return { status: r.status, db };
  }

  const source = () => ({ "db.system.name": "postgresql", "server.address": "127.0.0.1", "server.port": BigInt(postgres.port), "db.namespace": "postgres" });

  test("a query (QueryRow): SELECT users, with the pool's server and database", async () => {
    const { status, db } = await request("GET", "/users/1", 1);
    expect(status).toBe(200);
    expect(db[0]!.name).toBe("SELECT users");
    expect(db[0]!.attributes).toEqual({
      ...source(), "db.operation.name": "SELECT", "db.collection.name": "users", "db.query.text": "SELECT name FROM users WHERE id = $1",
    });
    expect(db[0]!.status.code).toBe(STATUS_CODE.UNSET);
  }, 30_000);

  test("an exec: INSERT users", async () => {
    const { status, db } = await request("POST", "/users?name=lin", 1);
    expect(status).toBe(201);
    expect(db[0]!.name).toBe("INSERT users");
    expect(db[0]!.attributes["db.query.text"]).toBe("INSERT INTO users (name) VALUES ($1)");
    expect(db[0]!.attributes).not.toHaveProperty("error.type");
    expect(db[0]!.status.code).toBe(STATUS_CODE.UNSET);
  }, 30_000);

  test("a transaction: pgx's own begin and commit statements, no span for the deferred Rollback", async () => {
    const { status, db } = await request("POST", "/transfer", 4);
    expect(status).toBe(200);
    expect(db.map((x) => x.name)).toEqual(["BEGIN", "UPDATE accounts", "SELECT accounts", "COMMIT"]);
    expect(db[0]!.attributes).toEqual({ ...source(), "db.operation.name": "BEGIN", "db.query.text": "begin" });
    expect(db[3]!.attributes).toEqual({ ...source(), "db.operation.name": "COMMIT", "db.query.text": "commit" });
  }, 30_000);

  test("a failing query: ERROR, *pgconn.PgError and its SQLSTATE", async () => {
    const { status, db } = await request("GET", "/missing", 1);
    expect(status).toBe(404);
    expect(db[0]!.status.code).toBe(STATUS_CODE.ERROR);
    expect(db[0]!.attributes).toEqual({
      ...source(), "db.operation.name": "SELECT", "db.collection.name": "missing_table", "db.query.text": "SELECT id FROM missing_table",
      "error.type": "*pgconn.PgError", "db.response.status_code": "42P01",
    });
  }, 30_000);

  test("a bulk copy (CopyFrom): COPY users, named by the table however it is qualified; into a missing table, ERROR", async () => {
    const ok = await request("POST", "/copy", 1);
    expect(ok.status).toBe(200);
    expect(ok.db[0]!.name).toBe("COPY users");
    expect(ok.db[0]!.attributes).toEqual({ ...source(), "db.operation.name": "COPY", "db.collection.name": "users" });
    expect(ok.db[0]!.status.code).toBe(STATUS_CODE.UNSET);
    const failed = await request("POST", "/copy?missing=1", 1);
    expect(failed.status).toBe(404);
    expect(failed.db[0]!.name).toBe("COPY missing_table");
    expect(failed.db[0]!.status.code).toBe(STATUS_CODE.ERROR);
    expect(failed.db[0]!.attributes).toEqual({
      ...source(), "db.operation.name": "COPY", "db.collection.name": "missing_table",
      // v5's CopyFrom wraps the server's error with fmt.Errorf's %w: its type is the wrapper, its code the server's
      "error.type": pgx === "v5" ? "*fmt.wrapError" : "*pgconn.PgError", "db.response.status_code": "42P01",
    });
  }, 30_000);

  test("a batch (SendBatch): one BATCH span from the send until its results are closed, with its size", async () => {
    const { status, db } = await request("POST", "/batch", 1);
    expect(status).toBe(200);
    expect(db[0]!.name).toBe("BATCH");
    // the service sleeps 30 ms between SendBatch and reading its results: the span covers both
    expect(db[0]!.endTimeUnixNano - db[0]!.startTimeUnixNano).toBeGreaterThanOrEqual(30_000_000n);
    expect(db[0]!.attributes).toEqual({ ...source(), "db.operation.name": "BATCH", "db.operation.batch.size": 2n });
    expect(db[0]!.status.code).toBe(STATUS_CODE.UNSET);
  }, 30_000);

  test("a query made with context.Background() is a root span of its own trace", async () => {
    await request("GET", "/background", 0);
    await collector.waitFor((spans) => spans.some((x) => x.attributes["db.query.text"] === "SELECT 1"), "the background query");
    const q = collector.spans().filter((x) => x.attributes["db.query.text"] === "SELECT 1");
    expect(q).toHaveLength(1);
    expect(q[0]!).toMatchObject({ name: "SELECT", parentSpanId: "", scope: { name: SCOPE } });
  }, 30_000);
});
