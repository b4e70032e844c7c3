/**
 * The accounting of a whole session, for the final `stopped` line of run and exec: where every span went. The
 * parts add up: spans = exported + dropped + export_failed + unsampled (or + discarded, when nothing exports).
 */
import type { AgentStats } from "../agent.ts";
import { formatReasons } from "../export/warnings.ts";

type Fields = Record<string, string | number | bigint>;

/** Lost before any exporter's queue (and in it: queueFull), by reason, nonzero only. */
export function dropReasons(s: AgentStats, queueFull: number): Record<string, number> {
  return Object.fromEntries([...Object.entries(s.drops), ["export queue full", queueFull] as const].filter(([, n]) => n > 0));
}

export function droppedBeforeExport(s: AgentStats): number {
  return Object.values(s.drops).reduce((a, b) => a + b, 0);
}

/** Fields of the `stopped` line; `s.exports` has at most one exporter here (run, exec). */
export function stoppedFields(s: AgentStats): Fields {
  const e = s.exports[0];
  const reasons = dropReasons(s, e?.queueFull ?? 0);
  const dropped = Object.values(reasons).reduce((a, b) => a + b, 0);
  const fields: Fields = { spans: s.spans };
  if (e) Object.assign(fields, { exported: e.exported, dropped, export_failed: e.exportFailed });
  else Object.assign(fields, { discarded: s.spans - dropped - s.unsampled, dropped });
  fields.unsampled = s.unsampled;
  if (dropped > 0) fields.dropped_reasons = formatReasons(reasons);
  if (e && e.exportFailed > 0) fields.export_failed_reasons = formatReasons(e.failures);
  if (e) fields.to = e.destination;
  else fields.exporter = "none";
  Object.assign(fields, { events: s.events, injected: s.injected, not_injected: s.notInjected, linked_same_host: s.linkedSameHost });
  if (s.linkUnnamedConnection > 0n) fields.link_missed_old_connection = s.linkUnnamedConnection;
  if (s.inserted + s.insertMissed + s.insertNotHttp1 > 0n) {
    Object.assign(fields, { inserted: s.inserted, insert_missed: s.insertMissed, insert_not_http1: s.insertNotHttp1 });
  }
  return fields;
}
