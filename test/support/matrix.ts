/**
 * The Go versions and build modes the Go-binary reader is tested against. The oldest and newest supported Go
 * versions bracket it; 1.24 changed maps (Swiss tables), 1.26 dropped textStart from the pclntab header.
 */
import type { GoBuild } from "./go.ts";

export const GO_VERSIONS = ["1.21.13", "1.23.12", "1.24.13", "1.26.9", "1.27.4"] as const;
export const OLDEST_GO = GO_VERSIONS[0];
export const NEWEST_GO = GO_VERSIONS[GO_VERSIONS.length - 1]!;

export interface Variant extends GoBuild {
  goVersion: string;
}

/** Every version: stripped and not, PIE and not, cgo and not; arm64 (stripped and not) for the oldest and newest. */
export function sampleVariants(): Variant[] {
  const out: Variant[] = [];
  for (const goVersion of GO_VERSIONS) {
    out.push(
      { goVersion },
      { goVersion, stripped: true },
      { goVersion, pie: true },
      { goVersion, pie: true, stripped: true },
      { goVersion, cgo: true },
      { goVersion, cgo: true, stripped: true },
    );
  }
  for (const goVersion of [OLDEST_GO, NEWEST_GO]) {
    out.push({ goVersion, goarch: "arm64" }, { goVersion, goarch: "arm64", stripped: true });
  }
  return out;
}

/** The unstripped build with the same version, arch and mode: where .symtab and DWARF give the truth. */
export function unstrippedTwin(v: Variant): Variant {
  return { ...v, stripped: false };
}
