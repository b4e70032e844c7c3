/**
 * database/sql end to end: an HTTP service doing SQL (test/fixtures/http-db) against a real PostgreSQL
 * server (Debian's, through pgx and lib/pq), a real MariaDB (go-sql-driver/mysql) and SQLite
 * (mattn/go-sqlite3, cgo), traced by the compiled gotel
 * with `run`, and what a real OpenTelemetry Collector received: span names, attributes, statement text and
 * parsing on and off, error status, transactions, prepared statements (also in a transaction), a dedicated
 * connection (db.Conn), and the parent of every DB span.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GOTEL } from "../support/cli.ts";
import { pidOf } from "../support/chain.ts";
import { Collector, SPAN_KIND, STATUS_CODE, describeSpans, useCollector, type ReceivedSpan } from "../support/collector.ts";
import { buildGoFixture, type GoBuild } from "../support/go.ts";
import { startMariadb, startPostgres, type Mariadb, type Postgres } from "../support/databases.ts";
import { Proc, startServer } from "../support/processes.ts";

const sharedCollector = useCollector();
let collector: Collector;
let postgres: Postgres;
let mariadb: Mariadb;
const sqliteDir = mkdtempSync(join(tmpdir(), "gotel-sqlite-"));
beforeAll(async () => {
  collector = sharedCollector();
  postgres = startPostgres();
  mariadb = await startMariadb();
}, 120_000);
afterAll(async () => {
  await postgres?.stop();
  await mariadb?.stop();
  rmSync(sqliteDir, { recursive: true, force: true });
});

interface Driver {
  driver: string;
  cgo: boolean;
  tags?: string[];
  dsn: () => string;
  system: string;
  /** bind parameter syntax */
  ph: string;
  /** error.type and db.response.status_code of a query on a missing table */
  errorType: string;
  errorCode: string;
  /** db.response.status_code of a statement that is not SQL */
  syntaxCode: string;
  /** SQLite takes a string literal where a table name belongs; the others refuse it (a syntax error) */
  quotedTable: boolean;
  /** what the data source name tells */
  source: () => Record<string, string | bigint>;
}

const DRIVERS: Driver[] = [
  {
    // pgx's own connector keeps the DSN: read through the binary's DWARF
    driver: "pgx", cgo: false, dsn: () => postgres.url, system: "postgresql", ph: "$1", errorType: "*pgconn.PgError", errorCode: "42P01", syntaxCode: "42601", quotedTable: false,
    source: () => ({ "server.address": "127.0.0.1", "server.port": BigInt(postgres.port), "db.namespace": "postgres" }),
  },
  {
    driver: "postgres", cgo: false, dsn: () => postgres.dsn, system: "postgresql", ph: "$1", errorType: "*pq.Error", errorCode: "42P01", syntaxCode: "42601", quotedTable: false,
    source: () => ({ "server.address": "127.0.0.1", "server.port": BigInt(postgres.port), "db.namespace": "postgres" }),
  },
  {
    // the driver's own connector holds the parsed DSN (connector.cfg: Net, Addr, DBName), read through the
    // binary's DWARF (the offsets table when stripped)
    driver: "mysql", cgo: false, dsn: () => mariadb.dsn, system: "mysql", ph: "?", errorType: "*mysql.MySQLError", errorCode: "1146", syntaxCode: "1064", quotedTable: false,
    source: () => ({ "server.address": "127.0.0.1", "server.port": BigInt(mariadb.port), "db.namespace": "app" }),
  },
  {
    driver: "sqlite3", cgo: true, dsn: () => join(sqliteDir, "test.db"), system: "sqlite", ph: "?", errorType: "sqlite3.Error", errorCode: "1", syntaxCode: "1", quotedTable: true,
    source: () => ({}),
  },
  {
    // pure-Go SQLite, in a variant of the service built with -tags modernc
    driver: "sqlite", cgo: false, tags: ["modernc"], dsn: () => join(sqliteDir, "modernc.db"), system: "sqlite", ph: "?", errorType: "*sqlite.Error", errorCode: "1", syntaxCode: "1", quotedTable: true,
    source: () => ({}),
  },
];

const sqlite = () => DRIVERS.find((d) => d.driver === "sqlite3")!;

interface Service {
  target: Awaited<ReturnType<typeof startServer>>;
  gotel: Proc;
}

async function startService(d: Driver, env: Record<string, string>, build: GoBuild = {}): Promise<Service> {
  const exe = buildGoFixture("http-db", { cgo: d.cgo, ...(d.tags ? { tags: d.tags } : {}), ...build });
  const dsn = d.dsn();
  const target = await startServer(exe, ["127.0.0.1:0", d.driver, dsn]);
  const gotel = new Proc([GOTEL, "run", "--pid", String(target.proc.pid)], {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100", ...env,
  });
  try {
    await gotel.waitForLine(new RegExp(`attached pid=${target.proc.pid} .*instrumentation=database/sql`), 20_000);
  } catch (e) {
    await gotel.stop("SIGKILL");
    await target.proc.stop("SIGKILL");
    throw e;
  }
  return { target, gotel };
}

async function stopService(s: Service | undefined): Promise<void> {
  await s?.gotel.stop();
  await s?.target.proc.stop();
}

/** Sends one request and returns the server span of it and every span of its trace. */
async function request(s: Service, method: string, path: string, children: number) {
  const r = await fetch(`${s.target.base}${path}`, { method });
  await r.text();
  const pid = s.target.proc.pid;
  const urlPath = path.split("?")[0];
  let server: ReceivedSpan | undefined;
  const all = await collector.waitFor((spans) => {
    server = spans.find((x) => pidOf(x) === pid && x.kind === SPAN_KIND.SERVER && x.attributes["url.path"] === urlPath);
    return server !== undefined && spans.filter((x) => x.traceId === server!.traceId).length >= 1 + children;
  }, `${method} ${path} and its ${children} DB spans`);
  const trace = all.filter((x) => x.traceId === server!.traceId);
  const db = trace.filter((x) => x.kind === SPAN_KIND.CLIENT).sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
  expect(trace, describeSpans(trace)).toHaveLength(1 + children); // nothing else, nothing twice
  expect(db).toHaveLength(children);
  for (const x of db) {
    expect(x.parentSpanId).toBe(server!.spanId);
    // database/sql's span, not the one pgx's own API would make for the same statement inside its driver
    expect(x.scope.name).toBe("go.opentelemetry.io/auto/database/sql");
    expect(x.startTimeUnixNano >= server!.startTimeUnixNano && x.endTimeUnixNano <= server!.endTimeUnixNano).toBe(true);
  }
  collector.clear();
  return { status: r.status, server: server!, db };
}

const nowNs = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

const LONG = "SELECT '" + "€".repeat(3000) + "' AS long_value";

describe.each(DRIVERS)("$driver: statements captured and parsed", (d) => {
  let s: Service;
  beforeAll(async () => {
    s = await startService(d, { OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true", OTEL_GO_AUTO_PARSE_DB_STATEMENT: "true" });
  }, 300_000);
  afterAll(() => stopService(s));

  const attrs = (op: string, table: string | undefined, text: string) => ({
    "db.system.name": d.system, ...d.source(), "db.operation.name": op, ...(table ? { "db.collection.name": table } : {}), "db.query.text": text,
  });

  test("a query: SELECT users, the child of the request's server span", async () => {
    const { server, db } = await request(s, "GET", "/users/1", 1);
    expect(server.name).toBe("GET /users/{id}");
    expect(db[0]!.name).toBe("SELECT users");
    expect(db[0]!.kind).toBe(SPAN_KIND.CLIENT);
    expect(db[0]!.attributes).toEqual(attrs("SELECT", "users", `SELECT name FROM users WHERE id = ${d.ph}`));
    expect(db[0]!.status.code).toBe(STATUS_CODE.UNSET);
  });

  test("an exec: INSERT users", async () => {
    const { status, db } = await request(s, "POST", "/users?name=lin", 1);
    expect(status).toBe(201);
    expect(db[0]!.name).toBe("INSERT users");
    expect(db[0]!.attributes).toEqual(attrs("INSERT", "users", `INSERT INTO users (name) VALUES (${d.ph})`));
  });

  test("a transaction that commits: BEGIN, its statements, COMMIT, and no span for the deferred Rollback", async () => {
    const { status, db } = await request(s, "POST", "/transfer", 4);
    expect(status).toBe(200);
    expect(db.map((x) => x.name)).toEqual(["BEGIN", "UPDATE accounts", "SELECT accounts", "COMMIT"]);
    expect(db[0]!.attributes).toEqual({ "db.system.name": d.system, ...d.source(), "db.operation.name": "BEGIN" });
    expect(db[3]!.attributes).toEqual({ "db.system.name": d.system, ...d.source(), "db.operation.name": "COMMIT" });
    expect(db[1]!.attributes["db.query.text"]).toBe("UPDATE accounts SET balance = balance - 1 WHERE id = 1");
  });

  test("a transaction that is rolled back: BEGIN, DELETE users, ROLLBACK", async () => {
    const { status, db } = await request(s, "POST", "/abort", 3);
    expect(status).toBe(204);
    expect(db.map((x) => x.name)).toEqual(["BEGIN", "DELETE users", "ROLLBACK"]);
    expect(db.every((x) => x.status.code === STATUS_CODE.UNSET)).toBe(true);
  });

  test("a failing query: status ERROR with the driver's error type and the database's code", async () => {
    const { status, db } = await request(s, "GET", "/missing", 1);
    expect(status).toBe(404);
    expect(db[0]!.name).toBe("SELECT missing_table");
    expect(db[0]!.status.code).toBe(STATUS_CODE.ERROR);
    expect(db[0]!.attributes).toEqual({
      ...attrs("SELECT", "missing_table", "SELECT id FROM missing_table"), "error.type": d.errorType, "db.response.status_code": d.errorCode,
    });
  });

  test("a failing exec: status ERROR with the driver's error type and the database's code, read where execDC's deferred closure runs", async () => {
    const { status, db } = await request(s, "POST", "/missing", 1);
    expect(status).toBe(404);
    expect(db[0]!.name).toBe("INSERT missing_table");
    expect(db[0]!.status.code).toBe(STATUS_CODE.ERROR);
    expect(db[0]!.attributes).toEqual({
      ...attrs("INSERT", "missing_table", "INSERT INTO missing_table (id) VALUES (1)"), "error.type": d.errorType, "db.response.status_code": d.errorCode,
    });
  });

  test("a statement that is not SQL: no operation (its first word is none), named DB, ERROR with the database's code", async () => {
    const { status, db } = await request(s, "GET", "/syntax", 1);
    expect(status).toBe(400);
    expect(db[0]!.name).toBe("DB");
    expect(db[0]!.status.code).toBe(STATUS_CODE.ERROR);
    expect(db[0]!.attributes).toEqual({
      "db.system.name": d.system, ...d.source(), "db.query.text": "syntax error", "error.type": d.errorType, "db.response.status_code": d.syntaxCode,
    });
  });

  test("a table name in single quotes keeps its table: INSERT users (an error where the database refuses the quotes)", async () => {
    const { status, db } = await request(s, "POST", "/quoted", 1);
    expect(status).toBe(d.quotedTable ? 201 : 400);
    expect(db[0]!.name).toBe("INSERT users");
    expect(db[0]!.attributes).toEqual({
      ...attrs("INSERT", "users", "INSERT INTO 'users' (name) VALUES ('quoted')"),
      ...(d.quotedTable ? {} : { "error.type": d.errorType, "db.response.status_code": d.syntaxCode }),
    });
  });

  test("prepared statements: Stmt.QueryContext and Stmt.ExecContext (preparing makes no span)", async () => {
    const { status, db } = await request(s, "GET", "/prepared", 2);
    expect(status).toBe(200);
    expect(db.map((x) => x.name)).toEqual(["SELECT users", "UPDATE accounts"]);
    expect(db[0]!.attributes).toEqual(attrs("SELECT", "users", `SELECT count(*) FROM users WHERE id > ${d.ph}`));
    expect(db[1]!.attributes["db.query.text"]).toBe(`UPDATE accounts SET balance = balance WHERE id = ${d.ph}`);
  });

  test("db.Conn's QueryContext and ExecContext, tx.StmtContext and tx.PrepareContext: each statement once, with the DB's attributes", async () => {
    const { status, db } = await request(s, "POST", "/paths", 6);
    expect(status).toBe(200);
    expect(db.map((x) => [x.name, x.attributes["db.query.text"]])).toEqual([
      ["SELECT users", "SELECT count(*) FROM users"], ["UPDATE accounts", "UPDATE accounts SET balance = balance + 1 WHERE id = 1"],
      ["BEGIN", undefined], ["SELECT users", `SELECT name FROM users WHERE id = ${d.ph}`],
      ["UPDATE accounts", `UPDATE accounts SET balance = balance - 1 WHERE id = ${d.ph}`], ["COMMIT", undefined],
    ]);
    expect(db[3]!.attributes).toEqual(attrs("SELECT", "users", `SELECT name FROM users WHERE id = ${d.ph}`));
    expect(db[1]!.attributes).toEqual(attrs("UPDATE", "accounts", "UPDATE accounts SET balance = balance + 1 WHERE id = 1"));
    expect(db.every((x) => x.status.code === STATUS_CODE.UNSET)).toBe(true);
  });

  test("a statement longer than the limit is cut at 4096 bytes without splitting a character", async () => {
    const { status, db } = await request(s, "GET", "/long", 1);
    expect(status).toBe(200);
    const text = db[0]!.attributes["db.query.text"] as string;
    // 8 bytes of "SELECT '" then 3-byte characters: 1362 whole ones fit in 4096 bytes, the 1363rd would not
    expect(text).toBe(LONG.slice(0, 8 + 1362));
    expect(Buffer.byteLength(text)).toBe(4094);
    expect(db[0]!.name).toBe("SELECT");
  });

  test("binary data in a statement: bytes that are not UTF-8 become U+FFFD, the target keeps serving", async () => {
    const { status, db } = await request(s, "GET", "/binary", 1);
    expect(status).toBe(200);
    expect(db[0]!.attributes["db.query.text"]).toBe("SELECT 1 AS one /* \uFFFD\uFFFD\u0001 */");
    expect(db[0]!.name).toBe("SELECT");
    expect((await request(s, "GET", "/users/2", 1)).status).toBe(200);
  });

  test("a query made with context.Background() is a root span of its own trace", async () => {
    expect((await fetch(`${s.target.base}/background`)).status).toBe(200);
    const pid = s.target.proc.pid;
    const spans = await collector.waitFor((all) => all.filter((x) => pidOf(x) === pid).length >= 2, "the request's span and the query's");
    const mine = spans.filter((x) => pidOf(x) === pid);
    expect(mine, describeSpans(mine)).toHaveLength(2);
    const server = mine.find((x) => x.kind === SPAN_KIND.SERVER)!;
    const query = mine.find((x) => x.kind === SPAN_KIND.CLIENT)!;
    expect(server.attributes["url.path"]).toBe("/background");
    expect(query.attributes["db.query.text"]).toBe("SELECT 1");
    expect(query.name).toBe("SELECT");
    expect(query.parentSpanId).toBe("");
    expect(query.traceId).not.toBe(server.traceId);
    collector.clear();
  });
});

describe("statement switches (SQLite)", () => {
  test.each([
    { include: false, parse: false, name: "DB", text: false },
    { include: true, parse: false, name: "DB", text: true },
    { include: false, parse: true, name: "SELECT users", text: false },
  ])("include $include, parse $parse: span $name", async ({ include, parse, name, text }) => {
    const s = await startService(sqlite(), { OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: String(include), OTEL_GO_AUTO_PARSE_DB_STATEMENT: String(parse) });
    try {
      const { db } = await request(s, "GET", "/users/1", 1);
      expect(db[0]!.name).toBe(name);
      expect(db[0]!.attributes).toEqual({
        "db.system.name": "sqlite",
        ...(parse ? { "db.operation.name": "SELECT", "db.collection.name": "users" } : {}),
        ...(text ? { "db.query.text": "SELECT name FROM users WHERE id = ?" } : {}),
      });
      // transactions are named by what they do, whatever the switches
      const tx = await request(s, "POST", "/transfer", 4);
      expect(tx.db.map((x) => x.name)).toEqual(["BEGIN", parse ? "UPDATE accounts" : "DB", parse ? "SELECT accounts" : "DB", "COMMIT"]);
    } finally {
      await stopService(s);
    }
  }, 120_000);
});

test("PIE, cgo: error.type and its code read through Go's type data in .data.rel.ro", async () => {
  const s = await startService(sqlite(), {}, { pie: true });
  try {
    const failed = await request(s, "GET", "/missing", 1);
    expect(failed.db[0]!.attributes["error.type"]).toBe("sqlite3.Error");
    expect(failed.db[0]!.attributes["db.response.status_code"]).toBe("1");
  } finally {
    await stopService(s);
  }
}, 300_000);

test("stripped (no symbols, no DWARF), Go 1.22, cgo: offsets from the table, type names through runtime.firstmoduledata", async () => {
  const s = await startService(sqlite(), { OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true", OTEL_GO_AUTO_PARSE_DB_STATEMENT: "true" }, { goVersion: "1.22.12", stripped: true });
  try {
    expect(s.gotel.countLines(new RegExp(`attached pid=${s.target.proc.pid} .*go=1\\.22\\.12 instrumentation=database/sql .*offsets=table`))).toBe(1);
    const { db } = await request(s, "GET", "/users/1", 1);
    expect(db[0]!.name).toBe("SELECT users");
    expect(db[0]!.attributes).toEqual({
      "db.system.name": "sqlite", "db.operation.name": "SELECT", "db.collection.name": "users", "db.query.text": "SELECT name FROM users WHERE id = ?",
    });
    expect((await request(s, "POST", "/transfer", 4)).db.map((x) => x.name)).toEqual(["BEGIN", "UPDATE accounts", "SELECT accounts", "COMMIT"]);
    const failed = await request(s, "GET", "/missing", 1);
    expect(failed.db[0]!.attributes["error.type"]).toBe("sqlite3.Error");
    expect(failed.db[0]!.attributes["db.response.status_code"]).toBeUndefined(); // its offset needs DWARF
  } finally {
    await stopService(s);
  }
}, 300_000);

describe.each(["pgx", "postgres", "mysql"])("stripped pure-Go build, %s: the driver's fields from the offsets table", (name) => {
  test("the data source and the database's error code, as with DWARF", async () => {
    const d = DRIVERS.find((x) => x.driver === name)!;
    const s = await startService(d, { OTEL_GO_AUTO_PARSE_DB_STATEMENT: "true" }, { stripped: true });
    try {
      expect(s.gotel.countLines(new RegExp(`attached pid=${s.target.proc.pid} .*instrumentation=database/sql .*offsets=table`))).toBe(1);
      const { db } = await request(s, "GET", "/missing", 1);
      expect(db[0]!.attributes).toEqual({
        "db.system.name": d.system, ...d.source(), "db.operation.name": "SELECT", "db.collection.name": "missing_table",
        "error.type": d.errorType, "db.response.status_code": d.errorCode,
      });
    } finally {
      await stopService(s);
    }
  }, 300_000);
});

test("go-sql-driver/mysql over a Unix socket: server.address is the socket's path, without a port", async () => {
  const d = { ...DRIVERS.find((x) => x.driver === "mysql")!, dsn: () => mariadb.socketDsn };
  const s = await startService(d, { OTEL_GO_AUTO_PARSE_DB_STATEMENT: "true" });
  try {
    const { db } = await request(s, "GET", "/users/1", 1);
    expect(db[0]!.attributes).toEqual({
      "db.system.name": "mysql", "server.address": mariadb.socket, "db.namespace": "app", "db.operation.name": "SELECT", "db.collection.name": "users",
    });
  } finally {
    await stopService(s);
  }
}, 120_000);

test("a query that never returns before the target exits: it and its request are reported unfinished, and the same gotel traces the next process", async () => {
  const pq = DRIVERS.find((d) => d.driver === "postgres")!;
  const exe = buildGoFixture("http-db", { cgo: false });
  const gotel = new Proc([GOTEL, "run", "--exe", exe], {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true",
  });
  const targets: Awaited<ReturnType<typeof startServer>>[] = [];
  try {
    const first = await startServer(exe, ["127.0.0.1:0", pq.driver, pq.dsn()]);
    targets.push(first);
    await gotel.waitForLine(new RegExp(`attached pid=${first.proc.pid} .*instrumentation=database/sql`), 20_000);
    collector.clear();
    const sent = nowNs();
    const pending = fetch(`${first.base}/sleep`).catch(() => undefined);
    await Bun.sleep(500);
    const killed = nowNs();
    await first.proc.stop("SIGKILL");
    await pending;
    await gotel.waitForLine(new RegExp(`detached pid=${first.proc.pid} .*reason=exited unfinished=2$`), 10_000);
    expect(gotel.exitCode).toBeNull();
    // the server span and its statement's, still in flight at the kill: ERROR, ended when gotel saw the exit
    const spans = (await collector.waitFor((all) => all.filter((x) => pidOf(x) === first.proc.pid).length >= 2, "2 unfinished spans"))
      .filter((x) => pidOf(x) === first.proc.pid);
    expect(spans, describeSpans(spans)).toHaveLength(2);
    const server = spans.find((x) => x.kind === SPAN_KIND.SERVER)!;
    const db = spans.find((x) => x.kind === SPAN_KIND.CLIENT)!;
    const unfinished = { code: STATUS_CODE.ERROR, message: "unfinished: the process exited before the call returned" };
    // the route is read when a request ends: this one never did
    expect(server).toMatchObject({ name: "GET", status: unfinished, attributes: { "url.path": "/sleep", "error.type": "process_exited" } });
    expect(server.attributes).not.toHaveProperty("http.response.status_code");
    expect(db).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId, status: unfinished, attributes: { "error.type": "process_exited" } });
    // its text is read when a statement ends, from the process's memory, gone with it
    expect(db.attributes).not.toHaveProperty("db.query.text");
    for (const x of spans) {
      expect(x.startTimeUnixNano).toBeGreaterThanOrEqual(sent - 3_000_000n);
      expect(x.endTimeUnixNano).toBeGreaterThanOrEqual(killed);
      expect(x.endTimeUnixNano).toBeLessThanOrEqual(nowNs());
    }
    collector.clear();

    const second = await startServer(exe, ["127.0.0.1:0", pq.driver, pq.dsn()]);
    targets.push(second);
    await gotel.waitForLine(new RegExp(`attached pid=${second.proc.pid} .*instrumentation=database/sql`), 20_000);
    const { db: next } = await request({ target: second, gotel }, "GET", "/users/1", 1);
    expect(next[0]!.attributes["db.query.text"]).toBe("SELECT name FROM users WHERE id = $1");
  } finally {
    expect(await gotel.stop()).toBe(0);
    for (const t of targets) await t.proc.stop();
  }
}, 120_000);

test("the HTTP + DB service of the reference setup (httpPlusdb): one trace per request, the server span and its SQL span", async () => {
  const s = await startService(sqlite(), {
    OTEL_SERVICE_NAME: "httpPlusdb", OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true", OTEL_PROPAGATORS: "tracecontext,baggage",
  });
  try {
    const N = 5;
    for (let i = 0; i < N; i++) expect((await fetch(`${s.target.base}/users/${1 + (i % 2)}`)).status).toBe(200);
    const spans = await collector.waitFor((all) => all.filter((x) => pidOf(x) === s.target.proc.pid).length >= 2 * N, "10 spans");
    const mine = spans.filter((x) => pidOf(x) === s.target.proc.pid);
    expect(mine).toHaveLength(2 * N);
    const traces = new Map<string, ReceivedSpan[]>();
    for (const x of mine) traces.set(x.traceId, [...(traces.get(x.traceId) ?? []), x]);
    expect(traces.size).toBe(N);
    for (const t of traces.values()) {
      const server = t.find((x) => x.kind === SPAN_KIND.SERVER)!;
      const sql = t.find((x) => x.kind === SPAN_KIND.CLIENT)!;
      expect(server.name).toBe("GET /users/{id}");
      expect(server.resource["service.name"]).toBe("httpPlusdb");
      expect(sql.parentSpanId).toBe(server.spanId);
      expect(sql.name).toBe("DB");
      expect(sql.attributes).toEqual({ "db.system.name": "sqlite", "db.query.text": "SELECT name FROM users WHERE id = ?" });
      expect(sql.scope.name).toBe("go.opentelemetry.io/auto/database/sql");
    }
    collector.clear();
  } finally {
    await stopService(s);
  }
}, 120_000);
