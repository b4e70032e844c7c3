/**
 * Programs that make the drivers' types appear in the DWARF, for the offsets generator (src/offsets/fields-program.ts):
 * their errors (SQLSTATE, MySQL's number) and the connectors that keep the server's address and database.
 */
import type { FieldsProgram } from "../../offsets/fields-program.ts";

export const FIELDS_PROGRAMS: readonly FieldsProgram[] = [
  {
    module: "github.com/lib/pq", since: "v1.0.0", imports: ['"github.com/lib/pq"'],
    body: "\t\tsink = append(sink, &pq.Error{Code: pq.ErrorCode(os.Args[1])})",
  },
  {
    // the stdlib driver is registered at init: its connector type (driverConnector) is reachable
    module: "github.com/jackc/pgx/v5", since: "v5.0.0",
    imports: ['"database/sql"', '"github.com/jackc/pgx/v5"', '"github.com/jackc/pgx/v5/pgconn"', '_ "github.com/jackc/pgx/v5/stdlib"'],
    body: "\t\tdb, _ := sql.Open(\"pgx\", os.Args[1])\n\t\tsink = append(sink, db, &pgconn.PgError{Code: os.Args[2]}, &pgx.Batch{})",
  },
  {
    // pgx v4: its stdlib driver's connector keeps the data source name; its own API's Conn, the config; its pgconn
    // is a module of its own (the server's address, the SQLSTATE)
    module: "github.com/jackc/pgx/v4", since: "v4.0.0",
    imports: ['"context"', '"database/sql"', '"github.com/jackc/pgx/v4"', '_ "github.com/jackc/pgx/v4/stdlib"'],
    body: "\t\tdb, _ := sql.Open(\"pgx\", os.Args[1])\n\t\tconn, _ := pgx.Connect(context.Background(), os.Args[1])\n\t\tsink = append(sink, db, conn, &pgx.Batch{})",
  },
  {
    module: "github.com/jackc/pgconn", since: "v1.0.0", imports: ['"github.com/jackc/pgconn"'],
    body: "\t\tsink = append(sink, &pgconn.Config{Host: os.Args[1]}, &pgconn.PgError{Code: os.Args[2]})",
  },
  {
    // its error; the connector sql.Open gets from the registered driver (v1.5.0 on; absent before) keeps the
    // parsed *Config (the server's address, the database)
    module: "github.com/go-sql-driver/mysql", since: "v1.4.0", imports: ['"database/sql"', '"github.com/go-sql-driver/mysql"'],
    body: "\t\tdb, _ := sql.Open(\"mysql\", os.Args[1])\n\t\tcfg, _ := mysql.ParseDSN(os.Args[2])\n" +
      "\t\tsink = append(sink, db, cfg, &mysql.MySQLError{Number: uint16(len(os.Args))})",
  },
];
