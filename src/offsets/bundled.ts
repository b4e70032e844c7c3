/** The bundled table (table.ts) as the resolver's TableLookup, with reasons a user can act on. */
import { builtVersions, lookupOffset, lookupOffsetInterpolated, type Arch } from "./table.ts";
import type { TableAnswer, TableLookup } from "./resolver.ts";

function notBuilt(module: string, version: string, arch: Arch): string {
  const built = builtVersions(module, arch);
  const what = module === "std" ? `Go ${version}` : `${module} ${version}`;
  return built.length
    ? `${what} is not in gotel's offsets table (${arch}: ${built.length} versions from ${built[0]} to ${built.at(-1)})`
    : `gotel's offsets table has nothing for ${module} on ${arch}`;
}

export const bundledTable: TableLookup = {
  lookup(module, version, arch, field): TableAnswer {
    const r = lookupOffset(module, version, arch as Arch, field);
    if (!("unknown" in r)) return r;
    if (r.unknown === "version-not-built") return { unknown: notBuilt(module, version, arch as Arch) };
    return { unknown: `gotel's offsets table has no entry for ${field}`, fieldNotInTable: true };
  },
  lookupInterpolated(module, version, arch, field) {
    const r = lookupOffsetInterpolated(module, version, arch as Arch, field);
    if (!("interpolatedFrom" in r)) return undefined;
    return "offset" in r ? { offset: r.offset, between: r.interpolatedFrom } : { absent: true, between: r.interpolatedFrom };
  },
};
