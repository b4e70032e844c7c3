import { Agent } from "../agent.ts";
import type { EnvConfig } from "../config/env.ts";
import { spanExporter } from "../export/exporter.ts";
import { log } from "../log.ts";
import { refuseUntraceable } from "./preflight.ts";
import { stoppedFields } from "./stop-report.ts";
import { TARGET_FLAGS, targetSpec } from "./targets.ts";
import { stopSignal } from "./signals.ts";
import { parseFlags } from "./usage.ts";

export async function runCommand(args: string[], env: EnvConfig): Promise<number> {
  const { values } = parseFlags(args, TARGET_FLAGS);
  const targets = targetSpec(values, env);
  const exporter = await spanExporter(env);
  refuseUntraceable(targets);
  const signalled = stopSignal();
  const agent = await Agent.start({ env, targets, exporters: exporter ? [{ exporter }] : [] });
  await signalled;
  await agent.stop();
  log.info("stopped", stoppedFields(agent.stats));
  return 0;
}
