/**
 * database/sql across Go releases: test/fixtures/sql-fake runs every path gotel probes (DB query and exec,
 * transactions that commit and roll back, prepared statements, a failing query) against an in-process fake
 * driver, built with the oldest and newest supported Go and two between, stripped and not. The compiler's
 * inlining decisions and database/sql's internals change between releases; this is where that would show.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { GOTEL } from "../support/cli.ts";
import { pidOf } from "../support/chain.ts";
import { Collector, SPAN_KIND, STATUS_CODE, describeSpans, useCollector } from "../support/collector.ts";
import { buildGoFixture, withGoVersion, type GoBuild } from "../support/go.ts";
import { Proc, startServer } from "../support/processes.ts";
import { SQL_FAKE_SPANS as EXPECTED } from "../support/sql-fake.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

/** claims: the Go version the binary's build info is patched to say */
const VARIANTS: (GoBuild & { claims?: string })[] = [
  ...["1.19.13", "1.21.13", "1.24.13", "1.27.4"].map((goVersion) => ({ goVersion, stripped: false })),
  { goVersion: "1.19.13", stripped: true }, { goVersion: "1.27.4", stripped: true },
  // a patch release that is not on the module proxy, so not in the table: between 1.23.4 and 1.23.6, which agree
  { goVersion: "1.23.12", stripped: true, claims: "go1.23.5" },
];
const label = (v: (typeof VARIANTS)[number]): string =>
  `Go ${v.goVersion}${v.stripped ? " stripped" : ""}${v.claims ? `, build info claiming ${v.claims}` : ""}`;
const INTERPOLATED = 'offsets=table-interpolated offsetsNote="Go 1.23.5 is not in the table; using 1.23.4 and 1.23.6, which agree"';

describe.each(VARIANTS.map((v) => ({ ...v, label: label(v) })))("$label", ({ claims, label: _, ...build }) => {
  test("every probed path gives its span, under the request's server span", async () => {
    const built = buildGoFixture("sql-fake", build);
    const exe = claims ? withGoVersion(built, claims) : built;
    const target = await startServer(exe, ["127.0.0.1:0"]);
    const gotel = new Proc([GOTEL, "run", "--pid", String(target.proc.pid)], {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_GO_AUTO_INCLUDE_DB_STATEMENT: "true", OTEL_GO_AUTO_PARSE_DB_STATEMENT: "true",
    });
    try {
      const line = await gotel.waitForLine(new RegExp(`attached pid=${target.proc.pid} .*instrumentation=database/sql`), 20_000);
      if (claims) {
        // the log says which built versions stood in, for each instrumentation
        expect(line).toContain(` go=1.23.5 instrumentation=database/sql sites=`);
        expect(line).toContain(INTERPOLATED);
        const server = await gotel.waitForLine(new RegExp(`attached pid=${target.proc.pid} .*instrumentation="net/http server"`), 20_000);
        expect(server).toContain(INTERPOLATED);
      } else {
        expect(line).toContain(`offsets=${build.stripped ? "table" : "dwarf"}`);
        expect(line).not.toContain("offsetsNote=");
      }
      const r = await fetch(`${target.base}/run`);
      expect(await r.text()).toBe("ok");
      const pid = target.proc.pid;
      const spans = await collector.waitFor((all) => all.filter((s) => pidOf(s) === pid).length >= 1 + EXPECTED.length, "the server span and its DB spans");
      const mine = spans.filter((s) => pidOf(s) === pid);
      expect(mine, describeSpans(mine)).toHaveLength(1 + EXPECTED.length);
      const server = mine.find((s) => s.kind === SPAN_KIND.SERVER)!;
      const db = mine.filter((s) => s.kind === SPAN_KIND.CLIENT).sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
      expect(db.map((s) => [s.name, s.attributes["db.query.text"]])).toEqual(EXPECTED);
      for (const s of db) {
        expect(s.parentSpanId).toBe(server.spanId);
        expect(s.traceId).toBe(server.traceId);
        expect(s.attributes["db.system.name"]).toBe("other_sql"); // a driver gotel does not know
      }
      expect(db.slice(0, -1).every((s) => s.status.code === STATUS_CODE.UNSET)).toBe(true);
      expect(db.at(-1)!.status.code).toBe(STATUS_CODE.ERROR);
      expect(db.at(-1)!.attributes["error.type"]).toBe("*errors.errorString");
      collector.clear();
    } finally {
      await gotel.stop();
      await target.proc.stop();
    }
  }, 300_000);
});
