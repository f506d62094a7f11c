import {
  compareVersions,
  isValidVersion,
  versionMatches,
  operatorMask,
  operatorText,
} from "../../../provider/apk/version";

// Pairs from apk-tools' test/version.data (A op B per line); the comparison must agree both ways.
const VECTORS = `
2.34 > 0.1.0_alpha
23_foo > 4_beta
1.0 < 1.0bc
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha < 0.1.3_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
1.0.4-r3 < 1.0.4-r4
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.2 < 1.3_alpha
1.3_alpha2 < 1.3_alpha3
0.7.0 < 0.8_beta1
3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
1.2.11 < 1.2.12.1
0.2.0-r1 = 0.2.0-r1
3.1_p16 < 3.1_p17
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
9.3.4-r2 > 9.3.4
2.59 < 20050718-r1
3.9.8-r5 > 2.01.01_alpha10
1.0 > 0.99.3.20040818
20060720 > 3.0.20060720
1.3.5-r10 > 1.3.5-r8
2.5.1-r8 < 2.5.1a-r1
1.4.4-r1 < 2.1.9.200602141850
2.0.0_rc3-r1 > 1.5
3.0.0-r2 < 021109-r3
0.9.16-r1 < 3.9_pre20060124
1.1.7 < 6b-r7
0.10.0-r1 > 0.10.0
0.10.0 < 0.10.1_rc1
1.0-r1 > 0.15.1b
0.15.1b-r2 > 0.15.1b
22.7-r1 < 22.7.3-r1
22.7 > 2.1_pre20
2.10.1 > 02.08.01b
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
1.07-r1 < 1.07.5
0.1_pre20060810 < 0.1_pre20060817
0.59s-r11 < 0.65
4.20 > 0.20070118
0.20070118 < 0.20070207_rc1
4.5_p1-r1 > 4.5_p1
0.9.8c-r1 < 0.9.8d
2.2.3-r2 < 013
013 < 014-r1
1.7 < 1.7b
1.8.5 < 1.8.5_p2
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
1.6.8_p12-r1 > 1.6.8_p9-r2
0.9.28-r2 < 0.9.28.1
0.9.28.1 < 087-r1
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
6.0_pre1 < 6.0
6.1_p1 > 6.1
`;

const flip = { "<": ">", ">": "<", "=": "=" } as const;

describe("apk version comparison", () => {
  const lines = VECTORS.trim().split("\n");
  test.each(lines)("%s", (line) => {
    const [a, op, b] = line.split(" ") as [string, "<" | "=" | ">", string];
    expect(compareVersions(a, b)).toBe(op);
    expect(compareVersions(b, a)).toBe(flip[op]);
  });

  test("suffix order _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p", () => {
    const order = ["1_alpha", "1_beta", "1_pre", "1_rc", "1", "1_cvs", "1_svn", "1_git", "1_hg", "1_p"];
    for (let i = 0; i + 1 < order.length; i++) expect(compareVersions(order[i]!, order[i + 1]!)).toBe("<");
  });

  // Every expectation below is what the real apk 2.14.4 answers (`apk version -t` / `-c` in
  // Alpine's 3.20.3 minirootfs); test/parity/alpine-data.test.ts asks it again.
  test("a part with leading zeros sorts by its count of zeros, then by its digits", () => {
    expect(compareVersions("1.05", "1.1")).toBe("<");
    expect(compareVersions("1.010", "1.09")).toBe(">");
    expect(compareVersions("1.001", "1.01")).toBe("<");
    expect(compareVersions("8.2.0", "8.2.001")).toBe(">"); // apk-tools 3 says "<"
    expect(compareVersions("1.5", "1.10")).toBe("<");
    expect(compareVersions("010", "9")).toBe(">"); // the first part is a plain number
  });

  test("numbers, letters and revisions", () => {
    expect(compareVersions("1.0-r10", "1.0-r9")).toBe(">");
    expect(compareVersions("12345678901234567", "12345678901234568")).toBe("<"); // 17 digits: exact
    expect(compareVersions("1.0a1", "1.0a")).toBe(">");
    expect(compareVersions("1.0a1", "1.0b")).toBe("<");
    expect(compareVersions("1-r1-r2", "1-r1-r3")).toBe("<");
    expect(compareVersions("1..2", "1.0.2")).toBe(">");
    expect(compareVersions("1_foo", "1")).toBe("<"); // an unknown suffix sorts like a pre-release
    // 18 digits make a version invalid; two invalid first parts compare equal
    expect(compareVersions("99999999999999999999999.1", "99999999999999999999998.2")).toBe("=");
    // apk 2.14 has no ~hash part: the text after "~" is not compared
    expect(compareVersions("1.0~abc", "1.0~abd")).toBe("=");
    expect(compareVersions("1.0~abc-r1", "1.0-r1")).toBe(">");
  });

  test("what apk 2.14 calls valid", () => {
    for (const v of [
      "1.0-1",
      "0r-10",
      "10.2.3-100",
      "1.0_foo",
      "1.0~",
      "1.0~XYZ",
      "1.0~abc123-r1",
      "1.0bc",
      "1.0 ",
      "1_rc1_p2.3",
      "999999999999999999",
      "1.0/2",
      "1.0\n",
    ]) {
      expect([v, isValidVersion(v)]).toEqual([v, false]);
    }
    for (const v of [
      "100",
      "1.0",
      "0-r1",
      "10.2.3-r100",
      "0.0.0_git20210122-r0",
      "0.20240527.191746-r2",
      "9100h-r4",
      "1.0_alpha_pre2",
      "2.12r-r4",
      "1_p",
      "6.04_pre1-r15",
      "99999999999999999",
      // valid for 2.14, refused by apk-tools 3:
      "",
      "a",
      "1.",
      "1..2",
      ".1",
      "0.1a1",
      "1.0-r",
      "1.0-r1-r2",
      "-r1",
      "_pre1",
      "0.1_",
    ]) {
      expect([v, isValidVersion(v)]).toEqual([v, true]);
    }
  });
});

describe("constraint matching", () => {
  const m = (v: string, op: string, c: string) => versionMatches(v, operatorMask(op), c);
  test("ordinary operators", () => {
    expect(m("1.2-r0", "=", "1.2-r0")).toBe(true);
    expect(m("1.2-r1", "=", "1.2-r0")).toBe(false);
    expect(m("1.2", "<", "1.3")).toBe(true);
    expect(m("1.3", "<=", "1.3")).toBe(true);
    expect(m("1.3", ">", "1.3")).toBe(false);
    expect(m("1.4", ">=", "1.3")).toBe(true);
  });
  test("~ is a token-wise prefix match", () => {
    expect(m("1.2.3-r4", "~", "1.2")).toBe(true);
    expect(m("1.2-r0", "~", "1.2")).toBe(true);
    expect(m("1.20", "~", "1.2")).toBe(false);
    expect(m("1.3", "~", "1.2")).toBe(false);
    expect(m("3.12.5-r0", "~", "3.12")).toBe(true);
    expect(m("1.2.3", ">~", "1.2")).toBe(true);
    expect(m("1.1", "<~", "1.2")).toBe(true);
    expect(m("1.3", "<~", "1.2")).toBe(false);
  });
  test("operator texts round trip", () => {
    for (const op of ["<", "<=", "=", "~", ">=", ">", "><", "<~", ">~"])
      expect(operatorText(operatorMask(op))).toBe(op);
    expect(operatorMask("=!")).toBe(0);
  });
  test("an unversioned provide satisfies only a dependency without a version, as in apk 2.14", () => {
    expect(versionMatches(undefined, operatorMask(">="), "2")).toBe(false);
    expect(versionMatches(undefined, operatorMask("<>="), undefined)).toBe(true);
  });
  test("~ holds when the tokens both versions have are equal (apk 2.14; apk-tools 3 wants a prefix)", () => {
    expect(versionMatches("3.8", operatorMask("~"), "3.8.1")).toBe(true);
    expect(versionMatches("3.8.2", operatorMask("~"), "3.8.1")).toBe(false);
  });
});
