/**
 * `db.response.status_code`: the database's own code in the error a driver returned — PostgreSQL's SQLSTATE
 * ("42P01"), MySQL's error number ("1146"), SQLite's result code ("1"). The kernel sends the error's dynamic
 * type and data word; the code is read here from the target's memory when the span is recorded, a few
 * milliseconds after the call returned, while the caller still holds the error. Field offsets come from the
 * binary's DWARF, else the offsets table (every release of lib/pq, pgx v5 and go-sql-driver/mysql; not the
 * SQLite drivers, whose stripped binaries get no code). A value that does not look like a code of its kind
 * (memory already reused) is dropped.
 */
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { itabTypeName, utf8 } from "../../probes/span-event.ts";

interface ErrorCodeField {
  /** the error's dynamic type as %T prints it */
  type: string;
  field: string;
  module: string;
  read(mem: TargetMemory, at: number): string | undefined;
}

const MAX_CODE = 16;

function readU(mem: TargetMemory, at: number, size: 2 | 8): number | undefined {
  const b = mem.read(at, size);
  if (!b || b.length < size) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, size);
  return size === 2 ? dv.getUint16(0, true) : Number(dv.getBigInt64(0, true));
}

const sqlstate = (mem: TargetMemory, at: number): string | undefined => {
  const ptr = readU(mem, at, 8);
  const len = readU(mem, at + 8, 8);
  if (!ptr || len !== 5) return undefined;
  const b = mem.read(ptr, 5);
  const s = b ? utf8.decode(b) : undefined;
  return s && /^[0-9A-Z]{5}$/.test(s) ? s : undefined;
};
const number = (size: 2 | 8, max: number) => (mem: TargetMemory, at: number): string | undefined => {
  const n = readU(mem, at, size);
  return n !== undefined && n > 0 && n <= max ? String(n) : undefined;
};

/** config key -> where the code sits in one driver's error type */
export const ERROR_CODE_FIELDS: Record<string, ErrorCodeField> = {
  pq_error_code: { type: "*pq.Error", field: "github.com/lib/pq.Error.Code", module: "github.com/lib/pq", read: sqlstate },
  pgx5_error_code: { type: "*pgconn.PgError", field: "github.com/jackc/pgx/v5/pgconn.PgError.Code", module: "github.com/jackc/pgx/v5", read: sqlstate },
  mysql_error_number: { type: "*mysql.MySQLError", field: "github.com/go-sql-driver/mysql.MySQLError.Number", module: "github.com/go-sql-driver/mysql", read: number(2, 65535) },
  // SQLite primary result codes are 1..28 (extended codes live in another field)
  sqlite3_error_code: { type: "sqlite3.Error", field: "github.com/mattn/go-sqlite3.Error.Code", module: "github.com/mattn/go-sqlite3", read: number(8, 255) },
  modernc_error_code: { type: "*sqlite.Error", field: "modernc.org/sqlite.Error.code", module: "modernc.org/sqlite", read: number(8, 0xffff) },
};

export type ErrorCodeOffsets = Partial<Record<string, number>>;

/** fmt.Errorf("…: %w", err) returns a *fmt.wrapError {msg string; err error}: its err (itab, data) at +16 */
const WRAP_ERROR = "*fmt.wrapError";
const WRAPPED_AT = 16;
const MAX_UNWRAP = 4;

/**
 * The database's code in the error value at `data` of dynamic type `type`, when this is a driver we know — or
 * a driver error wrapped by fmt.Errorf's %w (pgx's CopyFrom wraps its errors so), a few levels deep.
 */
export function responseStatusCode(mem: TargetMemory | undefined, offsets: ErrorCodeOffsets, type: string, data: number): string | undefined {
  if (!mem || !data) return undefined;
  for (let depth = 0; depth < MAX_UNWRAP && type === WRAP_ERROR; depth++) {
    const wrapped = mem.read(data + WRAPPED_AT, 16);
    if (!wrapped || wrapped.length < 16) return undefined;
    const dv = new DataView(wrapped.buffer, wrapped.byteOffset, 16);
    type = itabTypeName(mem, dv.getBigUint64(0, true)) ?? "";
    data = Number(dv.getBigUint64(8, true));
    if (!data) return undefined;
  }
  for (const [key, f] of Object.entries(ERROR_CODE_FIELDS)) {
    const off = offsets[key];
    if (f.type === type && off !== undefined) return f.read(mem, data + off)?.slice(0, MAX_CODE);
  }
  return undefined;
}
