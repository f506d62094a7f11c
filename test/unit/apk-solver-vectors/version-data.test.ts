/**
 * Every line of apk-tools' test/version.data (data/version.data): "A op B", op one of < = >, with
 * optional "# comment". ramroot's comparison must give op for (A, B) and the mirror for (B, A).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { compareVersions } from "../../../provider/apk/version";
import { DATA_DIR, readVersionData } from "./vector-file";

const VERSION_PAIRS = readVersionData();

const MIRROR = { "<": ">", "=": "=", ">": "<" } as const;

test("version.data is read whole", () => {
  expect(VERSION_PAIRS.length).toBe(
    fs.readFileSync(path.join(DATA_DIR, "version.data"), "utf8").trim().split("\n").length,
  );
});

test.each(VERSION_PAIRS.map((p, i) => [i + 1, p.a, p.op, p.b] as const))("line %i: %s %s %s", (_line, a, op, b) => {
  expect(compareVersions(a, b)).toBe(op);
  expect(compareVersions(b, a)).toBe(MIRROR[op]);
});
