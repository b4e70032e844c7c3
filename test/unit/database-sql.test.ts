/**
 * The pure parts of the database/sql instrumentation: SQL statements to operation and table, statement bytes to
 * text (cut at a character, binary data), data source names to server and database, drivers to db.system.name,
 * and events to spans under the semantic conventions.
 */
import { describe, expect, test } from "bun:test";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { decodeStatement, toSpanRecord, type DatabaseEvent } from "../../src/instrumentations/database-sql/plan.ts";
import { responseStatusCode } from "../../src/instrumentations/database-sql/errors.ts";
import { mysqlLocation, parseDsn, readDataSource, systemOfModules, systemOfType } from "../../src/instrumentations/database-sql/source.ts";
import type { TargetMemory } from "../../src/gobin/runtime-types.ts";
import { parseStatement } from "../../src/instrumentations/database-sql/statement.ts";

describe("parseStatement", () => {
  test.each([
    ["SELECT * FROM users WHERE id = $1", "SELECT", "users"],
    ["select name from public.users u join orders o on o.uid = u.id", "SELECT", "public.users"],
    ['SELECT * FROM "My Schema"."Users"', "SELECT", "My Schema.Users"],
    ["select * from [dbo].[Users]", "SELECT", "dbo.Users"],
    ["  -- a comment\n/* another */ INSERT INTO orders (a, b) VALUES (1, 'x FROM y')", "INSERT", "orders"],
    ["INSERT INTO `log` SET a = 1", "INSERT", "log"],
    ["UPDATE ONLY accounts SET x = 1", "UPDATE", "accounts"],
    ["DELETE FROM `sessions` WHERE 1", "DELETE", "sessions"],
    ["MERGE INTO stock USING deliveries d ON true WHEN MATCHED THEN DELETE", "MERGE", "stock"],
    ["REPLACE INTO kv (k, v) VALUES (?, ?)", "REPLACE", "kv"],
    ["WITH recent AS (SELECT * FROM orders WHERE t > now()) SELECT * FROM recent", "SELECT", "orders"],
    ["WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT n FROM t", "SELECT", "t"],
    ["WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved", "INSERT", "b"],
    ["SELECT * FROM (SELECT id FROM items) AS sub", "SELECT", "items"],
    ["SELECT (SELECT max(x) FROM a) FROM b", "SELECT", "b"],
    ["(SELECT a FROM t1) UNION (SELECT a FROM t2)", "SELECT", "t1"],
    ["SELECT $tag$ FROM x $tag$ FROM real_table", "SELECT", "real_table"],
    ["SELECT 'it''s FROM here' FROM quotes", "SELECT", "quotes"],
    ["CREATE TABLE IF NOT EXISTS widgets (id int)", "CREATE TABLE", "widgets"],
    ["DROP TABLE IF EXISTS app.widgets", "DROP TABLE", "app.widgets"],
    ["TRUNCATE TABLE logs", "TRUNCATE", "logs"],
    ["COPY users FROM STDIN", "COPY", "users"],
    // SQLite takes a string literal where a table name belongs
    ["INSERT INTO 'contacts' (name) VALUES ('a')", "INSERT", "contacts"],
    ["SELECT * FROM 'main'.'it''s' WHERE x = 'FROM y'", "SELECT", "main.it's"],
    ["CREATE TABLE 'notes' (id int)", "CREATE TABLE", "notes"],
  ])("%s", (sql, operation, collection) => {
    expect(parseStatement(sql)).toEqual({ operation, collection });
  });

  test.each([
    ["SELECT 1", "SELECT"],
    ["SELECT * FROM generate_series(1, 3)", "SELECT"],
    ["CREATE INDEX i ON t (x)", "CREATE INDEX"],
    ["BEGIN", "BEGIN"],
    ["set search_path = app", "SET"],
    ["PRAGMA journal_mode = WAL", "PRAGMA"],
    ["EXPLAIN QUERY PLAN SELECT 1", "EXPLAIN"],
  ])("no table: %s", (sql, operation) => {
    expect(parseStatement(sql)).toEqual({ operation });
  });

  // a first word that begins no SQL statement is not an operation (the span keeps the driver call's name)
  test.each(["", "   ", "-- only a comment", "\u0000\u0001binary", "42", "syntax error", "hello world FROM x", "'just a string'"])("nothing to name: %j", (sql) => {
    expect(parseStatement(sql)).toBeUndefined();
  });
});

describe("decodeStatement", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  test("a whole statement is decoded as it is", () => {
    expect(decodeStatement(bytes("SELECT 'é€😀'"), false)).toBe("SELECT 'é€😀'");
  });

  test.each([1, 2, 3])("a statement cut %i byte(s) into a 4-byte character loses that character", (n) => {
    const full = bytes("ab😀");
    expect(decodeStatement(full.subarray(0, 2 + n), true)).toBe("ab");
  });

  test("a statement cut after a whole character keeps it", () => {
    expect(decodeStatement(bytes("ab€"), true)).toBe("ab€");
    expect(decodeStatement(bytes("abc"), true)).toBe("abc");
  });

  test("bytes that are not UTF-8 become U+FFFD; control characters stay", () => {
    expect(decodeStatement(new Uint8Array([0x53, 0xff, 0xfe, 0x01, 0x00]), false)).toBe("S\uFFFD\uFFFD\u0001\u0000");
  });
});

describe("data source names", () => {
  test.each([
    ["postgresql", "postgres://app:secret@db.internal:6432/shop?sslmode=disable", { serverAddress: "db.internal", serverPort: 6432, namespace: "shop" }],
    ["postgresql", "postgresql://[::1]/shop", { serverAddress: "::1", serverPort: 5432, namespace: "shop" }],
    ["postgresql", "host=127.0.0.1 port=5433 user=postgres password='a b' dbname=postgres sslmode=disable", { serverAddress: "127.0.0.1", serverPort: 5433, namespace: "postgres" }],
    ["postgresql", "host=a.example,b.example dbname=x", { serverAddress: "a.example", serverPort: 5432, namespace: "x" }],
    ["postgresql", "dbname=x", { namespace: "x" }],
    ["mysql", "app:secret@tcp(db.internal:3307)/shop?parseTime=true", { serverAddress: "db.internal", serverPort: 3307, namespace: "shop" }],
    ["mysql", "app@/shop", { serverAddress: "localhost", serverPort: 3306, namespace: "shop" }],
    ["mysql", "app@unix(/run/mysqld.sock)/shop", { serverAddress: "/run/mysqld.sock", namespace: "shop" }],
    ["microsoft.sql_server", "sqlserver://sa:pw@sql.example:1444?database=orders", { serverAddress: "sql.example", serverPort: 1444, namespace: "orders" }],
    ["sqlite", "file:/var/lib/app.db?cache=shared", {}],
  ])("%s %s", (system, dsn, want) => {
    expect(parseDsn(system, dsn)).toEqual(want);
  });
});

/** a tiny address space: values placed at addresses, and runtime type names by address */
function memory(words: Record<number, Uint8Array>, names: Record<number, string> = {}): TargetMemory {
  return {
    read: (addr, n) => {
      for (const [base, bytes] of Object.entries(words)) {
        const o = addr - Number(base);
        if (o >= 0 && o + n <= bytes.length) return bytes.slice(o, o + n);
      }
      return undefined;
    },
    typeName: (a) => names[a],
  };
}
const u64 = (...vs: number[]) => new Uint8Array(new BigUint64Array(vs.map(BigInt)).buffer);

describe("go-sql-driver/mysql's parsed config", () => {
  test.each([
    ["tcp", "db.internal:3307", "shop", { serverAddress: "db.internal", serverPort: 3307, namespace: "shop" }],
    ["tcp6", "[::1]:3306", "", { serverAddress: "::1", serverPort: 3306 }],
    ["tcp4", "10.0.0.5:3306", "x", { serverAddress: "10.0.0.5", serverPort: 3306, namespace: "x" }],
    // semantic conventions: a Unix domain socket's name is the server's address; it has no port
    ["unix", "/run/mysqld/mysqld.sock", "shop", { serverAddress: "/run/mysqld/mysqld.sock", namespace: "shop" }],
    // a dialer the application registered: its address means nothing to us
    ["cloudsql", "project:region:instance", "shop", { namespace: "shop" }],
    [undefined, undefined, undefined, {}],
  ])("%s %s %s", (net, addr, db, want) => {
    expect(mysqlLocation(net, addr, db)).toEqual(want);
  });

  test("read from the target's memory: DB.connector -> *mysql.connector -> cfg -> Net, Addr, DBName", () => {
    const text = (s: string) => new TextEncoder().encode(s);
    const mem = memory({
      0x1000: u64(0x2000, 0), // connector {cfg *Config, ...}
      0x2000: u64(0, 0, 0, 0, 0x3000, 3, 0x3100, 14, 0x3200, 3), // Config: Net at 32, Addr at 48, DBName at 64
      0x3000: text("tcp"), 0x3100: text("127.0.0.1:3307"), 0x3200: text("app"),
      0x8000: u64(0, 0x9000), // the connector's itab: its type at +8
    }, { 0x9000: "*mysql.connector" });
    const offsets = { mysql_connector_cfg: 0, mysql_config_net: 32, mysql_config_addr: 48, mysql_config_dbname: 64 };
    const connector = { tab: 0x8000n, data: 0x1000n };
    const modules = ["github.com/go-sql-driver/mysql"];
    expect(readDataSource(mem, offsets, connector, modules)).toEqual({ system: "mysql", serverAddress: "127.0.0.1", serverPort: 3307, namespace: "app" });
    // without the connector's offset (neither DWARF nor the table): the driver only
    expect(readDataSource(mem, {}, connector, modules)).toEqual({ system: "mysql" });
  });
});

describe("drivers", () => {
  const modules = ["github.com/jackc/pgx/v5", "github.com/lib/pq", "github.com/mattn/go-sqlite3"];
  test.each([
    ["*stdlib.driverConnector", "postgresql"],
    ["*pq.Driver", "postgresql"],
    ["*sqlite3.SQLiteDriver", "sqlite"],
  ])("%s is %s", (type, system) => {
    expect(systemOfType(type, modules)).toBe(system);
  });

  test("a package name alone is not enough: its module must be in the binary", () => {
    expect(systemOfType("*mysql.connector", modules)).toBeUndefined();
    expect(systemOfType("*mysql.connector", ["github.com/go-sql-driver/mysql"])).toBe("mysql");
  });

  test("the system of the binary's driver modules, when they agree", () => {
    expect(systemOfModules(["github.com/lib/pq", "github.com/jackc/pgx/v5"])).toBe("postgresql");
    expect(systemOfModules(modules)).toBeUndefined();
    expect(systemOfModules(["golang.org/x/net"])).toBeUndefined();
  });
});

describe("the database's code in a driver's error", () => {
  const offsets = { pq_error_code: 16, mysql_error_number: 0, sqlite3_error_code: 0 };

  test("a SQLSTATE string field", () => {
    const mem = memory({ 0x1000: u64(0, 0, 0x2000, 5), 0x2000: new TextEncoder().encode("42P01") });
    expect(responseStatusCode(mem, offsets, "*pq.Error", 0x1000)).toBe("42P01");
  });

  test("numbers: MySQL's error number, SQLite's result code", () => {
    expect(responseStatusCode(memory({ 0x1000: new Uint8Array([0x7a, 0x04, 0, 0]) }), offsets, "*mysql.MySQLError", 0x1000)).toBe("1146");
    expect(responseStatusCode(memory({ 0x1000: u64(19) }), offsets, "sqlite3.Error", 0x1000)).toBe("19");
  });

  test("a driver error wrapped by fmt.Errorf's %w, twice: the wrapped error's code", () => {
    // *fmt.wrapError {msg string; err error} at 0x3000 -> another at 0x3100 -> *pq.Error at 0x1000
    const mem = memory({
      0x1000: u64(0, 0, 0x2000, 5), 0x2000: new TextEncoder().encode("23505"),
      0x3000: u64(0, 0, 0x4000, 0x3100), 0x3100: u64(0, 0, 0x4100, 0x1000),
      0x4000: u64(0, 0x5000), 0x4100: u64(0, 0x5100), // itabs: their type at +8
    });
    const names: Record<number, string> = { 0x5000: "*fmt.wrapError", 0x5100: "*pq.Error" };
    const typed: TargetMemory = { read: mem.read, typeName: (a) => names[a] };
    expect(responseStatusCode(typed, offsets, "*fmt.wrapError", 0x3000)).toBe("23505");
    expect(responseStatusCode(typed, offsets, "*fmt.wrapError", 0x3100)).toBe("23505");
    // wrapping something that is not a driver's error
    expect(responseStatusCode({ read: mem.read, typeName: () => "*errors.errorString" }, offsets, "*fmt.wrapError", 0x3100)).toBeUndefined();
  });

  test("what does not look like a code is dropped (memory reused since), as are unknown types and missing offsets", () => {
    const garbage = memory({ 0x1000: u64(0, 0, 0x2000, 5), 0x2000: new Uint8Array([0xff, 0, 1, 2, 3]) });
    expect(responseStatusCode(garbage, offsets, "*pq.Error", 0x1000)).toBeUndefined();
    expect(responseStatusCode(memory({ 0x1000: u64(123456) }), offsets, "sqlite3.Error", 0x1000)).toBeUndefined();
    expect(responseStatusCode(memory({ 0x1000: u64(1) }), offsets, "*errors.errorString", 0x1000)).toBeUndefined();
    expect(responseStatusCode(memory({ 0x1000: u64(1) }), {}, "sqlite3.Error", 0x1000)).toBeUndefined();
  });
});

describe("spans", () => {
  const event: DatabaseEvent = {
    traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", parentSpanId: "00f067aa0ba902b7", parentIsRemote: false,
    startNs: 1_000n, endNs: 2_000n, operation: "QUERY", client: "database/sql", query: "SELECT * FROM users WHERE id = $1", truncated: false,
  };
  const source = { system: "postgresql", serverAddress: "db", serverPort: 5432, namespace: "shop" };

  test("parsed: named after operation and table, statement included", () => {
    const r = toSpanRecord(event, source, { includeText: true, parse: true });
    expect(r).toMatchObject({ name: "SELECT users", kind: SpanKind.CLIENT, parentSpanId: "00f067aa0ba902b7", status: { code: SpanStatusCode.UNSET } });
    expect(r.attributes).toEqual({
      "db.system.name": "postgresql", "db.namespace": "shop", "server.address": "db", "server.port": 5432,
      "db.query.text": "SELECT * FROM users WHERE id = $1", "db.operation.name": "SELECT", "db.collection.name": "users",
    });
  });

  test("neither switch: DB, no statement", () => {
    const r = toSpanRecord(event, { system: "sqlite" }, { includeText: false, parse: false });
    expect(r.name).toBe("DB");
    expect(r.attributes).toEqual({ "db.system.name": "sqlite" });
  });

  test("transactions are named by what they do; an error sets status and error.type", () => {
    const r = toSpanRecord({ ...event, operation: "COMMIT", query: undefined, errorType: "*pq.Error", responseStatusCode: "40001" }, { system: "postgresql" }, { includeText: true, parse: false });
    expect(r.name).toBe("COMMIT");
    expect(r.status.code).toBe(SpanStatusCode.ERROR);
    expect(r.attributes).toEqual({ "db.system.name": "postgresql", "db.operation.name": "COMMIT", "error.type": "*pq.Error", "db.response.status_code": "40001" });
  });

  test("pgx's own API: the same span under pgx's scope; its transactions are the statements pgx runs", () => {
    expect(toSpanRecord(event, source, { includeText: false, parse: true }).scope).toBe("go.opentelemetry.io/auto/database/sql");
    const r = toSpanRecord({ ...event, client: "pgx", operation: "EXEC", query: "begin" }, source, { includeText: true, parse: true });
    expect(r).toMatchObject({ name: "BEGIN", scope: "go.opentelemetry.io/auto/github.com/jackc/pgx/v5" });
    expect(r.attributes).toMatchObject({ "db.operation.name": "BEGIN", "db.query.text": "begin" });
    expect(toSpanRecord({ ...event, client: "pgx", operation: "EXEC", query: "rollback" }, source, { includeText: false, parse: true }).name).toBe("ROLLBACK");
    expect(toSpanRecord({ ...event, client: "pgx", operation: "EXEC", query: "commit" }, source, { includeText: false, parse: false }).name).toBe("DB");
  });
});
