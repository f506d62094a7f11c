/**
 * apk-tools' own solver test cases (data/*.test with their data/*.repo indexes, see data/README.md),
 * run against ramroot's solver in-process: the install order (name and version, in apk's order)
 * or the "unable to select packages" report must be apk's, line for line.
 */
import * as path from "node:path";
import { apkOutput, ramrootOutput, readVector, vectorFiles } from "./vector-file";

/**
 * Vectors ramroot does not reproduce yet: name -> how its answer differs and why. Each runs as
 * test.failing, so it starts failing (and must move out of this list) the day ramroot agrees.
 */
const KNOWN_DIFFERENCES: Record<string, string> = {};

const vectors = vectorFiles().map(readVector);

test("the vector set is the one data/README.md lists", () => {
  expect(vectors.map((v) => v.name)).toEqual(
    expect.arrayContaining([
      "basic1",
      "conflict2",
      "installif2",
      "installif10",
      "provides17",
      "error10",
      "basic3",
      "upgrade1",
      "pinning4",
      "pinning10",
      "basic17",
      "basic18",
      "installif4",
      "provides18",
      "provides-swap3",
      "basic5",
      "basic13",
      "pinning8",
      "pinning11",
      "complicated1",
      "error5",
      "fuzzy3",
      "installif6",
      "provides22",
      "provides-prio4",
      "error2",
      "error4",
      "pinning15",
    ]),
  );
  for (const v of vectors) {
    // add, del and upgrade, from an empty root or an installed database + world (see data/README.md).
    expect(["add", "del", "upgrade"]).toContain(v.applet);
    expect(v.expect).not.toBe("");
  }
});

describe.each(vectors.map((v) => [v.name, v] as const))("%s", (name, v) => {
  const run = KNOWN_DIFFERENCES[name] ? test.failing : test;
  run(
    `apk ${[...v.options, v.applet, ...v.packages].join(" ")} (${v.repos.map((r) => path.basename(r)).join(", ") || "no repository"})`,
    () => {
      const want = apkOutput(v);
      const got = ramrootOutput(v);
      if (v.repos.length === 0) {
        // Argument errors (error8-10): apk's message, which ramroot's also names the world entry around.
        expect(want.startsWith("ERROR: ")).toBe(true);
        expect(got).toContain(want.slice("ERROR: ".length));
      } else {
        expect(got).toBe(want);
      }
    },
  );
});
