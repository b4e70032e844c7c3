/** Builds every Go fixture variant the tests use, two at a time (the machine has 2 cores), before the tests run. */
import { variantName } from "../test/support/go.ts";
import { sampleVariants } from "../test/support/matrix.ts";

const t0 = performance.now();
const queue = sampleVariants().map((v) => ({ name: "gobin-sample", v }));
async function worker(): Promise<void> {
  for (let job = queue.shift(); job; job = queue.shift()) {
    const j = job;
    await new Promise<void>((done, fail) => {
      // buildGoFixture is synchronous; run it in a child so two builds overlap
      const p = Bun.spawn([process.execPath, "-e", `import { buildGoFixture } from "${import.meta.dir}/../test/support/go.ts"; buildGoFixture(${JSON.stringify(j.name)}, ${JSON.stringify(j.v)});`], { stdout: "inherit", stderr: "inherit" });
      void p.exited.then((code) => (code === 0 ? done() : fail(new Error(`building ${j.name} ${variantName(j.v)} failed`))));
    });
  }
}
await Promise.all([worker(), worker()]);
console.log(`fixtures: ${sampleVariants().length} Go builds ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
