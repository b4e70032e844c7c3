/** `trace`'s last line: what the terminal got and what it did not, with the reasons, as run's `stopped` line. */
import { expect, test } from "bun:test";
import type { AgentStats } from "../../src/agent.ts";
import { traceSummary } from "../../src/cli/trace.ts";

const output = { summary: (dropped: number) => `12 spans, 5 traces, ${dropped} dropped` };
const none = { "kernel ring buffer full": 0, "in-flight map full": 0, "ring buffer read batch full": 0, "process no longer traced": 0 };
const stats: AgentStats = {
  spans: 20, events: 20, unsampled: 0, drops: none,
  exports: [{ destination: "terminal", exported: 12, queueFull: 0, exportFailed: 0, failures: {} }],
  injected: 0n, notInjected: 0n, linkedSameHost: 0n, linkUnnamedConnection: 0n, inserted: 0n, insertMissed: 0n, insertNotHttp1: 0n, targets: 1,
};

test("nothing lost: no reasons", () => {
  expect(traceSummary(output, stats)).toBe("12 spans, 5 traces, 0 dropped");
});

test("spans lost on the way are counted with their reasons, the unsampled said apart", () => {
  const s: AgentStats = {
    ...stats, unsampled: 4, drops: { ...none, "kernel ring buffer full": 3, "process no longer traced": 1 },
    exports: [{ destination: "terminal", exported: 12, queueFull: 2, exportFailed: 0, failures: {} }],
  };
  expect(traceSummary(output, s)).toBe("12 spans, 5 traces, 6 dropped (kernel ring buffer full: 3, process no longer traced: 1, export queue full: 2), 4 unsampled");
});

test("with --otlp: where the exported copies went, failures with their reasons", () => {
  const s: AgentStats = {
    ...stats,
    exports: [stats.exports[0]!, { destination: "http://c:4318/v1/traces", exported: 10, queueFull: 0, exportFailed: 2, failures: { "connection refused": 2 } }],
  };
  expect(traceSummary(output, s)).toBe("12 spans, 5 traces, 0 dropped; OTLP to http://c:4318/v1/traces: 10 exported, 0 dropped, 2 failed (connection refused)");
});
