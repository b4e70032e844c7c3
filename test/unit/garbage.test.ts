import { expect, test } from "bun:test";
import { GarbagePacer } from "../../src/garbage.ts";

// The process's real anonymous memory is not a test's to control (freed pages stay resident for a while, other
// tests allocate): the pacer's rule is tested on a memory it is told about.
test("garbage is collected before a load only when more than the threshold piled up since the last collection", () => {
  const MB = 2 ** 20;
  let anon = 20 * MB;
  let collections = 0;
  const pacer = new GarbagePacer(() => anon, () => {
    collections++;
    anon = 24 * MB; // what a collection leaves
  }, 32 * MB);
  anon += 8 * MB;
  expect(pacer.collectIfPiledUp("after 8 MB")).toBe(false);
  anon += 25 * MB; // 33 MB since the start
  expect(pacer.collectIfPiledUp("after 33 MB")).toBe(true);
  expect(collections).toBe(1);
  // measured again from what that collection left: what it freed does not count
  anon += 30 * MB;
  expect(pacer.collectIfPiledUp("30 MB after a collection")).toBe(false);
  pacer.collectNow("asked");
  expect(collections).toBe(2);
  anon += 33 * MB;
  expect(pacer.collectIfPiledUp("33 MB after the asked one")).toBe(true);
  expect(collections).toBe(3);
});
