import { Agent } from "../agent.ts";
import type { EnvConfig } from "../config/env.ts";
import { spanExporter } from "../export/exporter.ts";
import { log } from "../log.ts";
import { TARGET_FLAGS, targetSpec } from "./targets.ts";
import { parseFlags } from "./usage.ts";

/** Resolves when the agent was stopped by SIGINT/SIGTERM and every span was exported. */
export function untilSignal(stop: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info("stopping", { signal: sig });
      void stop().then(() => resolve(0), (e: unknown) => {
        log.error("stopping failed", { error: String(e) });
        resolve(1);
      });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

export async function runCommand(args: string[], env: EnvConfig): Promise<number> {
  const { values } = parseFlags(args, TARGET_FLAGS);
  const targets = targetSpec(values, env);
  const exporter = spanExporter(env);
  const agent = await Agent.start({ env, targets, exporters: exporter ? [{ exporter }] : [] });
  const code = await untilSignal(() => agent.stop());
  const s = agent.stats;
  log.info("stopped", { spans: s.spans, dropped: s.dropped });
  return code;
}
