/**
 * Real database servers for the database/sql tests: Debian's PostgreSQL 15 and MariaDB 10.11, unpacked under
 * build/ by scripts/build-databases.sh (run by the test command), each started on loopback with its own data
 * directory in a temp dir, as `nobody` (both refuse to run as root), and removed again by stop().
 */
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./go.ts";
import { Proc } from "./processes.ts";
import { waitFor } from "./kernel.ts";

const NOBODY = 65534;

export interface DatabaseServer {
  port: number;
  stop(): Promise<void>;
}

/** build/<name>/root, unpacked on demand; and the environment its binaries need */
function unpacked(name: string): { root: string; env: Record<string, string> } {
  const root = join(ROOT, "build", name, "root");
  if (!existsSync(join(ROOT, "build", name, "env"))) {
    const r = Bun.spawnSync(["bash", join(ROOT, "scripts/build-databases.sh")], { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error(`scripts/build-databases.sh failed: ${name} could not be unpacked (see above)`);
  }
  const line = readFileSync(join(ROOT, "build", name, "env"), "utf8").trim();
  const eq = line.indexOf("=");
  return { root, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", [line.slice(0, eq)]: line.slice(eq + 1) } };
}

const asNobody = (args: string[]) => ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...args];

function run(args: string[], env: Record<string, string>): { ok: boolean; out: string } {
  const r = Bun.spawnSync(asNobody(args), { env, stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: r.stdout.toString() + r.stderr.toString() };
}

function nobodyDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chownSync(dir, NOBODY, NOBODY);
  return dir;
}

const randomPort = () => 20000 + Math.floor(Math.random() * 30000);

export interface Postgres extends DatabaseServer {
  /** a libpq key/value DSN for the "postgres" database, user postgres, no password (trust on loopback) */
  dsn: string;
  /** the same as a URL */
  url: string;
}

export function startPostgres(): Postgres {
  const { root, env } = unpacked("postgres");
  const bin = join(root, "usr/lib/postgresql/15/bin");
  const dir = nobodyDir("gotel-pg-");
  const data = join(dir, "data");
  const init = run([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"], env);
  if (!init.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.out}`);
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = randomPort();
    const opts = `-h 127.0.0.1 -p ${port} -k ${dir} -c jit=off -c fsync=off -c max_connections=50`;
    if (run([join(bin, "pg_ctl"), "-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "-t", "30", "start"], env).ok) {
      return {
        port,
        dsn: `host=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=disable`,
        url: `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
        stop: async () => {
          run([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], env);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
  }
  const log = existsSync(join(dir, "log")) ? readFileSync(join(dir, "log"), "utf8") : "";
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`PostgreSQL did not start: ${log.slice(-2000)}`);
}

export interface Mariadb extends DatabaseServer {
  /** go-sql-driver/mysql DSN for database "app", user root without a password */
  dsn: string;
  /** the server's Unix socket, and a DSN for database "app" through it */
  socket: string;
  socketDsn: string;
}

export async function startMariadb(): Promise<Mariadb> {
  const { root, env } = unpacked("mariadb");
  const dir = nobodyDir("gotel-mariadb-");
  const data = join(dir, "data");
  const init = run([join(root, "usr/bin/mariadb-install-db"), "--no-defaults", `--basedir=${join(root, "usr")}`, `--datadir=${data}`,
    "--auth-root-authentication-method=normal", "--skip-test-db", "--user=nobody"], env);
  if (!init.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mariadb-install-db failed: ${init.out}`);
  }
  const client = (port: number, sql: string) =>
    Bun.spawnSync([join(root, "usr/bin/mariadb"), "--no-defaults", "-uroot", "-h127.0.0.1", `-P${port}`, "-e", sql], { env, stdout: "pipe", stderr: "pipe" });
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = randomPort();
    const server = new Proc(asNobody([join(root, "usr/sbin/mariadbd"), "--no-defaults", `--basedir=${join(root, "usr")}`, `--datadir=${data}`,
      `--port=${port}`, "--bind-address=127.0.0.1", `--socket=${join(dir, "sock")}`, `--pid-file=${join(dir, "pid")}`,
      `--lc-messages-dir=${join(root, "usr/share/mariadb")}`, "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0"]), env);
    const ready = await waitFor(() => server.exitCode !== null || client(port, "SELECT 1").exitCode === 0, 30_000, 200);
    if (ready && server.exitCode === null) {
      const created = client(port, "CREATE DATABASE app");
      if (created.exitCode !== 0) throw new Error(`MariaDB: CREATE DATABASE failed: ${created.stderr.toString()}`);
      return {
        port,
        dsn: `root@tcp(127.0.0.1:${port})/app`,
        socket: join(dir, "sock"),
        socketDsn: `root@unix(${join(dir, "sock")})/app`,
        stop: async () => {
          await server.stop("SIGTERM", 30_000);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await server.stop("SIGKILL");
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error("MariaDB did not start on any of 5 ports");
}
