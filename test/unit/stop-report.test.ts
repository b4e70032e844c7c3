/** The final `stopped` line: its parts add up to the spans made, with the reasons named. */
import { expect, test } from "bun:test";
import type { AgentStats } from "../../src/agent.ts";
import { stoppedFields } from "../../src/cli/stop-report.ts";

const base: AgentStats = {
  spans: 1000, events: 900, unsampled: 50,
  drops: {
    "kernel ring buffer full": 30, "in-flight map full": 10, "ring buffer read batch full": 0, "process no longer traced": 10,
    "message whose end was not seen": 0,
  },
  exports: [{ destination: "http://c:4318/v1/traces", exported: 700, queueFull: 100, exportFailed: 100, failures: { "connection refused": 60, "HTTP 503, still after retries": 40 } }],
  injected: 3n, notInjected: 1n, linkedSameHost: 4n, linkUnnamedConnection: 0n, inserted: 0n, insertMissed: 0n, insertNotHttp1: 0n, targets: 2,
};

test("exported + dropped + export_failed + unsampled = spans, every reason named", () => {
  expect(stoppedFields(base)).toEqual({
    spans: 1000, exported: 700, dropped: 150, export_failed: 100, unsampled: 50,
    dropped_reasons: "kernel ring buffer full: 30, in-flight map full: 10, process no longer traced: 10, export queue full: 100",
    export_failed_reasons: "connection refused: 60, HTTP 503, still after retries: 40",
    to: "http://c:4318/v1/traces", events: 900, injected: 3n, not_injected: 1n, linked_same_host: 4n,
  });
});

test("nothing lost: no reasons; OTEL_TRACES_EXPORTER=none: the spans that reached gotel are discarded", () => {
  const clean: AgentStats = { ...base, spans: 10, unsampled: 0, drops: { "kernel ring buffer full": 0, "process no longer traced": 0 } };
  const exported = { ...base.exports[0]!, exported: 10, queueFull: 0, exportFailed: 0, failures: {} };
  expect(stoppedFields({ ...clean, exports: [exported] })).toEqual({
    spans: 10, exported: 10, dropped: 0, export_failed: 0, unsampled: 0, to: "http://c:4318/v1/traces", events: 900, injected: 3n, not_injected: 1n, linked_same_host: 4n,
  });
  expect(stoppedFields({ ...base, exports: [] })).toMatchObject({ spans: 1000, discarded: 900, dropped: 50, unsampled: 50, exporter: "none" });
});

test("socket insertion's counts appear once it did anything: inserted, missed, sends that were no HTTP/1 request", () => {
  expect(stoppedFields(base)).not.toHaveProperty("inserted");
  expect(stoppedFields({ ...base, inserted: 20n, insertMissed: 2n, insertNotHttp1: 5n })).toMatchObject({ inserted: 20n, insert_missed: 2n, insert_not_http1: 5n });
});

test("HTTP/2 streams on connections gotel never named (accepted before it attached) are counted once there are any", () => {
  expect(stoppedFields(base)).not.toHaveProperty("link_missed_old_connection");
  expect(stoppedFields({ ...base, linkUnnamedConnection: 7n })).toMatchObject({ link_missed_old_connection: 7n });
});

test("an instrumentation's own reasons follow the core's, each named once", () => {
  const drops = { ...base.drops, "message whose end was not seen": 3, "application span too large or unreadable": 2 };
  expect(stoppedFields({ ...base, spans: 1005, drops })).toMatchObject({
    dropped: 155,
    dropped_reasons: "kernel ring buffer full: 30, in-flight map full: 10, process no longer traced: 10, message whose end was not seen: 3, application span too large or unreadable: 2, export queue full: 100",
  });
});
