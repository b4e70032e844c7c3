/**
 * The bundled struct-offsets table (src/offsets/table.json, made by scripts/offsets/generate.ts): well-formed,
 * complete for every field every probe declares, for every module, version and architecture it lists, equal to
 * the DWARF of real fixture builds, and never answering for a version that was not built (except the documented
 * interpolation).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { readStructFieldOffsets } from "../../src/gobin/dwarf.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import {
  ARCHES, STD, TABLE, builtVersions, canonicalVersion, compactArch, compareVersions, expandArch, expandField,
  lookupOffset, lookupOffsetInterpolated, minorSeries, serializeTable, validateTable, type Arch, type Expanded,
  type OffsetsTable,
} from "../../src/offsets/table.ts";
import { FIELDS as DATABASE_SQL_FIELDS, SOURCE_FIELDS as DATABASE_SQL_SOURCE_FIELDS } from "../../src/instrumentations/database-sql/plan.ts";
import { fieldsOf, fieldsPrograms, INSTRUMENTATIONS } from "../../src/instrumentations/index.ts";
import { buildGoFixture } from "../support/go.ts";
import { GO_VERSIONS } from "../support/matrix.ts";

/** every standard-library field a probe reads, in the kernel or in user space */
const PROBE_FIELDS = fieldsOf(STD);
const DB_FIELDS = [...Object.values(DATABASE_SQL_FIELDS), ...Object.values(DATABASE_SQL_SOURCE_FIELDS)];
/** fields every supported Go version has (the others are version-dependent and optional in the probe) */
const ALWAYS = ["net/http.Request.Method", "net/http.Request.URL", "net/http.Request.ProtoMajor", "net/http.Request.ProtoMinor",
  "net/http.Request.Host", "net/http.Request.RemoteAddr", "net/http.Request.TLS", "net/http.Request.Header",
  "net/url.URL.Path", "net/http.response.status", "net/http.Response.StatusCode", "bufio.Writer.buf", ...DB_FIELDS];

describe("the bundled table", () => {
  test("is well-formed and its serialization is stable", () => {
    expect(() => validateTable(TABLE)).not.toThrow();
    expect(serializeTable(TABLE)).toBe(serializeTable(validateTable(JSON.parse(serializeTable(TABLE)))));
  });

  test("covers std for amd64 and arm64 from Go 1.19 to the newest, including the test matrix", () => {
    for (const arch of ARCHES) {
      const vs = builtVersions(STD, arch);
      expect(vs.length).toBeGreaterThanOrEqual(9);
      expect(compareVersions(vs[0]!, "1.19.0")).toBeGreaterThanOrEqual(0);
      expect(compareVersions(vs[0]!, "1.20.0")).toBeLessThan(0);
      for (const v of GO_VERSIONS) expect(vs).toContain(v);
      // the newest patch of every minor series 1.19 .. 1.27
      for (let minor = 19; minor <= 27; minor++) expect(vs.some((v) => minorSeries(v) === `1.${minor}`)).toBe(true);
    }
  });

  test("std: the fields every supported Go version has are offsets, never absent, in every version it lists", () => {
    for (const arch of ARCHES) {
      for (const v of builtVersions(STD, arch)) {
        for (const f of ALWAYS) expect({ v, arch, f, r: lookupOffset(STD, v, arch, f) }).toMatchObject({ r: { offset: expect.any(Number) } });
      }
    }
  });

  // every module a probe reads fields of: the table has it for both architectures, and for every version it
  // lists an answer (an offset, or the field's absence recorded) for every field any probe declares for it
  const DECLARED = [...new Set(INSTRUMENTATIONS.flatMap((i) => i.needs).map((n) => n.module))].sort();
  /** modules whose fields come from DWARF only (scripts/offsets/generate.ts says why) */
  const DWARF_ONLY = ["github.com/mattn/go-sqlite3", "modernc.org/sqlite"];
  test("covers every module a probe reads fields of, except the DWARF-only ones, and nothing else", () => {
    expect(DECLARED).toContain(STD);
    expect(Object.keys(TABLE.modules).sort()).toEqual(DECLARED.filter((m) => !DWARF_ONLY.includes(m)));
  });
  test("the generator has a program for each of those modules, declared in its instrumentation's folder", () => {
    expect(fieldsPrograms().map((p) => p.module).sort()).toEqual(DECLARED.filter((m) => m !== STD && !DWARF_ONLY.includes(m)));
    for (const p of fieldsPrograms()) expect(p.body).toContain("sink = append(sink, ");
  });
  test.each(DECLARED.filter((m) => !DWARF_ONLY.includes(m)))("is complete for every field any probe declares for %s, for every version and arch it lists", (module) => {
    const fields = fieldsOf(module);
    expect(fields.length).toBeGreaterThan(0);
    let answers = 0;
    for (const arch of ARCHES) {
      const versions = builtVersions(module, arch);
      expect({ module, arch, built: versions.length > 0 }).toEqual({ module, arch, built: true });
      for (const v of versions) {
        for (const f of fields) {
          const r = lookupOffset(module, v, arch, f);
          if ("unknown" in r) throw new Error(`${module}: ${f} ${v} ${arch}: ${r.unknown}`);
          answers++;
        }
      }
    }
    expect(answers).toBe(fields.length * (builtVersions(module, "amd64").length + builtVersions(module, "arm64").length));
  });

  test("version-dependent fields appear where Go's history says", () => {
    for (const arch of ARCHES) {
      for (const v of builtVersions(STD, arch)) {
        const has = (f: string): boolean => "offset" in lookupOffset(STD, v, arch, f);
        const swiss = compareVersions(v, "1.24.0") >= 0;
        expect({ v, arch, hmap: has("runtime.hmap.buckets") && has("runtime.hmap.B") }).toEqual({ v, arch, hmap: !swiss });
        expect({ v, arch, swiss: has("internal/runtime/maps.Map.dirPtr") && has("internal/runtime/maps.groupsReference.lengthMask") }).toEqual({ v, arch, swiss });
        expect({ v, arch, pattern: has("net/http.Request.Pattern") }).toEqual({ v, arch, pattern: compareVersions(v, "1.23.0") >= 0 });
        expect({ v, arch, pat: has("net/http.Request.pat") }).toEqual({ v, arch, pat: compareVersions(v, "1.22.0") >= 0 });
        // HTTP/2's server moved from net/http's bundle to net/http/internal/http2 in Go 1.27
        const internal = compareVersions(v, "1.27.0") >= 0;
        expect({ v, arch, bundled: has("net/http.http2responseWriter.rws") && has("net/http.http2responseWriterState.status") }).toEqual({ v, arch, bundled: !internal });
        expect({ v, arch, internal: has("net/http/internal/http2.responseWriter.rws") && has("net/http/internal/http2.responseWriterState.status") }).toEqual({ v, arch, internal });
      }
    }
  });

  // the truth: DWARF of the test fixture built with each version of the matrix, for each arch the table has it for
  for (const goVersion of GO_VERSIONS) {
    for (const goarch of ARCHES) {
      test(`equals the DWARF of gobin-sample built with Go ${goVersion} for ${goarch}`, () => {
        if (!builtVersions(STD, goarch).includes(goVersion)) throw new Error(`Go ${goVersion} ${goarch} is not in the table`);
        const exe = buildGoFixture("gobin-sample", { goVersion, goarch });
        const elf = ElfFile.parse(new Uint8Array(readFileSync(exe)), exe);
        const dwarf = readStructFieldOffsets(elf, PROBE_FIELDS);
        let compared = 0;
        for (const f of PROBE_FIELDS) {
          const d = dwarf.get(f)!;
          const t = lookupOffset(STD, goVersion, goarch, f);
          if ("offset" in d) {
            expect({ f, t }).toEqual({ f, t: { offset: d.offset } });
            compared++;
          } else if (d.missing === "field") {
            expect({ f, t }).toEqual({ f, t: { absent: true } });
          } else {
            // the fixture's program does not use the struct at all; the table's program does, or it is absent there too
            expect({ f, ok: !("unknown" in t) }).toEqual({ f, ok: true });
          }
        }
        expect(compared).toBeGreaterThanOrEqual(ALWAYS.length);
      }, 240_000);
    }
  }
});

test("the database/sql fields equal the DWARF of a program that uses database/sql (test/fixtures/http-db)", () => {
  const exe = buildGoFixture("http-db", { cgo: true });
  const elf = ElfFile.parse(new Uint8Array(readFileSync(exe)), exe);
  const goVersion = GoExecutable.open(exe).goVersion;
  expect(builtVersions(STD, "amd64")).toContain(goVersion);
  const dwarf = readStructFieldOffsets(elf, DB_FIELDS);
  for (const f of DB_FIELDS) {
    const d = dwarf.get(f)!;
    expect({ f, d }).toMatchObject({ f, d: { offset: expect.any(Number) } });
    expect({ f, t: lookupOffset(STD, goVersion, "amd64", f) }).toEqual({ f, t: { offset: (d as { offset: number }).offset } });
  }
}, 300_000);

test.each([
  // pgx: its database/sql driver's and its own API's fields (the driver uses the API)
  ["the SQL drivers", "http-db", { cgo: true }, ["github.com/lib/pq", "github.com/jackc/pgx/v5", "github.com/go-sql-driver/mysql"], 14],
  // x/net: its HTTP/2 server's ResponseWriter (the status; the connection and stream id same-host linking reads),
  // and the HEADERS frame and hpack fields the gRPC server reads
  ["x/net's HTTP/2 server", "http2-server", { goVersion: "1.22.12" }, ["golang.org/x/net"], 12],
  // grpc (and what is read with its entries: genproto's Status, net.TCPAddr, errors.errorString, bytes.Buffer)
  // and the x/net fields its probes read (not x/net's HTTP/2 server's, which a gRPC program does not link);
  // fields a release does not have (http2Server.remoteAddr became peer) are absent in both
  ["gRPC, newest", "grpc-service", {}, ["google.golang.org/grpc", "golang.org/x/net"], 24],
  ["gRPC v1.40.0", "grpc-service", { goVersion: "1.19.13", modfile: "go.v140.mod" }, ["google.golang.org/grpc", "golang.org/x/net"], 24],
  ["pgx v4 (its database/sql driver uses its API) and its pgconn", "pgx4-stdlib", {}, ["github.com/jackc/pgx/v4", "github.com/jackc/pgconn"], 8],
] as const)("%s: the third-party fields equal the DWARF of test/fixtures/%s, at the versions it requires", (_what, fixture, build, modules, count) => {
  const exe = GoExecutable.open(buildGoFixture(fixture, build));
  const elf = ElfFile.parse(new Uint8Array(readFileSync(exe.path)), exe.path);
  const notLinked = (f: string): boolean =>
    fixture === "grpc-service" && (f.startsWith("golang.org/x/net/http2.responseWriter") || f.startsWith("golang.org/x/net/http2.stream."));
  const needs = modules.flatMap((module) => fieldsOf(module).filter((f) => !notLinked(f)).map((field) => ({ field, module })));
  expect(needs.length).toBe(count);
  const dwarf = readStructFieldOffsets(elf, needs.map((n) => n.field));
  for (const n of needs) {
    const version = exe.moduleVersion(n.module)!;
    expect(builtVersions(n.module, "amd64")).toContain(version);
    const d = dwarf.get(n.field)!;
    expect({ f: n.field, t: lookupOffset(n.module, version, "amd64", n.field) }).toEqual({ f: n.field, t: "offset" in d ? { offset: d.offset } : { absent: true } });
  }
}, 300_000);

describe("lookups", () => {
  test("a version that was not built is never assumed", () => {
    expect(lookupOffset(STD, "1.99.0", "amd64", "net/http.Request.Method")).toEqual({ unknown: "version-not-built" });
    expect(lookupOffset(STD, "1.18.10", "amd64", "net/http.Request.Method")).toEqual({ unknown: "version-not-built" });
    expect(lookupOffset("example.com/nope", "v1.0.0", "amd64", "example.com/nope.T.f")).toEqual({ unknown: "version-not-built" });
    // a patch release between two built ones is not built either (that is the interpolated lookup's business)
    const vs = builtVersions(STD, "amd64");
    for (let minor = 19; minor <= 27; minor++) {
      const series = vs.filter((v) => minorSeries(v) === `1.${minor}`);
      const last = series[series.length - 1]!;
      const next = `1.${minor}.${Number(last.split(".")[2]) + 1}`;
      expect(lookupOffset(STD, next, "amd64", "net/http.Request.URL")).toEqual({ unknown: "version-not-built" });
      expect(lookupOffsetInterpolated(STD, next, "amd64", "net/http.Request.URL")).toEqual({ unknown: "version-not-built" });
    }
  });

  test("accepts go1.x.y, 1.x.y and 1.x (= 1.x.0)", () => {
    const v = builtVersions(STD, "amd64").find((x) => x.endsWith(".0"));
    const newest = GO_VERSIONS[GO_VERSIONS.length - 1]!;
    expect(lookupOffset(STD, `go${newest}`, "amd64", "net/http.Request.URL")).toEqual(lookupOffset(STD, newest, "amd64", "net/http.Request.URL"));
    if (v) {
      const short = v.replace(/\.0$/, "");
      expect(lookupOffset(STD, short, "amd64", "net/http.Request.URL")).toEqual(lookupOffset(STD, v, "amd64", "net/http.Request.URL"));
      expect("offset" in lookupOffset(STD, `go${short}`, "arm64", "net/http.Request.URL")).toBe(true);
    }
  });

  test("a field the table was not generated for is reported as such", () => {
    expect(lookupOffset(STD, GO_VERSIONS[0], "amd64", "net/http.Request.NoSuchField")).toEqual({ unknown: "field-not-in-table" });
  });
});

describe("versions", () => {
  test("compare numerically", () => {
    expect(compareVersions("1.9", "1.10")).toBe(-1);
    expect(compareVersions("1.9.9", "1.10.0")).toBe(-1);
    expect(compareVersions("1.21", "1.21.0")).toBe(0);
    expect(compareVersions("go1.21.0", "1.21")).toBe(0);
    expect(compareVersions("1.22.10", "1.22.9")).toBe(1);
    expect(compareVersions("v1.69.0-rc.1", "v1.69.0")).toBe(-1);
    expect(compareVersions("v1.69.0-rc.2", "v1.69.0-rc.10")).toBe(-1);
    expect(compareVersions("v1.70.0", "v1.69.9")).toBe(1);
    expect(["1.10.1", "1.9.2", "1.21", "1.20.14", "1.21.0"].sort(compareVersions)).toEqual(["1.9.2", "1.10.1", "1.20.14", "1.21", "1.21.0"]);
  });
  test("canonical forms and minor series", () => {
    expect(canonicalVersion(STD, "go1.20")).toBe("1.20.0");
    expect(canonicalVersion(STD, "1.22.12")).toBe("1.22.12");
    expect(canonicalVersion("google.golang.org/grpc", "v1.69.0")).toBe("v1.69.0");
    expect(minorSeries("1.22.12")).toBe("1.22");
    expect(minorSeries("v1.69.4")).toBe("v1.69");
  });
});

describe("encoding and interpolation (synthetic tables)", () => {
  const F = "example.com/m.T.f";
  const G = "example.com/m.T.g";
  function make(values: Record<string, [number | null, number | null]>): OffsetsTable {
    const data: Expanded = new Map(Object.entries(values).map(([v, [f, g]]) => [v, new Map([[F, f], [G, g]])]));
    return { format: 1, modules: { "example.com/m": { amd64: compactArch(data, [F, G]) } } };
  }
  const t = make({
    "v1.2.0": [8, null],
    "v1.2.3": [8, null],
    "v1.2.5": [16, 4],
    "v1.2.9": [16, 4],
    "v1.3.0": [16, 4],
    "v1.10.0": [24, 4],
  });
  const M = "example.com/m";

  test("ranges cover consecutive built versions with the same value, and round-trip", () => {
    const at = t.modules[M]!.amd64!;
    expect(at.versions).toEqual(["v1.2.0", "v1.2.3", "v1.2.5", "v1.2.9", "v1.3.0", "v1.10.0"]);
    expect(at.fields[F]).toEqual([["v1.2.0", "v1.2.3", 8], ["v1.2.5", "v1.3.0", 16], ["v1.10.0", "v1.10.0", 24]]);
    expect(at.fields[G]).toEqual([["v1.2.0", "v1.2.3", null], ["v1.2.5", "v1.10.0", 4]]);
    expect(compactArch(expandArch(at), [F, G])).toEqual(at);
    expect(validateTable(JSON.parse(serializeTable(t)))).toEqual(t);
    // v1.2.7 lies inside the range v1.2.5..v1.3.0 but was not built: not covered
    expect(expandField(at, F).has("v1.2.7")).toBe(false);
    expect(lookupOffset(M, "v1.2.7", "amd64", F, t)).toEqual({ unknown: "version-not-built" });
    expect(lookupOffset(M, "v1.2.5", "amd64", F, t)).toEqual({ offset: 16 });
    expect(lookupOffset(M, "v1.2.0", "amd64", G, t)).toEqual({ absent: true });
    expect(lookupOffset(M, "v1.2.0", "arm64", F, t)).toEqual({ unknown: "version-not-built" });
  });

  test("a version is listed as built only with a value for every field", () => {
    const data: Expanded = new Map([["v1.0.0", new Map([[F, 1], [G, 2]])], ["v1.1.0", new Map([[F, 1]])]]);
    expect(compactArch(data, [F, G]).versions).toEqual(["v1.0.0"]);
  });

  test("interpolates only inside a minor series and only between identical values", () => {
    const li = (v: string, f = F) => lookupOffsetInterpolated(M, v, "amd64", f, t);
    expect(li("v1.2.7")).toEqual({ offset: 16, interpolatedFrom: ["v1.2.5", "v1.2.9"] });
    expect(li("v1.2.1")).toEqual({ offset: 8, interpolatedFrom: ["v1.2.0", "v1.2.3"] });
    expect(li("v1.2.1", G)).toEqual({ absent: true, interpolatedFrom: ["v1.2.0", "v1.2.3"] });
    expect(li("v1.2.4")).toEqual({ unknown: "version-not-built" }); // 8 below, 16 above
    expect(li("v1.2.4", G)).toEqual({ unknown: "version-not-built" }); // absent below, 4 above
    expect(li("v1.2.10")).toEqual({ unknown: "version-not-built" }); // between v1.2.9 and v1.3.0: two series
    expect(li("v1.3.1")).toEqual({ unknown: "version-not-built" }); // newer than the series' newest built
    expect(li("v1.5.0")).toEqual({ unknown: "version-not-built" });
    expect(li("v1.1.0")).toEqual({ unknown: "version-not-built" }); // older than everything
    expect(li("v1.11.0")).toEqual({ unknown: "version-not-built" }); // newer than everything
    expect(li("v1.2.7-rc.1")).toEqual({ unknown: "version-not-built" }); // a pre-release
    expect(li("v1.2.5")).toEqual({ offset: 16 }); // built: exact, no interpolatedFrom
  });

  test("interpolates in the real table between built patch releases of one series", () => {
    for (const arch of ARCHES as Arch[]) {
      const vs = builtVersions(STD, arch);
      for (let i = 0; i + 1 < vs.length; i++) {
        const [lo, hi] = [vs[i]!, vs[i + 1]!];
        if (minorSeries(lo) !== minorSeries(hi)) continue;
        const [major, minor, patch] = lo.split(".").map(Number) as [number, number, number];
        if (Number(hi.split(".")[2]) - patch < 2) continue;
        const between = `${major}.${minor}.${patch + 1}`;
        for (const f of PROBE_FIELDS) {
          const a = lookupOffset(STD, lo, arch, f);
          const b = lookupOffset(STD, hi, arch, f);
          const r = lookupOffsetInterpolated(STD, between, arch, f);
          if (JSON.stringify(a) === JSON.stringify(b)) expect(r).toEqual({ ...(a as object), interpolatedFrom: [lo, hi] } as never);
          else expect(r).toEqual({ unknown: "version-not-built" });
        }
        return;
      }
    }
  });
});
