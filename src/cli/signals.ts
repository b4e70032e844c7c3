import { log } from "../log.ts";

/**
 * Resolves with the first SIGINT/SIGTERM. Install it before starting the agent: a signal that arrives while
 * probes are being attached must still end in an orderly stop (with every queued span exported), not in the
 * default action, which kills the process.
 */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      log.info("stopping", { signal: sig });
      resolve(sig);
    };
    process.once("SIGINT", on);
    process.once("SIGTERM", on);
  });
}
