import { readlinkSync } from "node:fs";
import { parseArgs } from "node:util";
import { GoExecutable } from "../gobin/analyze.ts";
import { FieldNameError, splitFieldName } from "../gobin/dwarf.ts";
import { GotelError } from "../errors.ts";
import { INSTRUMENTATIONS, linksModuleOf, modulesOf, notInstrumented, type Instrumentation, type NotInstrumented, type Readiness } from "../instrumentations/index.ts";
import { parseFlags, UsageError } from "./usage.ts";

/** What `inspect --json` prints; field names are a stable contract. */
export interface InspectReport {
  path: string;
  goVersion: string;
  arch: "amd64" | "arm64";
  stripped: boolean;
  dwarf: boolean;
  pie: boolean;
  cgo: boolean;
  mainModule: string;
  /** the modules gotel can instrument that this binary contains: path -> version */
  modules: Record<string, string>;
  /** the libraries of the binary a user would expect traced that gotel does not instrument (yet), with what that means */
  notInstrumented: NotInstrumented[];
  instrumentations: ({ name: string } & Readiness)[];
  /** --function: probe sites as file offsets (hex) */
  functions?: { name: string; found: boolean; entry?: string; entryEmulated?: boolean; returns?: string[] }[];
  /** --field: struct field offsets from the binary's DWARF (null: absent; the whole map is null without DWARF) */
  fields?: Record<string, number | null> | null;
  timings?: Record<string, number>;
}

export interface InspectRequest {
  instrumentations?: readonly Instrumentation[];
  functions?: readonly string[];
  fields?: readonly string[];
  timings?: boolean;
}

const hex = (n: number) => `0x${n.toString(16)}`;

function executableOfPid(pidText: string): string {
  if (!/^\d+$/.test(pidText)) throw new UsageError(`--pid needs a process id, got '${pidText}'`);
  try {
    return readlinkSync(`/proc/${pidText}/exe`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new GotelError(`process ${pidText} does not exist`, "check the pid (it may have exited)");
    if (code === "EACCES" || code === "EPERM") throw new GotelError(`cannot read /proc/${pidText}/exe: permission denied`, "run gotel as root or as the process's user");
    throw new GotelError(`cannot read /proc/${pidText}/exe: ${(e as Error).message}`);
  }
}

export function inspectExecutable(path: string, req: InspectRequest = {}): InspectReport {
  const instrumentations = req.instrumentations ?? INSTRUMENTATIONS;
  const timings: Record<string, number> = {};
  const timed = <T>(name: string, fn: () => T): T => {
    const t0 = performance.now();
    const r = fn();
    timings[name] = Math.round((performance.now() - t0) * 100) / 100;
    return r;
  };
  const exe = timed("read+buildinfo", () => GoExecutable.open(path));
  const modules: Record<string, string> = {};
  for (const m of instrumentations.flatMap(modulesOf)) {
    const v = exe.moduleVersion(m);
    if (v !== undefined) modules[m] = v;
  }
  const readiness = timed("instrumentations", () =>
    instrumentations.filter((i) => linksModuleOf(exe, i)).map((i) => ({ name: i.name, ...i.readiness(exe) })),
  );
  const report: InspectReport = {
    path,
    goVersion: exe.buildInfo.goVersion,
    arch: exe.arch,
    stripped: exe.stripped,
    dwarf: timed("dwarf-presence", () => exe.hasDwarf),
    pie: exe.pie,
    cgo: timed("functions", () => exe.cgo),
    mainModule: exe.buildInfo.main.path || exe.buildInfo.path,
    modules,
    notInstrumented: notInstrumented(exe, instrumentations, (name) => readiness.some((r) => r.name === name && r.status === "ready")),
    instrumentations: readiness,
  };
  if (req.functions?.length) {
    report.functions = timed("probe-sites", () => req.functions!.map((name) => {
      const sites = exe.probeSites(name);
      return sites
        ? { name, found: true, entry: hex(sites.entry.offset), entryEmulated: sites.entry.emulated, returns: sites.returns.map(hex) }
        : { name, found: false };
    }));
  }
  if (req.fields?.length) {
    report.fields = timed("dwarf-fields", () => {
      const offsets = exe.dwarfFieldOffsets(req.fields!);
      if (!offsets) return null;
      return Object.fromEntries(req.fields!.map((f) => {
        const o = offsets.get(f);
        return [f, o && "offset" in o ? o.offset : null];
      }));
    });
  }
  if (req.timings) report.timings = timings;
  return report;
}

function yesNo(b: boolean): string {
  return b ? "yes" : "no";
}

export function formatReport(r: InspectReport): string {
  const lines = [
    r.path,
    `  Go            ${r.goVersion} (${r.arch})`,
    `  main module   ${r.mainModule}`,
    `  stripped      ${r.stripped ? "yes: functions from .gopclntab" : "no"}`,
    `  DWARF         ${r.dwarf ? "yes: struct offsets from the binary" : "no: struct offsets from gotel's table"}`,
    `  PIE           ${yesNo(r.pie)}`,
    `  cgo           ${yesNo(r.cgo)}`,
  ];
  const mods = Object.entries(r.modules);
  lines.push(mods.length ? "  instrumentable modules:" : "  instrumentable modules: none that this gotel knows");
  for (const [p, v] of mods) lines.push(`    ${p} ${v}`);
  if (r.notInstrumented.length) lines.push("  modules gotel does not instrument:");
  for (const m of r.notInstrumented) lines.push(`    ${m.module} ${m.version}: ${m.note}`);
  for (const i of r.instrumentations) {
    const offsets = i.offsetsSource ? ` (offsets: ${i.offsetsSource}${i.offsetsNote ? `: ${i.offsetsNote}` : ""})` : "";
    lines.push(`  ${i.status === "ready" ? "ready  " : "skipped"} ${i.name}: ${i.reason}${offsets}`);
  }
  for (const f of r.functions ?? []) {
    lines.push(f.found
      ? `  function ${f.name}: entry ${f.entry} (${f.entryEmulated ? "emulated" : "single-stepped"}), returns ${f.returns?.join(" ") || "none"}` +
        (f.returns?.length ? ` (${r.arch === "arm64" ? "simulated" : "single-stepped"})` : "")
      : `  function ${f.name}: not in this binary`);
  }
  if (r.fields === null) lines.push("  fields: no DWARF in this binary");
  for (const [k, v] of Object.entries(r.fields ?? {})) lines.push(`  field ${k}: ${v === null ? "absent" : `offset ${v}`}`);
  return lines.join("\n");
}

const INSPECT_FLAGS = {
  pid: { type: "string" },
  json: { type: "boolean" },
  timings: { type: "boolean" },
  function: { type: "string", multiple: true },
  field: { type: "string", multiple: true },
} as const;

/** A flag that takes one value given twice (`--json --json`, `--pid 1 --pid 2`) is a mistake, not the last one winning. */
function refuseRepeatedFlags(args: string[]): void {
  const multiple = new Set(Object.entries(INSPECT_FLAGS).flatMap(([name, o]) => ("multiple" in o && o.multiple ? [name] : [])));
  const { tokens } = parseArgs({ args, options: INSPECT_FLAGS, strict: false, allowPositionals: true, tokens: true });
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== "option" || multiple.has(t.name)) continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given more than once`);
    seen.add(t.name);
  }
}

/** Every --field as import/path.Type.field and every --function non-empty, before any file is read. */
function checkNames(functions: readonly string[], fields: readonly string[]): void {
  for (const f of functions) if (f.trim() === "") throw new UsageError("--function needs a function name, e.g. net/http.serverHandler.ServeHTTP");
  for (const f of fields) {
    try {
      splitFieldName(f);
    } catch (e) {
      if (e instanceof FieldNameError) throw new UsageError(`--field needs the form pkg.Type.field (e.g. net/http.Request.Method), got '${f}'`);
      throw e;
    }
  }
}

export function inspectCommand(args: string[]): number {
  const { values, positionals } = parseFlags(args, INSPECT_FLAGS, true);
  refuseRepeatedFlags(args);
  checkNames(values.function ?? [], values.field ?? []);
  if (values.pid !== undefined && positionals.length > 0) throw new UsageError("give either a path or --pid, not both");
  const path = values.pid !== undefined ? executableOfPid(values.pid) : positionals[0];
  if (path === undefined) throw new UsageError("inspect needs the path of a Go executable, or --pid N");
  if (positionals.length > 1) throw new UsageError("inspect takes one executable");
  const report = inspectExecutable(path, { functions: values.function, fields: values.field, timings: values.timings === true });
  console.log(values.json ? JSON.stringify(report) : formatReport(report));
  if (report.timings && !values.json) console.error(`timings (ms): ${JSON.stringify(report.timings)}`);
  return 0;
}
