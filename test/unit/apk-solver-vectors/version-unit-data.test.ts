/**
 * Every line of apk-tools' test/unit/version.data (data/version-unit.data): comparisons, fuzzy
 * matches and validity, answered as apk 2.14 answers them (test/fixtures/apk-version-vectors.ts
 * lists the lines where 2.14 differs from the apk-tools 3 file; the parity test asks the real
 * apk 2.14.4 each of them).
 */
import { compareVersions, isValidVersion, operatorMask, versionMatches } from "../../../provider/apk/version";
import { APK_2_14_ANSWERS, versionUnitVectors } from "../../fixtures/apk-version-vectors";

const VECTORS = versionUnitVectors();
const MIRROR = { "<": ">", "=": "=", ">": "<" } as const;

test("the file is read whole: comparisons, fuzzy matches and validity lines", () => {
  const kinds = VECTORS.reduce<Record<string, number>>((n, v) => ({ ...n, [v.kind]: (n[v.kind] ?? 0) + 1 }), {});
  expect(kinds).toEqual({ compare: 738, match: 16, valid: 31 });
});

test.each(VECTORS.map((v) => [v.line, v] as const))("%s", (_line, v) => {
  const why = APK_2_14_ANSWERS.get(v.line)?.why;
  if (v.kind === "compare") {
    expect([compareVersions(v.a, v.b), why]).toEqual([v.answer, why]);
    expect(compareVersions(v.b, v.a)).toBe(MIRROR[v.answer]);
  } else if (v.kind === "match") {
    expect([versionMatches(v.a, operatorMask(v.op), v.b), why]).toEqual([v.answer, why]);
  } else {
    expect([isValidVersion(v.version), why]).toEqual([v.answer, why]);
  }
});
