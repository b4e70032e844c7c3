import { expect, test } from "bun:test";
import { ROOT } from "../support/go.ts";

test("the whole project typechecks under strict TypeScript", () => {
  const r = Bun.spawnSync([`${ROOT}/node_modules/.bin/tsc`, "--noEmit", "-p", ROOT], { cwd: ROOT });
  expect(r.stdout.toString() + r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
}, 120_000);
