/**
 * Generates src/offsets/table.json: the offset of every struct field a gotel probe reads, for every released
 * version, per architecture (format: src/offsets/table.ts).
 *
 * For each (module, version) it writes a tiny program under a temp dir that uses the fields' packages, builds it
 * for amd64 and arm64 (GOARCH cross-build, CGO_ENABLED=0) with that version's own toolchain fetched through the
 * Go module proxy (GOTOOLCHAIN=go1.x.y), reads the offsets from the DWARF with our reader (src/gobin/dwarf.ts) and
 * records them, absence included. Incremental: a version already in the table with every field is skipped.
 * Resumable: the table is written after every version. Two versions build at a time (2 cores).
 *
 *   bun scripts/offsets/generate.ts [--versions 1.22.12,1.27.4] [--newest-per-minor] [--limit N]
 *                                   [--module std] [--keep-toolchains] [--dry-run]
 *
 * Modules: the standard library ("std", versions = Go releases >= 1.19 on the proxy), and the third-party modules
 * whose fields a probe reads (the programs their instrumentations declare, src/offsets/fields-program.ts): their versions
 * from `go list -m -versions`, a program that requires the module at the version, built with the local
 * toolchain and one shared build cache. The table is keyed by module path + version.
 */
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { readStructFieldOffsets } from "../../src/gobin/dwarf.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { fieldsOf, fieldsPrograms } from "../../src/instrumentations/index.ts";
import type { FieldsProgram } from "../../src/offsets/fields-program.ts";
import {
  ARCHES, STD, canonicalVersion, compactArch, compareVersions, expandArch, minorSeries, serializeTable, validateTable,
  type Arch, type Expanded, type OffsetsTable,
} from "../../src/offsets/table.ts";

const ROOT = resolve(import.meta.dir, "../..");
const TABLE_PATH = join(ROOT, "src/offsets/table.json");
const WORKERS = 2;

interface Target {
  module: string;
  /** every field of this module any probe reads */
  fields: readonly string[];
  /** released versions, canonical, ascending, with what to build each with */
  versions(): { version: string; toolchain: string }[];
  /** files of the program that makes the fields' types appear in DWARF */
  program(version: string): Record<string, string>;
  /** one build cache for every version (one toolchain builds them all); else a fresh one per version */
  sharedBuildCache?: boolean;
}

function run(args: string[], env: Record<string, string | undefined>, cwd?: string): { ok: boolean; out: string } {
  const r = Bun.spawnSync(args, { cwd, env, stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: r.stdout.toString() + r.stderr.toString() };
}

/** The Go standard library: every stable release >= 1.19 the module proxy has a linux-amd64 toolchain for. */
const stdTarget: Target = {
  module: STD,
  fields: fieldsOf(STD),
  versions() {
    const r = run(["go", "list", "-m", "-versions", "golang.org/toolchain"], { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "" }, tmpdir());
    if (!r.ok) throw new Error(`cannot list Go toolchains: ${r.out}`);
    const out: { version: string; toolchain: string }[] = [];
    for (const v of r.out.trim().split(/\s+/)) {
      const m = /^v0\.0\.1-go(\d+\.\d+(?:\.\d+)?)\.linux-amd64$/.exec(v); // stable only: no rc/beta
      if (!m) continue;
      const version = canonicalVersion(STD, m[1]!);
      if (compareVersions(version, "1.19.0") < 0) continue;
      out.push({ version, toolchain: `go${m[1]}` });
    }
    return out.sort((a, b) => compareVersions(a.version, b.version));
  },
  program() {
    return {
      "go.mod": "module gotel.offsets/probe\n\ngo 1.19\n",
      // net/http's server (Request, response, ServeMux patterns) and client (Transport, Response, bufio), net/url,
      // database/sql,
      // and a map so the runtime's map types (hmap, or the Swiss-table internal/runtime/maps types) are in the DWARF
      "main.go": `package main

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"os"
)

var sink []any

func main() {
	m := map[string][]string{os.Args[0]: {"x"}}
	u, _ := url.Parse(os.Args[0])
	sink = append(sink, m, u, http.Header(m))
	if len(os.Args) > 99 {
		http.HandleFunc("/x/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
		_ = http.ListenAndServe(os.Args[1], nil)
		r, _ := http.Get(os.Args[2])
		sink = append(sink, r)
		// database/sql: DB (its connector, dsnConnector from sql.Open), Tx and Stmt
		db, _ := sql.Open(os.Args[3], os.Args[4])
		tx, _ := db.BeginTx(context.Background(), nil)
		st, _ := tx.Prepare(os.Args[5])
		rows, _ := st.Query()
		_ = tx.Commit()
		sink = append(sink, rows)
	}
}
`,
    };
  },
};

/** The local go's version ("go1.26.8"): third-party modules are built with it (their fields do not depend on Go's). */
function localToolchain(): string {
  const r = run(["go", "env", "GOVERSION"], { ...process.env, GOTOOLCHAIN: "local" }, tmpdir());
  if (!r.ok) throw new Error(`go env GOVERSION failed: ${r.out}`);
  return r.out.trim();
}

/**
 * A third-party module: every stable version from `min` on the module proxy lists, built with the local
 * toolchain in a program that requires it at that version (go.mod/go.sum filled in by -mod=mod) and makes
 * the fields' types reachable. A version that does not build is reported and left out (never assumed).
 */
function moduleTarget({ module, since: min, imports, body }: FieldsProgram, fields: string[]): Target {
  return {
    module,
    fields,
    sharedBuildCache: true,
    versions() {
      const r = run(["go", "list", "-m", "-versions", module], { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" }, tmpdir());
      if (!r.ok) throw new Error(`cannot list ${module}'s versions: ${r.out}`);
      const toolchain = localToolchain();
      return r.out.trim().split(/\s+/).slice(1)
        .filter((v) => /^v\d+\.\d+\.\d+$/.test(v) && compareVersions(v, min) >= 0)
        .map((version) => ({ version, toolchain }))
        .sort((a, b) => compareVersions(a.version, b.version));
    },
    program(version) {
      return {
        "go.mod": `module gotel.offsets/probe\n\ngo 1.21\n\nrequire ${module} ${version}\n`,
        "main.go": `package main\n\nimport (\n\t"os"\n${imports.map((i) => `\t${i}\n`).join("")})\n\nvar sink []any\n\nfunc main() {\n\tif len(os.Args) > 99 {\n${body}\n\t}\n}\n`,
      };
    },
  };
}

// the third-party modules: each instrumentation declares its programs in its folder (fields-program.ts)
const TARGETS: Target[] = [
  stdTarget,
  ...fieldsPrograms().map((p) => moduleTarget(p, fieldsOf(p.module))),
  // Not here, so their error codes come from DWARF only: mattn/go-sqlite3 (its Error type exists only in cgo
  // builds, and the generator builds arm64 by cross-compiling without cgo) and modernc.org/sqlite (hundreds of
  // versions of a very large package).
];

// ---------------------------------------------------------------------------------------------------------

interface Options {
  versions?: string[];
  newestPerMinor: boolean;
  limit?: number;
  module?: string;
  keepToolchains: boolean;
  dryRun: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { newestPerMinor: false, keepToolchains: false, dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--newest-per-minor") o.newestPerMinor = true;
    else if (a === "--keep-toolchains") o.keepToolchains = true;
    else if (a === "--dry-run") o.dryRun = true;
    else if (a.startsWith("--versions")) o.versions = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (a.startsWith("--limit")) {
      o.limit = Number(value());
      if (!Number.isInteger(o.limit) || o.limit < 1) throw new Error("--limit takes a positive integer");
    } else if (a.startsWith("--module")) o.module = value();
    else throw new Error(`unknown option ${a} (see the comment at the top of scripts/offsets/generate.ts)`);
  }
  return o;
}

function loadTable(): OffsetsTable {
  if (!existsSync(TABLE_PATH)) return { format: 1, modules: {} };
  return validateTable(JSON.parse(readFileSync(TABLE_PATH, "utf8")));
}

/** module -> arch -> version -> field -> value: what is known, as the generator works on it */
const state = new Map<string, Map<Arch, Expanded>>();

function expanded(module: string, arch: Arch): Expanded {
  let m = state.get(module);
  if (!m) state.set(module, (m = new Map()));
  let e = m.get(arch);
  if (!e) m.set(arch, (e = new Map()));
  return e;
}

function writeTable(): number {
  const t: OffsetsTable = { format: 1, modules: {} };
  for (const target of TARGETS) {
    for (const arch of ARCHES) {
      const e = state.get(target.module)?.get(arch);
      if (!e || e.size === 0) continue;
      // a field no version has yet (a probe just started reading it) is left out until its versions are rebuilt,
      // rather than dropping every version that lacks it
      const known = target.fields.filter((f) => [...e.values()].some((m) => m.has(f)));
      (t.modules[target.module] ??= {})[arch] = compactArch(e, known);
    }
  }
  // modules the generator no longer has targets for are kept as they were
  for (const [mod, arches] of state) {
    if (TARGETS.some((x) => x.module === mod)) continue;
    for (const [arch, e] of arches) (t.modules[mod] ??= {})[arch] = compactArch(e, []);
  }
  const text = serializeTable(validateTable(t));
  const tmp = `${TABLE_PATH}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, TABLE_PATH);
  return text.length;
}

function isDone(target: Target, version: string): boolean {
  return ARCHES.every((arch) => {
    const fields = state.get(target.module)?.get(arch)?.get(version);
    return fields !== undefined && target.fields.every((f) => fields.has(f));
  });
}

function modcacheHas(toolchain: string): boolean {
  const r = run(["go", "env", "GOMODCACHE"], { ...process.env, GOTOOLCHAIN: "local" });
  return existsSync(join(r.out.trim(), "golang.org", `toolchain@v0.0.1-${toolchain}.linux-amd64`));
}

function rmTree(dir: string): void {
  // the module cache is read-only; make it writable before removing it
  const walk = (d: string): void => {
    chmodSync(d, 0o755);
    for (const f of readdirSync(d, { withFileTypes: true })) if (f.isDirectory()) walk(join(d, f.name));
  };
  try {
    walk(dir);
  } catch {
    /* best effort */
  }
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

interface BuildResult {
  values: Map<Arch, Map<string, number | null>>;
  timings: string;
}

async function spawnAsync(args: string[], env: Record<string, string | undefined>, cwd: string): Promise<{ ok: boolean; out: string }> {
  const p = Bun.spawn(args, { cwd, env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { ok: code === 0, out: out + err };
}

async function buildOne(target: Target, version: string, toolchain: string, keepToolchains: boolean): Promise<BuildResult> {
  const dir = mkdtempSync(join(tmpdir(), `gotel-offsets-${version}-`));
  const useShared = keepToolchains || modcacheHas(toolchain);
  try {
    for (const [name, text] of Object.entries(target.program(version))) writeFileSync(join(dir, name), text);
    const env: Record<string, string | undefined> = {
      ...process.env,
      GOTOOLCHAIN: toolchain,
      CGO_ENABLED: "0",
      GOFLAGS: "-mod=mod",
      GO111MODULE: "on",
      GOWORK: "off",
      // a fresh build cache per version: each toolchain compiles the std library anew anyway
      GOCACHE: target.sharedBuildCache ? join(ROOT, "build/offsets-gocache") : join(dir, "gocache"),
      ...(useShared ? {} : { GOMODCACHE: join(dir, "gomodcache") }),
    };
    const timings: string[] = [];
    let t = performance.now();
    // fetch the toolchain first, so its download time is visible apart from the builds
    const fetch = await spawnAsync(["go", "version"], env, dir);
    if (!fetch.ok) throw new Error(`cannot get toolchain ${toolchain}: ${fetch.out.trim()}`);
    const reported = /go version (go\S+)/.exec(fetch.out)?.[1];
    if (reported !== toolchain) throw new Error(`asked for ${toolchain}, got ${reported ?? fetch.out.trim()}`);
    timings.push(`${useShared ? "toolchain cached" : "download"} ${fmt(performance.now() - t)}`);
    const values = new Map<Arch, Map<string, number | null>>();
    for (const arch of ARCHES) {
      t = performance.now();
      const exe = join(dir, `probe-${arch}`);
      const b = await spawnAsync(["go", "build", "-o", exe, "."], { ...env, GOARCH: arch }, dir);
      if (!b.ok) throw new Error(`go build (${toolchain}, ${arch}) failed: ${b.out.trim()}`);
      const elf = ElfFile.parse(new Uint8Array(readFileSync(exe)), exe);
      if (elf.arch !== arch) throw new Error(`built ${elf.arch} for ${arch}`);
      const found = readStructFieldOffsets(elf, target.fields);
      const v = new Map<string, number | null>();
      for (const f of target.fields) {
        const o = found.get(f)!;
        v.set(f, "offset" in o ? o.offset : null);
      }
      values.set(arch, v);
      timings.push(`${arch} ${fmt(performance.now() - t)} (${(statSync(exe).size / 1e6).toFixed(1)} MB)`);
    }
    return { values, timings: timings.join(", ") };
  } finally {
    rmTree(dir);
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const table = loadTable();
  for (const [mod, mt] of Object.entries(table.modules)) {
    for (const arch of ARCHES) if (mt[arch]) state.set(mod, (state.get(mod) ?? new Map()).set(arch, expandArch(mt[arch]!)));
  }
  const targets = TARGETS.filter((t) => !opts.module || t.module === opts.module);
  if (targets.length === 0) throw new Error(`no target for module ${opts.module}`);

  interface Job {
    target: Target;
    version: string;
    toolchain: string;
  }
  const jobs: Job[] = [];
  for (const target of targets) {
    let vs = target.versions();
    const available = vs.length;
    if (opts.versions) {
      const want = opts.versions.map((v) => canonicalVersion(target.module, v));
      const missing = want.filter((w) => !vs.some((x) => x.version === w));
      if (missing.length) console.warn(`${target.module}: not on the proxy: ${missing.join(", ")}`);
      vs = vs.filter((x) => want.includes(x.version));
    }
    if (opts.newestPerMinor) {
      const newest = new Map<string, (typeof vs)[number]>();
      for (const x of vs) newest.set(minorSeries(x.version), x); // ascending: the last one wins
      vs = [...newest.values()];
    }
    const todo = vs.filter((x) => !isDone(target, x.version));
    console.log(`${target.module}: ${available} versions on the proxy, ${vs.length} selected, ${vs.length - todo.length} already in the table, ${todo.length} to build`);
    // newest first: when a run is cut short, the releases users are most likely to run are in
    for (const x of todo.reverse()) jobs.push({ target, ...x });
  }
  if (opts.limit !== undefined) jobs.splice(opts.limit);
  if (opts.dryRun) {
    console.log(jobs.map((j) => `${j.target.module}@${j.version}`).join(" ") || "(nothing to build)");
    return;
  }

  let done = 0;
  let failed = 0;
  let size = 0;
  const total = jobs.length;
  const perVersion: number[] = [];
  const queue = [...jobs];
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const t = performance.now();
      try {
        const r = await buildOne(job.target, job.version, job.toolchain, opts.keepToolchains);
        for (const [arch, values] of r.values) {
          const e = expanded(job.target.module, arch);
          const known = e.get(job.version) ?? new Map();
          for (const [f, v] of values) known.set(f, v);
          e.set(job.version, known);
        }
        size = writeTable();
        const ms = performance.now() - t;
        perVersion.push(ms);
        done++;
        console.log(`[${done + failed}/${total}] ${job.target.module} ${job.version}: ${fmt(ms)} (${r.timings})`);
      } catch (e) {
        failed++;
        console.error(`[${done + failed}/${total}] ${job.target.module} ${job.version}: FAILED after ${fmt(performance.now() - t)}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));

  if (size === 0) size = existsSync(TABLE_PATH) ? statSync(TABLE_PATH).size : 0;
  const text = existsSync(TABLE_PATH) ? readFileSync(TABLE_PATH) : Buffer.alloc(0);
  const final = validateTable(JSON.parse(text.toString() || '{"format":1,"modules":{}}'));
  const summary = Object.entries(final.modules)
    .map(([mod, mt]) => `${mod}: ${ARCHES.filter((a) => mt[a]).map((a) => `${a} ${mt[a]!.versions.length} versions`).join(", ")}`)
    .join("; ");
  const avg = perVersion.length ? perVersion.reduce((a, b) => a + b, 0) / perVersion.length : 0;
  console.log(
    `done in ${fmt(performance.now() - t0)}: ${done} built${failed ? `, ${failed} FAILED` : ""}` +
      (done ? ` (${fmt(avg)} per version on average, ${WORKERS} at a time)` : "") +
      `; table ${(text.length / 1024).toFixed(1)} KB (${(gzipSync(text).length / 1024).toFixed(1)} KB gzipped): ${summary || "empty"}`,
  );
  if (failed) process.exitCode = 1;
}

await main();
