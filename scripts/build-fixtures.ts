/** Builds every Go fixture variant the tests use, two at a time (the machine has 2 cores), before the tests run. */
import { variantName, type GoBuild } from "../test/support/go.ts";
import { sampleVariants } from "../test/support/matrix.ts";

const t0 = performance.now();
// the database/sql service (cgo for SQLite, pure Go for PostgreSQL) is the slowest to build: first
const queue: { name: string; v: GoBuild }[] = [
  { name: "http-db", v: { cgo: true } }, { name: "http-db", v: {} }, { name: "http-db", v: { cgo: true, stripped: true } },
  { name: "http-db", v: { cgo: true, stripped: true, goVersion: "1.22.12" } }, { name: "http-db", v: { tags: ["modernc"] } },
  { name: "pgx-native", v: { goVersion: "1.27.4" } }, { name: "pgx-native", v: { goVersion: "1.27.4", stripped: true } },
  { name: "pgx-native", v: { goVersion: "1.27.4", tags: ["pgx4"] } }, { name: "pgx-native", v: { goVersion: "1.27.4", stripped: true, tags: ["pgx4"] } },
  // HTTP/2 over TLS (test/e2e/http2.test.ts)
  ...[{ goVersion: "1.22.12" }, { goVersion: "1.22.12", stripped: true }, { goVersion: "1.24.13" }, { goVersion: "1.27.4" }, { goVersion: "1.27.4", stripped: true }]
    .map((v) => ({ name: "http2-server", v })),
  { name: "h2-legacy", v: { goVersion: "1.19.13" } }, { name: "h2-legacy", v: { goVersion: "1.21.13" } },
  // gRPC (test/e2e/grpc.test.ts): the newest grpc, and v1.40.0 with Go 1.19
  ...[{}, { stripped: true }, { goVersion: "1.27.4" }, { goVersion: "1.19.13", modfile: "go.v140.mod" }, { goVersion: "1.19.13", modfile: "go.v140.mod", stripped: true }]
    .map((v) => ({ name: "grpc-service", v })),
  // Sarama (test/e2e/sarama.test.ts): the newest, the oldest IBM/sarama, the last Shopify/sarama
  ...[{ goVersion: "1.27.4" }, { goVersion: "1.22.12", modfile: "go.oldest.mod" }, { goVersion: "1.22.12", modfile: "go.shopify.mod" }]
    .flatMap((v) => [v, { ...v, stripped: true }]).map((v) => ({ name: "sarama", v })),
  ...sampleVariants().map((v) => ({ name: "gobin-sample", v })),
];
const total = queue.length;
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
console.log(`fixtures: ${total} Go builds ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
