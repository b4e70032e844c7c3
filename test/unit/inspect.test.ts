/** `gotel inspect`: what it reports for every fixture variant, and how it refuses bad input. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatReport, inspectExecutable } from "../../src/cli/inspect.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { INSTRUMENTATIONS, notInstrumented, type Instrumentation } from "../../src/instrumentations/index.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { expectOneLineError, GOTEL, runCommand } from "../support/cli.ts";
import { buildGoFixture, ROOT, variantName, withGoVersion } from "../support/go.ts";
import { sampleVariants } from "../support/matrix.ts";

function goVersionOf(path: string): string {
  const r = Bun.spawnSync(["go", "version", path], { env: { ...process.env, GOTOOLCHAIN: "local" } });
  return r.stdout.toString().trim().split(" ").at(1) ?? "";
}

/** a router on net/http whose server instrumentation is ready */
const ROUTES_NOTE = "its routes are not read (its requests are traced by the net/http server instrumentation, without its route: no http.route)";

/** gobin-sample's router: chi v5.0.11 */
const chiRoutes = (offsetsSource: "dwarf" | "table") => ({
  name: "chi routes", status: "ready" as const, offsetsSource,
  reason: "github.com/go-chi/chi/v5.(*node).FindRoute entry (emulated): http.route for the server spans of its requests",
});

describe("inspect over the fixture matrix", () => {
  for (const v of sampleVariants()) {
    test(variantName(v), () => {
      const path = buildGoFixture("gobin-sample", v);
      const r = inspectExecutable(path);
      const { instrumentations, ...rest } = r;
      expect(rest).toEqual({
        path,
        goVersion: goVersionOf(path),
        arch: v.goarch ?? "amd64",
        stripped: v.stripped === true,
        dwarf: v.stripped !== true,
        pie: v.pie === true,
        cgo: v.cgo === true,
        mainModule: "gotel.test/gobinsample",
        modules: { std: v.goVersion, "github.com/go-chi/chi/v5": "v5.0.11" },
        notInstrumented: [],
      });
      // stripped binaries get their offsets from the bundled table, which has every version of the matrix
      expect(instrumentations).toEqual([{
        name: "net/http server", status: "ready",
        // gobin-sample serves h2c through golang.org/x/net
        reason: expect.stringMatching(/^net\/http\.serverHandler\.ServeHTTP: entry \(emulated\); ends at the entries of \(\*response\)\.finishRequest, \(\*conn\)\.serve\.func1 and 2 HTTP\/2 stream closures \(no return probes\); panics at runtime\.gopanic and runtime\.recovery; x\/net's HTTP\/2 streams start at \(\*serverConn\)\.runHandler$/),
        offsetsSource: v.stripped ? "table" : "dwarf",
      }, {
        name: "net/http client", status: "skipped",
        reason: "net/http.(*Transport).roundTrip is not in the binary (it sends no HTTP requests)",
      }, chiRoutes(v.stripped ? "table" : "dwarf"), {
        name: "database/sql", status: "skipped",
        reason: "database/sql.(*DB).queryDC is not in the binary (it uses neither database/sql nor pgx)",
      }]);
    });
  }
});

describe("a program that serves and sends HTTP (test/fixtures/http-chain)", () => {
  test.each([["1.19.13", false], ["1.27.4", false], ["1.27.4", true]] as const)("Go %s (stripped: %p): both net/http instrumentations are ready", (goVersion, stripped) => {
    const r = inspectExecutable(buildGoFixture("http-chain", { goVersion, stripped }));
    const source = stripped ? "table" : "dwarf";
    expect(r.instrumentations).toEqual([
      { name: "net/http server", status: "ready", reason: expect.stringMatching(/^net\/http\.serverHandler\.ServeHTTP: /), offsetsSource: source },
      {
        name: "net/http client", status: "ready", offsetsSource: source,
        reason: expect.stringMatching(new RegExp(
          "^net/http\\.\\(\\*Transport\\)\\.roundTrip: entry \\(emulated\\); ends success at the JE checking net/http\\.\\(\\*persistConn\\)\\.roundTrip's error " +
          "\\(emulated\\), other paths at \\d+ return sites \\(single-stepped\\); traceparent injection at net/http\\.Header\\.writeSubset; " +
          "HTTP/2: into the HEADERS frame$",
        )),
      },
      {
        name: "database/sql", status: "skipped",
        reason: "database/sql.(*DB).queryDC is not in the binary (it uses neither database/sql nor pgx)",
      },
    ]);
  });
});

describe("a program that uses database/sql with a cgo driver (test/fixtures/http-db)", () => {
  test.each([false, true])("stripped: %p", (stripped) => {
    const r = inspectExecutable(buildGoFixture("http-db", { cgo: true, stripped }));
    expect(r.cgo).toBe(true);
    expect(r.instrumentations.find((i) => i.name === "database/sql")).toEqual({
      name: "database/sql", status: "ready", offsetsSource: stripped ? "table" : "dwarf",
      reason: expect.stringMatching(/^\(\*DB\)\.queryDC, \(\*DB\)\.execDC, \(\*Stmt\)\.QueryContext, \(\*Stmt\)\.ExecContext, \(\*DB\)\.beginDC, \(\*Tx\)\.Commit, \(\*Tx\)\.rollback, pgx\.\(\*Conn\)\.Query, pgx\.\(\*Conn\)\.Exec: entry and \d+ return sites \(single-stepped\); queryDC ends success at the calls of database\/sql\.\(\*Rows\)\.initContextClose \(emulated\), other paths at 3 return sites \(single-stepped\); execDC ends at the entry of its deferred closure \(emulated\); drivers github\.com\/go-sql-driver\/mysql \(mysql\), github\.com\/jackc\/pgx\/v5 \(postgresql\), github\.com\/lib\/pq \(postgresql\), github\.com\/mattn\/go-sqlite3 \(sqlite\)$/),
    });
  }, 300_000);
});

describe("a stripped binary of a Go patch release the table does not have (go1.23.5: not on the module proxy)", () => {
  // test/fixtures/sql-fake built stripped with Go 1.23.12, its build info claiming go1.23.5; the table has
  // 1.23.4 and 1.23.6, whose offsets agree for every field the probes read
  const patched = () => withGoVersion(buildGoFixture("sql-fake", { goVersion: "1.23.12", stripped: true }), "go1.23.5");
  const note = "Go 1.23.5 is not in the table; using 1.23.4 and 1.23.6, which agree";

  test("each ready instrumentation says table-interpolated, and which built versions stood in", () => {
    const r = inspectExecutable(patched());
    expect(r.goVersion).toBe("go1.23.5");
    expect(r.instrumentations.map(({ name, status, offsetsSource, offsetsNote }) => ({ name, status, offsetsSource, offsetsNote }))).toEqual([
      { name: "net/http server", status: "ready", offsetsSource: "table-interpolated", offsetsNote: note },
      { name: "net/http client", status: "skipped", offsetsSource: undefined, offsetsNote: undefined },
      { name: "database/sql", status: "ready", offsetsSource: "table-interpolated", offsetsNote: note },
    ]);
  }, 300_000);

  test("gotel inspect: the note in the text and as offsetsNote in --json", () => {
    const text = runCommand([GOTEL, "inspect", patched()]);
    expect(text.code).toBe(0);
    const ready = text.stdout.split("\n").filter((l) => l.startsWith("  ready "));
    expect(ready).toHaveLength(2);
    for (const l of ready) expect(l).toEndWith(` (offsets: table-interpolated: ${note})`);
    const json = runCommand([GOTEL, "inspect", "--json", patched()]);
    expect(json.code).toBe(0);
    const j = JSON.parse(json.stdout) as { instrumentations: Record<string, unknown>[] };
    expect(j.instrumentations.filter((i) => i.status === "ready").map((i) => [i.name, i.offsetsSource, i.offsetsNote])).toEqual([
      ["net/http server", "table-interpolated", note], ["database/sql", "table-interpolated", note],
    ]);
    // the reason stays what it is for any source
    expect(j.instrumentations.every((i) => !String(i.reason).includes("1.23.4"))).toBe(true);
  }, 300_000);
});

describe("a stripped binary built by a development Go toolchain", () => {
  // build info rewritten to what tip toolchains write, without the commit date and with the hash cut: the section
  // has only a few bytes to spare (fewer in a clean checkout, whose vcs.modified=false is a byte longer). Its
  // structs are no release's, so no table row is used
  test.each([
    ["1.22.12", "devel go1.22-8a", "1.22-devel"],
    ["1.27.4", "go1.27-devel_0afb", "1.27-devel"],
  ])("Go %s claiming %s: skipped, naming the development version", (goVersion, claimed, series) => {
    const r = inspectExecutable(withGoVersion(buildGoFixture("http-server", { goVersion, stripped: true }), claimed));
    expect(r.goVersion).toBe(claimed);
    const server = r.instrumentations.find((i) => i.name === "net/http server")!;
    expect(server.status).toBe("skipped");
    expect(server.reason).toStartWith(`no offset for net/http.Request.Method in Go ${series} (amd64): `);
  }, 300_000);
});

describe("instrumentations and modules", () => {
  const fake = (name: string, module: string): Instrumentation => ({
    name, module, object: "none", needs: [], readiness: (exe) => ({ status: "ready", reason: `would probe ${exe.goVersion}`, offsetsSource: "dwarf" }), present: () => true,
    load: () => {
      throw new Error("inspect never loads an instrumentation");
    },
  });
  const registry = [fake("net/http server", "std"), fake("chi routes", "github.com/go-chi/chi/v5"), fake("grpc", "google.golang.org/grpc")];

  test("only modules the binary contains are listed, replaced modules with the version that was built", () => {
    const path = buildGoFixture("gobin-sample", { goVersion: "1.23.12" });
    const r = inspectExecutable(path, { instrumentations: registry });
    expect(r.modules).toEqual({ std: "1.23.12", "github.com/go-chi/chi/v5": "v5.0.11" });
    expect(r.instrumentations).toEqual([
      { name: "net/http server", status: "ready", reason: "would probe 1.23.12", offsetsSource: "dwarf" },
      { name: "chi routes", status: "ready", reason: "would probe 1.23.12", offsetsSource: "dwarf" },
    ]);
    expect(formatReport(r)).toContain("  ready   chi routes: would probe 1.23.12 (offsets: dwarf)");
    // an instrumentation registered for a module takes it off the list of those gotel does not instrument
    expect(r.notInstrumented).toEqual([]);
    expect(inspectExecutable(path, { instrumentations: registry.filter((i) => i.name !== "chi routes") }).notInstrumented.map((m) => m.module))
      .toEqual(["github.com/go-chi/chi/v5"]);
  });
});

describe("gotel inspect (compiled binary)", () => {
  const sample = () => buildGoFixture("gobin-sample", { goVersion: "1.27.4", stripped: true, pie: true });

  test("--json prints one object with the stable field names", () => {
    const r = runCommand([GOTEL, "inspect", "--json", sample()]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(j).sort()).toEqual(["arch", "cgo", "dwarf", "goVersion", "instrumentations", "mainModule", "modules", "notInstrumented", "path", "pie", "stripped"]);
    expect(j).toMatchObject({ goVersion: "go1.27.4", arch: "amd64", stripped: true, pie: true, cgo: false });
  });

  test("text output", () => {
    const r = runCommand([GOTEL, "inspect", sample()]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")).toEqual([
      sample(),
      "  Go            go1.27.4 (amd64)",
      "  main module   gotel.test/gobinsample",
      "  stripped      yes: functions from .gopclntab",
      "  DWARF         no: struct offsets from gotel's table",
      "  PIE           yes",
      "  cgo           no",
      "  instrumentable modules:",
      "    std 1.27.4",
      "    github.com/go-chi/chi/v5 v5.0.11",
      expect.stringMatching(/^  ready   net\/http server: net\/http\.serverHandler\.ServeHTTP: entry \(emulated\); ends at the entries of \(\*response\)\.finishRequest, \(\*conn\)\.serve\.func1 and 2 HTTP\/2 stream closures \(no return probes\); panics at runtime\.gopanic and runtime\.recovery; x\/net's HTTP\/2 streams start at \(\*serverConn\)\.runHandler \(offsets: table\)$/),
      "  skipped net/http client: net/http.(*Transport).roundTrip is not in the binary (it sends no HTTP requests)",
      "  ready   chi routes: github.com/go-chi/chi/v5.(*node).FindRoute entry (emulated): http.route for the server spans of its requests (offsets: table)",
      "  skipped database/sql: database/sql.(*DB).queryDC is not in the binary (it uses neither database/sql nor pgx)",
      "",
    ]);
  });

  test("--pid reads /proc/N/exe, and needs no root", () => {
    const exe = buildGoFixture("uprobe-target");
    const p = Bun.spawn([exe], { stdin: "pipe", stdout: "ignore" });
    try {
      const asRoot = process.getuid?.() === 0;
      const cmd = [GOTEL, "inspect", "--json", "--pid", String(p.pid)];
      const r = runCommand(asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...cmd] : cmd);
      // an unprivileged user may not read another user's /proc/N/exe: that is the one-line error below
      if (asRoot) {
        expect(r.code).toBe(1);
        expect(expectOneLineError(r)).toBe(`gotel: cannot read /proc/${p.pid}/exe: permission denied; run gotel as root or as the process's user`);
        const own = runCommand(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", GOTEL, "inspect", "--json", exe]);
        expect(own.code).toBe(0);
        expect((JSON.parse(own.stdout) as { path: string }).path).toBe(exe);
      }
      const root = runCommand(cmd);
      expect(root.code).toBe(0);
      expect((JSON.parse(root.stdout) as { path: string }).path).toBe(exe);
    } finally {
      p.kill();
    }
  });

  const dir = mkdtempSync(join(tmpdir(), "gotel-inspect-"));
  const truncated = join(dir, "truncated");
  writeFileSync(truncated, readFileSync(buildGoFixture("uprobe-target")).subarray(0, 100_000));
  /** a copy of exe with bytes changed by edit(bytes, elf) */
  const mangled = (name: string, exe: string, edit: (b: Buffer, elf: ElfFile) => void): string => {
    const b = Buffer.from(readFileSync(exe));
    edit(b, ElfFile.parse(new Uint8Array(b), exe));
    writeFileSync(join(dir, name), b);
    return join(dir, name);
  };
  const plain = buildGoFixture("uprobe-target");
  const stripped = buildGoFixture("http-server", { goVersion: "1.27.4", stripped: true });
  const pclntab = (elf: ElfFile) => elf.section(".gopclntab")!.offset;
  const noBuildInfo = mangled("no-buildinfo", plain, (b) => { b[b.indexOf("\xff Go buildinf:", 0, "latin1") + 3]! ^= 0xff; });
  const shoffOut = mangled("shoff-out", plain, (b) => b.writeBigUInt64LE(BigInt(b.length * 4), 0x28));
  const badMagic = mangled("pclntab-magic", stripped, (b, elf) => { b[pclntab(elf)]! ^= 0xff; });
  const badTables = mangled("pclntab-tables", stripped, (b, elf) => {
    for (let i = pclntab(elf) + 64; i < pclntab(elf) + 4096; i += 7) b[i]! ^= 0x5a;
  });
  const bad: [string, string[], RegExp][] = [
    ["a missing path", ["/nonexistent/app"], /^gotel: \/nonexistent\/app: no such file$/],
    ["a directory", ["/tmp"], /^gotel: \/tmp: is a directory, not an executable$/],
    ["a non-ELF file", [join(ROOT, "package.json")], /^gotel: .*package\.json: not an ELF file; pass an executable built for Linux$/],
    ["a non-Go ELF", ["/bin/true"], /^gotel: \/bin\/true: not a Go executable/],
    ["a truncated Go binary", [truncated], /^gotel: .*truncated: .*(truncated|corrupt|outside the file)/],
    ["a Go binary whose build info is mangled", [noBuildInfo], /^gotel: .*no-buildinfo: not a Go executable \(no Go build info\)/],
    ["section headers pointing past the end", [shoffOut], /^gotel: .*shoff-out: section header table lies outside the file \(truncated or corrupt\)$/],
    ["a stripped binary whose .gopclntab magic is flipped", [badMagic], /^gotel: .*pclntab-magic: \.gopclntab: unknown magic 0x[0-9a-f]+$/],
    ["a stripped binary whose .gopclntab tables are scribbled over", [badTables], /^gotel: .*pclntab-tables: \.gopclntab: /],
    ["a pid that does not exist", ["--pid", "99999999"], /^gotel: process 99999999 does not exist; check the pid \(it may have exited\)$/],
  ];
  for (const [what, args, line] of bad) {
    test(`${what}: one line, exit 1`, () => {
      const r = runCommand([GOTEL, "inspect", ...args]);
      expect(r.code).toBe(1);
      expect(expectOneLineError(r)).toMatch(line);
    });
  }

  const usage: [string, string[], string][] = [
    ["--field without a type", ["--field", "badformat", sample()], "gotel: --field needs the form pkg.Type.field (e.g. net/http.Request.Method), got 'badformat'; see `gotel help`"],
    ["--field without a package", ["--field", "Request.Method", sample()], "gotel: --field needs the form pkg.Type.field (e.g. net/http.Request.Method), got 'Request.Method'; see `gotel help`"],
    ["--field ending in a dot", ["--field", "net/http.Request.", sample()], "gotel: --field needs the form pkg.Type.field (e.g. net/http.Request.Method), got 'net/http.Request.'; see `gotel help`"],
    ["a bad --field after a good one", ["--field", "net/http.Request.Method", "--field", "x", sample()], "gotel: --field needs the form pkg.Type.field (e.g. net/http.Request.Method), got 'x'; see `gotel help`"],
    ["an empty --function", ["--function", "", sample()], "gotel: --function needs a function name, e.g. net/http.serverHandler.ServeHTTP; see `gotel help`"],
    ["a blank --function", ["--function", "  ", sample()], "gotel: --function needs a function name, e.g. net/http.serverHandler.ServeHTTP; see `gotel help`"],
    ["--json twice", ["--json", "--json", sample()], "gotel: --json is given more than once; see `gotel help`"],
    ["--timings twice", ["--timings", sample(), "--timings"], "gotel: --timings is given more than once; see `gotel help`"],
    ["--pid twice", ["--pid", "1", "--pid=2"], "gotel: --pid is given more than once; see `gotel help`"],
    ["two executables", [sample(), sample()], "gotel: inspect takes one executable; see `gotel help`"],
    ["a path and --pid", ["--pid", "1", sample()], "gotel: give either a path or --pid, not both; see `gotel help`"],
    ["a pid that is not a number", ["--pid", "abc"], "gotel: --pid needs a process id, got 'abc'; see `gotel help`"],
  ];
  test.each(usage)("%s: one line, exit 2", (_what, args, line) => {
    const r = runCommand([GOTEL, "inspect", ...args]);
    expect(expectOneLineError(r)).toBe(line);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
  });

  test("--function and --field may be repeated", () => {
    const r = runCommand([GOTEL, "inspect", "--json", "--function", "main.main", "--function", "runtime.main", "--field", "net/http.Request.Method", "--field", "net/url.URL.Path", sample()]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { functions: { name: string }[]; fields: unknown };
    expect(j.functions.map((f) => f.name)).toEqual(["main.main", "runtime.main"]);
    expect(j.fields).toBeNull(); // stripped: no DWARF
  });

  test("usage mistakes exit 2", () => {
    expect(runCommand([GOTEL, "inspect"]).code).toBe(2);
    expect(expectOneLineError(runCommand([GOTEL, "inspect"]))).toBe("gotel: inspect needs the path of a Go executable, or --pid N; see `gotel help`");
    expect(runCommand([GOTEL, "inspect", "--pid", "abc"]).code).toBe(2);
  });
});

describe("libraries gotel does not instrument (yet)", () => {
  const REDIS = { module: "github.com/redis/go-redis/v9", version: "v9.7.0", note: "not instrumented yet (its commands make no spans)" };

  test.each([
    // kafka-go is instrumented (its producer and consumer): not listed
    ["redis-kafka", false, [REDIS]],
    ["redis-kafka", true, [REDIS]],
  ] as const)("%s (stripped: %p): named in notInstrumented, and nothing gotel instruments applies", (fixture, stripped, expected) => {
    const r = inspectExecutable(buildGoFixture(fixture, { stripped }));
    expect(r.notInstrumented).toEqual([...expected]);
    expect(r.modules).toEqual({ std: expect.any(String), "github.com/segmentio/kafka-go": "v0.4.47" });
    // the fixture sets up a Writer but never writes: WriteMessages is not linked in
    expect(r.instrumentations.map((i) => [i.name, i.status])).toEqual([
      ["net/http server", "skipped"], ["net/http client", "skipped"], ["database/sql", "skipped"], ["kafka-go producer", "skipped"], ["kafka-go consumer", "skipped"],
    ]);
  }, 300_000);

  test("gotel inspect of the go-redis and kafka-go program: text", () => {
    const r = runCommand([GOTEL, "inspect", buildGoFixture("redis-kafka")]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const at = lines.indexOf("  modules gotel does not instrument:");
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at - 3, at)).toEqual(["  instrumentable modules:", expect.stringMatching(/^    std /), "    github.com/segmentio/kafka-go v0.4.47"]);
    expect(lines.slice(at + 1, at + 2)).toEqual([
      "    github.com/redis/go-redis/v9 v9.7.0: not instrumented yet (its commands make no spans)",
    ]);
    expect(lines[at + 2]).toStartWith("  skipped net/http server: ");
  }, 300_000);

  test.each([false, true])("a gRPC-only server (stripped: %p): gRPC is instrumented, nothing is listed as not instrumented", (stripped) => {
    const r = inspectExecutable(buildGoFixture("grpc-server", { stripped }));
    expect(r.notInstrumented).toEqual([]);
    expect(r.modules).toEqual({ std: expect.any(String), "google.golang.org/grpc": "v1.77.0" });
    expect(r.instrumentations.map((i) => [i.name, i.status])).toEqual([
      ["net/http server", "skipped"], ["net/http client", "skipped"], ["database/sql", "skipped"], ["gRPC server", "ready"], ["gRPC client", "ready"],
    ]);
    const server = r.instrumentations.find((i) => i.name === "gRPC server")!;
    expect(server.offsetsSource).toBe(stripped ? "table" : "dwarf");
    // stripped, x/net's frame offsets come from the table, which has x/net's releases only: this fixture's x/net
    // is a pseudo-version, so its incoming traceparent is not read
    expect(server.reason).toBe("google.golang.org/grpc.(*Server).handleStream: entry (emulated); ends at 2 writeStatus entries (no return probes); " +
      (stripped ? "no incoming traceparent (operateHeaders or x/net's frame offsets not found)" : "incoming traceparent from the HEADERS frame at (*http2Server).operateHeaders"));
  }, 300_000);

  test("gotel inspect --json of go-redis and kafka-go: notInstrumented, and kafka-go among the modules gotel instruments", () => {
    const r = runCommand([GOTEL, "inspect", "--json", buildGoFixture("redis-kafka", { stripped: true })]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j.notInstrumented).toEqual([REDIS]);
    expect(Object.keys(j.modules as object)).toEqual(["std", "github.com/segmentio/kafka-go"]);
  }, 300_000);

  test("a router on net/http whose routes are not read: traced by the server instrumentation — unless that instrumentation is skipped", () => {
    const exe = GoExecutable.open(buildGoFixture("http-gin"));
    const gin = { module: "github.com/gin-gonic/gin", version: "v1.10.1" };
    // gin's routes are read: not listed; as gotel was before it read them (a router it does not know yet):
    expect(notInstrumented(exe)).toEqual([]);
    const withoutGinRoutes = INSTRUMENTATIONS.filter((i) => i.module !== gin.module);
    expect(notInstrumented(exe, withoutGinRoutes)).toEqual([{ ...gin, note: ROUTES_NOTE }]);
    expect(notInstrumented(exe, withoutGinRoutes, () => false)).toEqual([{
      ...gin, note: "not instrumented; its requests go through net/http, whose server instrumentation does not apply to this binary (see its skip reason)",
    }]);
  }, 300_000);

  test("a program with none of those libraries lists none", () => {
    expect(inspectExecutable(buildGoFixture("http-server")).notInstrumented).toEqual([]);
  }, 300_000);
});

describe("a library under its former name (github.com/Shopify/sarama, IBM/sarama's before v1.40)", () => {
  test.each([false, true])("stripped: %p: both Sarama instrumentations ready, the module listed, nothing named not instrumented", (stripped) => {
    const r = inspectExecutable(buildGoFixture("sarama", { goVersion: "1.22.12", modfile: "go.shopify.mod", stripped }));
    expect(r.notInstrumented).toEqual([]);
    expect(r.modules["github.com/Shopify/sarama"]).toBe("v1.38.1");
    const sarama = r.instrumentations.filter((i) => i.name.startsWith("Sarama"));
    expect(sarama.map((i) => [i.name, i.status, i.offsetsSource])).toEqual([
      ["Sarama producer", "ready", stripped ? "table" : "dwarf"], ["Sarama consumer", "ready", stripped ? "table" : "dwarf"],
    ]);
    expect(sarama[0]!.reason).toContain("github.com/Shopify/sarama.(*syncProducer).SendMessage: entry");
  }, 300_000);
});
