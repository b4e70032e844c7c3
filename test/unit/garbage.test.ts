import { expect, test } from "bun:test";
import { collectGarbage, collectIfPiledUp } from "../../src/garbage.ts";

/** `mb` MB of memory made resident (every page written) and let go */
function garbage(mb: number): void {
  new Uint8Array(mb << 20).fill(1);
}

test("garbage is collected before a load only when more than 32 MB piled up since the last collection", () => {
  collectGarbage("test baseline");
  garbage(8);
  expect(collectIfPiledUp("after 8 MB")).toBe(false);
  garbage(48);
  expect(collectIfPiledUp("after 56 MB")).toBe(true);
  // measured again from that collection: what it freed does not count
  expect(collectIfPiledUp("right after a collection")).toBe(false);
});
