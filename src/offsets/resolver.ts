/**
 * Where each struct field a probe reads sits in this binary (DESIGN.md decision 6): (1) the binary's own
 * DWARF; (2) gotel's table for the exact module version; (3) the table, when the version lies between two
 * built versions of the same minor series with identical offsets (and we say so); (4) otherwise the probe that
 * needs the field is skipped with a reason naming the field and the version — never a guess.
 */
import type { GoExecutable } from "../gobin/analyze.ts";

/** where a probe's offsets came from; `table-interpolated`: two built neighbours that agree stood in */
export type OffsetsSource = "dwarf" | "table" | "table-interpolated";

/** unknown: why, for the user; fieldNotInTable: the version is in the table, this field is not (added since) */
export type TableAnswer = { offset: number } | { absent: true } | { unknown: string; fieldNotInTable?: true };

/** The bundled table, behind an interface so the resolution rules can be tested on their own. */
export interface TableLookup {
  /** exact version only */
  lookup(module: string, version: string, arch: string, field: string): TableAnswer;
  /** between two built versions of the same minor series with identical answers */
  lookupInterpolated(module: string, version: string, arch: string, field: string): ({ offset: number } | { absent: true }) & { between: [string, string] } | undefined;
}

export interface FieldNeed {
  /** the probe's name for it (a config struct member) */
  key: string;
  /** "import/path.Type.field" */
  field: string;
  /** "std" or a module path */
  module: string;
  /** a field that only some versions have; its absence is fine */
  optional: boolean;
}

export type Resolution =
  | { offsets: Record<string, number | undefined>; source: OffsetsSource; note?: string }
  | { skipped: string };

export function resolveOffsets(exe: GoExecutable, needs: readonly FieldNeed[], table: TableLookup | undefined): Resolution {
  const fromDwarf = exe.dwarfFieldOffsets(needs.map((n) => n.field));
  if (fromDwarf) {
    const offsets: Record<string, number | undefined> = {};
    for (const n of needs) {
      const o = fromDwarf.get(n.field);
      offsets[n.key] = o && "offset" in o ? o.offset : undefined;
      if (offsets[n.key] === undefined && !n.optional) return { skipped: `field ${n.field} was not found in the binary's DWARF` };
    }
    return { offsets, source: "dwarf" };
  }
  if (!table) return { skipped: "the binary has no DWARF (built with -ldflags=-w) and gotel has no offsets table for it yet" };
  const offsets: Record<string, number | undefined> = {};
  let source: OffsetsSource = "table";
  const notes = new Set<string>();
  for (const n of needs) {
    const version = exe.moduleVersion(n.module);
    if (version === undefined && n.optional) {
      offsets[n.key] = undefined;
      continue;
    }
    if (version === undefined) return { skipped: `the binary does not contain ${n.module}` };
    const what = n.module === "std" ? `Go ${version}` : `${n.module} ${version}`;
    let a: TableAnswer = table.lookup(n.module, version, exe.arch, n.field);
    if ("unknown" in a) {
      const near = table.lookupInterpolated(n.module, version, exe.arch, n.field);
      if (!near && n.optional && (n.module !== "std" || a.fieldNotInTable)) {
        // a third-party module the table does not cover, or a field added to a probe after the table was built
        // for this Go release: that optional field only comes from DWARF
        offsets[n.key] = undefined;
        continue;
      }
      if (!near) {
        return { skipped: `no offset for ${n.field} in ${what} (${exe.arch}): ${a.unknown}; the binary has no DWARF to read it from` };
      }
      a = near;
      source = "table-interpolated";
      notes.add(`${what} is not in the table; using ${near.between[0]} and ${near.between[1]}, which agree`);
    }
    if ("absent" in a) {
      if (!n.optional) return { skipped: `${n.field} does not exist in ${what}` };
      offsets[n.key] = undefined;
    } else {
      offsets[n.key] = a.offset;
    }
  }
  return notes.size ? { offsets, source, note: [...notes].join("; ") } : { offsets, source };
}
