/**
 * A real PostgreSQL server for the database/sql tests: Debian's package, unpacked under build/postgres by
 * scripts/build-postgres.sh (run by the test command), started on loopback with its own data directory in a
 * temp dir, as `nobody` (the server refuses to run as root), and removed again by stop().
 */
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./go.ts";

const BIN = join(ROOT, "build/postgres/root/usr/lib/postgresql/15/bin");
const NOBODY = 65534;

export interface Postgres {
  port: number;
  /** a libpq key/value DSN for the "postgres" database, user postgres, no password (trust on loopback) */
  dsn: string;
  /** the same as a URL */
  url: string;
  stop(): void;
}

function run(args: string[], env: Record<string, string>): { ok: boolean; out: string } {
  const r = Bun.spawnSync(["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...args], { env, stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: r.stdout.toString() + r.stderr.toString() };
}

export function startPostgres(): Postgres {
  if (!existsSync(join(BIN, "postgres"))) {
    const r = Bun.spawnSync(["bash", join(ROOT, "scripts/build-postgres.sh")], { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error("scripts/build-postgres.sh failed: PostgreSQL could not be unpacked (see above)");
  }
  const envLine = readFileSync(join(ROOT, "build/postgres/env"), "utf8").trim();
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", [envLine.split("=")[0]!]: envLine.slice(envLine.indexOf("=") + 1) };
  const dir = mkdtempSync(join(tmpdir(), "gotel-pg-"));
  chownSync(dir, NOBODY, NOBODY);
  const data = join(dir, "data");
  const init = run([join(BIN, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"], env);
  if (!init.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.out}`);
  }
  // a port nobody else uses: try a few
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const opts = `-h 127.0.0.1 -p ${port} -k ${dir} -c jit=off -c fsync=off -c max_connections=50`;
    const start = run([join(BIN, "pg_ctl"), "-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "-t", "30", "start"], env);
    if (start.ok) {
      return {
        port,
        dsn: `host=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=disable`,
        url: `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
        stop: () => {
          run([join(BIN, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], env);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
  }
  const log = existsSync(join(dir, "log")) ? readFileSync(join(dir, "log"), "utf8") : "";
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`PostgreSQL did not start: ${log.slice(-2000)}`);
}
