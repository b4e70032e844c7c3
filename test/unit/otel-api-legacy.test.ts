/**
 * The global tracer of otel before v1.33.0: what gotel finds in a real binary to probe and to tell the API's
 * options apart by (legacyPlan), and Go's time.Time as WithTimestamp hands it over. The spans themselves are
 * checked end to end in test/e2e/otel-api.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { legacyPlan, type LegacyPlan } from "../../src/instrumentations/otel-api/legacy-plan.ts";
import { goTimeUnixNs } from "../../src/instrumentations/otel-api/legacy-spans.ts";
import { buildGoFixture, type GoBuild } from "../support/go.ts";

const V132: GoBuild = { goVersion: "1.22.12", modfile: "go.v132.mod", tags: ["otel_legacy"] };
const V101: GoBuild = { goVersion: "1.21.13", modfile: "go.v101.mod", tags: ["otel_legacy"] };

function planOf(build: GoBuild): ReturnType<typeof legacyPlan> {
  const exe = GoExecutable.open(buildGoFixture("otel-api", build));
  try {
    return legacyPlan(exe);
  } finally {
    exe.close();
  }
}

const kinds = (p: LegacyPlan): string[] => [...new Set(p.closures.map((c) => c.kind))].sort();

describe("legacyPlan", () => {
  test.each([
    ["otel v1.32.0, Go 1.22", V132, 16],
    ["otel v1.32.0, Go 1.22, stripped (the pclntab's names)", { ...V132, stripped: true }, 16],
    ["otel v1.0.1, Go 1.21", V101, 0],
  ] as [string, GoBuild, number][])("%s: Start's entry and returns, the six methods, every option the fixture uses", (_, build, embedded) => {
    const p = planOf(build) as LegacyPlan;
    expect(Object.keys(p.programs).sort()).toEqual([
      "otel_api_legacy_attributes", "otel_api_legacy_end", "otel_api_legacy_error", "otel_api_legacy_event",
      "otel_api_legacy_name", "otel_api_legacy_start", "otel_api_legacy_started", "otel_api_legacy_status",
    ]);
    expect(p.programs.otel_api_legacy_start).toHaveLength(1);
    // the nonRecordingSpan path's return and the delegate's
    expect(p.programs.otel_api_legacy_started!.length).toBeGreaterThanOrEqual(2);
    expect(p.spanMethod).toBeGreaterThan(0);
    expect(p.attributesStart.length).toBeGreaterThanOrEqual(1);
    expect(p.attributesEvent.length).toBeGreaterThanOrEqual(1);
    expect(p.timestamp.length).toBeGreaterThanOrEqual(1);
    expect(kinds(p)).toEqual(["kind", "links", "newRoot", "schema", "version"]);
    expect(p.embedded).toBe(embedded);
  }, 300_000);

  test.each([
    ["otel v1.0.1, Go 1.19", { ...V101, goVersion: "1.19.13" }],
    ["otel v1.0.1, Go 1.20, stripped", { ...V101, goVersion: "1.20.14", stripped: true }],
  ] as [string, GoBuild][])("%s: closures named after their caller alone, told apart by their file and line", (_, build) => {
    const p = planOf(build) as LegacyPlan;
    expect(kinds(p)).toEqual(["kind", "links", "newRoot", "schema", "version"]);
  }, 300_000);

  test("otel v1.33.0 and later: not this path (auto/sdk's)", () => {
    expect(planOf({})).toBeUndefined();
  }, 300_000);
});

describe("goTimeUnixNs", () => {
  const unixToInternal = 62_135_596_800n;
  const wallToInternal = 59_453_308_800n;
  const sec = 1_700_000_000n, nsec = 123_456_789n;
  const expected = sec * 1_000_000_000n + nsec;

  test("time.Unix(...): no monotonic reading, seconds since year 1 in ext", () => {
    expect(goTimeUnixNs(nsec, sec + unixToInternal)).toBe(expected);
  });

  test("time.Now(): the monotonic bit, seconds since 1885 in wall", () => {
    const wall = (1n << 63n) | ((sec + unixToInternal - wallToInternal) << 30n) | nsec;
    expect(goTimeUnixNs(wall, 12_345n)).toBe(expected);
  });
});
