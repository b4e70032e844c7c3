/**
 * Writes src/instrumentations/otel-api/closure-lines.json: for every release of go.opentelemetry.io/otel/trace
 * before v1.33.0 that the Go module proxy lists, the line of trace/config.go where the closure of each With...
 * option the global tracer's legacy path reads begins (`return spanOptionFunc(func(...`), and the next. Go 1.19 and 1.20 name
 * a closure of an inlined function after its caller alone (`main.handler.func2.1`); its file and first line in
 * the pclntab, with this table, say which With... it came from (legacy-plan.ts). Facts about the released
 * source, read from the module cache:
 *
 *   bun scripts/otel-api/closure-lines.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const OUT = join(ROOT, "src/instrumentations/otel-api/closure-lines.json");
const MODULE = "go.opentelemetry.io/otel/trace";
/** option -> its With... function in config.go */
const OPTIONS = { links: "WithLinks", newRoot: "WithNewRoot", kind: "WithSpanKind", version: "WithInstrumentationVersion", schema: "WithSchemaURL" } as const;

function go(args: string[]): string {
  const r = Bun.spawnSync(["go", ...args], { env: { ...process.env, GOFLAGS: "-mod=mod" }, cwd: "/tmp" });
  if (r.exitCode !== 0) throw new Error(`go ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

const below133 = (v: string): boolean => {
  const m = /^v1\.(\d+)\.(\d+)$/.exec(v);
  return m !== null && Number(m[1]) < 33;
};

const versions = go(["list", "-m", "-versions", MODULE]).trim().split(" ").slice(1).filter(below133);
const table: Record<string, Record<string, number>> = {};
for (const version of versions) {
  const dir = (JSON.parse(go(["mod", "download", "-json", `${MODULE}@${version}`])) as { Dir: string }).Dir;
  const lines = readFileSync(join(dir, "config.go"), "utf8").split("\n");
  const row: Record<string, number> = {};
  for (const [option, fn] of Object.entries(OPTIONS)) {
    const at = lines.findIndex((l) => l.startsWith(`func ${fn}(`));
    if (at < 0) continue;
    const literal = lines.findIndex((l, i) => i > at && /\bfunc\(/.test(l));
    if (literal < 0) throw new Error(`${MODULE}@${version}: no closure after ${fn}`);
    // the pclntab's line at a closure's entry is its literal's, or, for a closure without a frame (WithNewRoot's
    // captures nothing), its body's first line: the next
    row[literal + 1] = row[literal + 2] = Object.keys(OPTIONS).indexOf(option);
  }
  table[version] = row;
  console.log(`${version}: ${JSON.stringify(row)}`);
}
// one release a line
const rows = Object.entries(table).map(([v, row]) => `  ${JSON.stringify(v)}: ${JSON.stringify(row)}`);
writeFileSync(OUT, `{\n "options": ${JSON.stringify(Object.keys(OPTIONS))},\n "lines": {\n${rows.join(",\n")}\n }\n}\n`);
console.log(`wrote ${OUT}: ${versions.length} releases`);
