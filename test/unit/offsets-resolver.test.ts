/** The resolution rules of DESIGN.md decision 6, on real binaries with a fake table. */
import { describe, expect, test } from "bun:test";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { resolveOffsets, type FieldNeed, type TableLookup, type TableAnswer } from "../../src/offsets/resolver.ts";
import { buildGoFixture } from "../support/go.ts";

const NEEDS: FieldNeed[] = [
  { key: "method", field: "net/http.Request.Method", module: "std", optional: false },
  { key: "pattern", field: "net/http.Request.Pattern", module: "std", optional: true },
];

/** Answers for exact versions; interpolation between 1.27.2 and 1.27.6 when they agree. */
function fakeTable(exact: Record<string, Record<string, TableAnswer>>): TableLookup {
  return {
    lookup: (_m, version, _a, field) => exact[version]?.[field] ?? { unknown: `Go ${version} is not in gotel's offsets table` },
    lookupInterpolated: (_m, version, a, field) => {
      if (!/^1\.27\./.test(version)) return undefined;
      const lo = exact["1.27.2"]?.[field];
      const hi = exact["1.27.6"]?.[field];
      return lo && hi && JSON.stringify(lo) === JSON.stringify(hi) && !("unknown" in lo) ? { ...lo, between: ["1.27.2", "1.27.6"] as [string, string] } : void a;
    },
  };
}

const stripped = () => GoExecutable.open(buildGoFixture("gobin-sample", { goVersion: "1.27.4", stripped: true }));
const unstripped = () => GoExecutable.open(buildGoFixture("gobin-sample", { goVersion: "1.27.4" }));

describe("offsets resolution", () => {
  test("the binary's own DWARF comes first, whatever the table says", () => {
    const r = resolveOffsets(unstripped(), NEEDS, fakeTable({ "1.27.4": { "net/http.Request.Method": { offset: 999 } } }));
    expect(r).toEqual({ offsets: { method: 0, pattern: expect.any(Number) }, source: "dwarf" });
  });

  test("stripped: the exact version from the table; an absent optional field is fine", () => {
    const r = resolveOffsets(stripped(), NEEDS, fakeTable({ "1.27.4": { "net/http.Request.Method": { offset: 0 }, "net/http.Request.Pattern": { absent: true } } }));
    expect(r).toEqual({ offsets: { method: 0, pattern: undefined }, source: "table" });
  });

  test("stripped, version not built but between two agreeing versions of its minor series: interpolated, and said so", () => {
    const agree = { "net/http.Request.Method": { offset: 0 }, "net/http.Request.Pattern": { offset: 200 } };
    const r = resolveOffsets(stripped(), NEEDS, fakeTable({ "1.27.2": agree, "1.27.6": agree }));
    expect(r).toEqual({
      offsets: { method: 0, pattern: 200 }, source: "table-interpolated",
      note: "Go 1.27.4 is not in the table; using 1.27.2 and 1.27.6, which agree",
    });
  });

  test("stripped, version unknown and no agreeing neighbours: skipped, naming the field and the version", () => {
    const r = resolveOffsets(stripped(), NEEDS, fakeTable({ "1.27.2": { "net/http.Request.Method": { offset: 0 } }, "1.27.6": { "net/http.Request.Method": { offset: 8 } } }));
    expect(r).toEqual({ skipped: "no offset for net/http.Request.Method in Go 1.27.4 (amd64): Go 1.27.4 is not in gotel's offsets table; the binary has no DWARF to read it from" });
  });

  test("an optional field of a third-party module: none when the binary lacks the module or the table lacks it", () => {
    const needs: FieldNeed[] = [...NEEDS, { key: "dsn", field: "github.com/jackc/pgx/v5/stdlib.driverConnector.name", module: "github.com/jackc/pgx/v5", optional: true }];
    const table = fakeTable({ "1.27.4": { "net/http.Request.Method": { offset: 0 }, "net/http.Request.Pattern": { offset: 232 } } });
    // gobin-sample has no pgx
    expect(resolveOffsets(stripped(), needs, table)).toEqual({ offsets: { method: 0, pattern: 232, dsn: undefined }, source: "table" });
    // a module the binary has and the table does not cover (chi)
    const chi = GoExecutable.open(buildGoFixture("http-chi", { stripped: true }));
    const chiNeeds: FieldNeed[] = [{ key: "ctx", field: "github.com/go-chi/chi/v5.Context.URLParams", module: "github.com/go-chi/chi/v5", optional: true }];
    expect(resolveOffsets(chi, chiNeeds, table)).toEqual({ offsets: { ctx: undefined }, source: "table" });
  });

  test("a standard-library field the table does not list for a version it has: none when optional, skipped when required", () => {
    // a field added to a probe after the table was built (the table's answer for a version it has)
    const table: TableLookup = {
      lookup: (_m, version, _a, field) =>
        field === "net/http.Request.Method" && version === "1.27.4" ? { offset: 0 } : { unknown: `gotel's offsets table has no entry for ${field}`, fieldNotInTable: true },
      lookupInterpolated: () => undefined,
    };
    expect(resolveOffsets(stripped(), NEEDS, table)).toEqual({ offsets: { method: 0, pattern: undefined }, source: "table" });
    const required: FieldNeed[] = [...NEEDS, { key: "url", field: "net/http.Request.URL", module: "std", optional: false }];
    expect(resolveOffsets(stripped(), required, table)).toEqual({
      skipped: "no offset for net/http.Request.URL in Go 1.27.4 (amd64): gotel's offsets table has no entry for net/http.Request.URL; the binary has no DWARF to read it from",
    });
  });

  test("a required field the version does not have: skipped", () => {
    const r = resolveOffsets(stripped(), NEEDS, fakeTable({ "1.27.4": { "net/http.Request.Method": { absent: true } } }));
    expect(r).toEqual({ skipped: "net/http.Request.Method does not exist in Go 1.27.4" });
  });
});
