/**
 * Which database a *sql.DB talks to: `db.system.name` from its driver, and `db.namespace`, `server.address`,
 * `server.port` from its data source name where database/sql keeps it. Read from the target's memory in user
 * space once per connector (a DB's connector never changes): the kernel probe sends the DB's connector.
 *
 *   DB.connector (driver.Connector)  sql.Open with a driver that is not a driver.DriverContext wraps the DSN in
 *                                    database/sql.dsnConnector{dsn string, driver driver.Driver}; the others
 *                                    (pgx's stdlib, go-sql-driver/mysql) return their own connector: the driver
 *                                    is named; pgx's keeps the DSN in driverConnector.name, go-sql-driver's
 *                                    (v1.5.0 on) the parsed DSN in connector.cfg (*Config: Net, Addr, DBName),
 *                                    read through offsets from the binary's DWARF or the offsets table.
 *
 * The driver comes from the dynamic type's package name ("*pq.Driver" -> pq), confirmed by the module being in
 * the binary's build info; when the connector cannot be read, from the one SQL driver module the binary has.
 */
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { itabTypeName, utf8 } from "../../probes/span-event.ts";

export interface DataSource {
  /** semantic conventions' db.system.name: "postgresql", "mysql", "sqlite", …, "other_sql" */
  system: string;
  namespace?: string;
  serverAddress?: string;
  serverPort?: number;
}

/** an interface value's two words, as the kernel read them */
export interface GoIface {
  tab: bigint;
  data: bigint;
}

export interface SourceOffsets {
  /** pgx's Conn config: pgconn.Config embedded in ConnConfig, and its members */
  pgx_connconfig_config?: number;
  pgconn_config_host?: number;
  pgconn_config_port?: number;
  pgconn_config_database?: number;
  dsn_connector_dsn?: number;
  dsn_connector_driver?: number;
  /** the DSN string in pgx's stdlib connector */
  pgx5_connector_name?: number;
  pgx4_connector_name?: number;
  /** go-sql-driver/mysql: connector.cfg (*Config) and the Config's Net, Addr and DBName strings */
  mysql_connector_cfg?: number;
  mysql_config_net?: number;
  mysql_config_addr?: number;
  mysql_config_dbname?: number;
}

interface Driver {
  /** package name in runtime type names */
  pkg: string;
  /** module path prefix in build info */
  module: string;
  system: string;
}

const DRIVERS: readonly Driver[] = [
  { pkg: "pq", module: "github.com/lib/pq", system: "postgresql" },
  { pkg: "stdlib", module: "github.com/jackc/pgx", system: "postgresql" },
  { pkg: "pgdriver", module: "github.com/uptrace/bun/driver/pgdriver", system: "postgresql" },
  { pkg: "sqlite3", module: "github.com/mattn/go-sqlite3", system: "sqlite" },
  { pkg: "sqlite", module: "modernc.org/sqlite", system: "sqlite" },
  { pkg: "sqlite", module: "github.com/glebarez/go-sqlite", system: "sqlite" },
  { pkg: "mysql", module: "github.com/go-sql-driver/mysql", system: "mysql" },
  { pkg: "mssql", module: "github.com/microsoft/go-mssqldb", system: "microsoft.sql_server" },
  { pkg: "mssql", module: "github.com/denisenkom/go-mssqldb", system: "microsoft.sql_server" },
  { pkg: "go_ora", module: "github.com/sijms/go-ora", system: "oracle.db" },
  { pkg: "clickhouse", module: "github.com/ClickHouse/clickhouse-go", system: "clickhouse" },
];

export const OTHER_SQL = "other_sql";

const inModule = (path: string, module: string) => path === module || path.startsWith(`${module}/`);
const hasModule = (modules: readonly string[], module: string) => modules.some((m) => inModule(m, module));

/** The system of the driver a Go type belongs to ("*pq.Driver", "*stdlib.driverConnector"), if it is one we know. */
export function systemOfType(typeName: string, modules: readonly string[]): string | undefined {
  const pkg = /^\**([^.]+)\./.exec(typeName)?.[1];
  return DRIVERS.find((d) => d.pkg === pkg && hasModule(modules, d.module))?.system;
}

/** The SQL driver modules a binary has, with their systems: "github.com/lib/pq (postgresql)". */
export function driversIn(modules: readonly string[]): string[] {
  return DRIVERS.flatMap((d) => modules.filter((m) => inModule(m, d.module)).map((m) => `${m} (${d.system})`)).sort();
}

/** The system when the binary has SQL driver modules of one system only. */
export function systemOfModules(modules: readonly string[]): string | undefined {
  const systems = new Set(DRIVERS.filter((d) => hasModule(modules, d.module)).map((d) => d.system));
  return systems.size === 1 ? [...systems][0] : undefined;
}

const DEFAULT_PORTS: Record<string, number> = { postgresql: 5432, mysql: 3306, "microsoft.sql_server": 1433, "oracle.db": 1521, clickhouse: 9000 };

type Location = Omit<DataSource, "system">;

/** Host, port and database of a data source name in the forms the drivers accept; passwords are never kept. */
export function parseDsn(system: string, dsn: string): Location {
  const out: Location = {};
  const set = (host: string | undefined, port: string | undefined, db: string | undefined) => {
    host = host?.split(",")[0]; // multi-host DSNs: the first
    if (host) out.serverAddress = host.replace(/^\[(.*)\]$/, "$1");
    // a Unix socket path has no port
    const p = port ? Number(port.split(",")[0]) : host && !host.startsWith("/") ? DEFAULT_PORTS[system] : undefined;
    if (p !== undefined && Number.isInteger(p) && p > 0 && p < 65536) out.serverPort = p;
    if (db) out.namespace = db;
  };
  if (system === "sqlite") return out;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dsn)) {
    try {
      const u = new URL(dsn);
      const db = decodeURIComponent(u.pathname.replace(/^\//, "")) || u.searchParams.get("database") || u.searchParams.get("dbname") || undefined;
      set(decodeURIComponent(u.hostname) || u.searchParams.get("host") || undefined, u.port || u.searchParams.get("port") || undefined, db);
    } catch { /* not a URL after all */ }
    return out;
  }
  if (system === "mysql") {
    // [user[:password]@][protocol[(address)]]/dbname[?param=value]
    const m = /^(?:.*@)?(?:(\w+)(?:\(([^)]*)\))?)?\/([^?]*)/.exec(dsn);
    if (m) {
      const addr = m[2] ?? (m[1] === "tcp" || !m[1] ? "localhost:3306" : undefined);
      const hp = addr ? /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(addr) : null;
      set(hp?.[1], hp?.[2], m[3] || undefined);
    }
    return out;
  }
  // key=value pairs (libpq, go-mssqldb "server=…;database=…"), values optionally single-quoted
  const kv = new Map<string, string>();
  for (const m of dsn.matchAll(/([A-Za-z_ ]+?)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s;]*)/g)) {
    kv.set(m[1]!.trim().toLowerCase(), m[2]!.replace(/^'(.*)'$/, "$1").replace(/\\(.)/g, "$1"));
  }
  set(kv.get("host") ?? kv.get("server") ?? kv.get("data source"), kv.get("port"), kv.get("dbname") ?? kv.get("database") ?? kv.get("initial catalog"));
  return out;
}

/**
 * What go-sql-driver/mysql's parsed Config says: a TCP address ("tcp", "tcp4", "tcp6"; the driver has added the
 * port) gives server.address and server.port, a Unix socket its path as server.address (semantic conventions:
 * "IP address or Unix domain socket name") and no port; a network registered by the application
 * (mysql.RegisterDialContext) says nothing about the server.
 */
export function mysqlLocation(net: string | undefined, addr: string | undefined, dbName: string | undefined): Location {
  const out: Location = dbName ? { namespace: dbName } : {};
  if (!addr) return out;
  if (net === "unix") return { ...out, serverAddress: addr };
  if (net !== "tcp" && net !== "tcp4" && net !== "tcp6") return out;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  const host = m ? m[1] ?? m[2] : addr;
  const port = m ? Number(m[3]) : undefined;
  return {
    ...out, ...(host ? { serverAddress: host } : {}),
    ...(port !== undefined && Number.isInteger(port) && port > 0 && port < 65536 ? { serverPort: port } : {}),
  };
}

const MAX_DSN = 4096;

function readU64(mem: TargetMemory, addr: number): number | undefined {
  const b = mem.read(addr, 8);
  if (!b || b.length < 8) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
}

function readString(mem: TargetMemory, addr: number): string | undefined {
  const ptr = readU64(mem, addr);
  const len = readU64(mem, addr + 8);
  if (!ptr || !len || len > MAX_DSN) return undefined;
  const b = mem.read(ptr, len);
  return b ? utf8.decode(b) : undefined;
}

/** An interface value's dynamic type name and data pointer, when both are there. */
function ifaceType(mem: TargetMemory, iface: GoIface): { type: string; data: number } | undefined {
  const type = itabTypeName(mem, iface.tab);
  const data = iface.data <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(iface.data) : 0;
  return type && data ? { type, data } : undefined;
}

/** The interface value stored at addr (itab, then data). */
function ifaceAt(mem: TargetMemory, addr: number): GoIface {
  return { tab: BigInt(readU64(mem, addr) ?? 0), data: BigInt(readU64(mem, addr + 8) ?? 0) };
}

/** What a pgx Conn whose *ConnConfig is at `config` talks to: pgconn.Config's Host, Port and Database. */
export function readPgxSource(mem: TargetMemory | undefined, offsets: SourceOffsets, config: number): DataSource {
  const system = "postgresql";
  if (!mem || !config || offsets.pgx_connconfig_config === undefined) return { system };
  const at = config + offsets.pgx_connconfig_config;
  const str = (off: number | undefined): string | undefined => (off === undefined ? undefined : readString(mem, at + off));
  const portBytes = offsets.pgconn_config_port === undefined ? undefined : mem.read(at + offsets.pgconn_config_port, 2);
  const port = portBytes && portBytes.length === 2 ? portBytes[0]! | (portBytes[1]! << 8) : 0; // uint16
  const host = str(offsets.pgconn_config_host);
  const database = str(offsets.pgconn_config_database);
  return { system, ...(database ? { namespace: database } : {}), ...(host ? { serverAddress: host } : {}), ...(port ? { serverPort: port } : {}) };
}

/** go-sql-driver/mysql's connector at `connector`: its *Config's Net, Addr and DBName. */
function readMysqlConfig(mem: TargetMemory, offsets: SourceOffsets, connector: number): Location {
  if (offsets.mysql_connector_cfg === undefined) return {};
  const cfg = readU64(mem, connector + offsets.mysql_connector_cfg);
  if (!cfg) return {};
  const str = (off: number | undefined): string | undefined => (off === undefined ? undefined : readString(mem, cfg + off));
  return mysqlLocation(str(offsets.mysql_config_net), str(offsets.mysql_config_addr), str(offsets.mysql_config_dbname));
}

/** What the DB whose DB.connector is `connectorIface` talks to. */
export function readDataSource(mem: TargetMemory | undefined, offsets: SourceOffsets, connectorIface: GoIface, modules: readonly string[]): DataSource {
  const fallback = systemOfModules(modules) ?? OTHER_SQL;
  const connector = mem ? ifaceType(mem, connectorIface) : undefined;
  if (!mem || !connector) return { system: fallback };
  if (connector.type !== "sql.dsnConnector" && connector.type !== "*sql.dsnConnector") {
    const system = systemOfType(connector.type, modules) ?? fallback;
    if (connector.type === "*mysql.connector") return { system, ...readMysqlConfig(mem, offsets, connector.data) };
    const nameAt = connector.type === "*stdlib.driverConnector" ? offsets.pgx5_connector_name ?? offsets.pgx4_connector_name : undefined;
    const dsn = nameAt === undefined ? undefined : readString(mem, connector.data + nameAt);
    return { system, ...(dsn ? parseDsn(system, dsn) : {}) };
  }
  const driver = offsets.dsn_connector_driver === undefined ? undefined : ifaceType(mem, ifaceAt(mem, connector.data + offsets.dsn_connector_driver));
  const system = (driver && systemOfType(driver.type, modules)) ?? fallback;
  const dsn = offsets.dsn_connector_dsn === undefined ? undefined : readString(mem, connector.data + offsets.dsn_connector_dsn);
  return { system, ...(dsn ? parseDsn(system, dsn) : {}) };
}
