/**
 * Real Alpine data, judged by the real apk 2.14.4 (Alpine's 3.20.3 minirootfs, chrooted, as
 * root): ramroot must read and order versions, and resolve packages, as it does.
 *
 * - versions: every version of a real Alpine index (3.23.3's, signed by Alpine:
 *   test/fixtures/alpine/README.md) and of the minirootfs' installed database, the versions in
 *   their dependencies and provides, apk-tools' own vectors (test/unit/version.data) and a
 *   deterministic set of generated ones: `apk version -c` and `apk version -t` against ramroot's
 *   isValidVersion/compareVersions and its `ramroot apk version`;
 * - fuzzy and versioned matches: the lines of apk-tools' vectors that are `A ~ B`, asked as
 *   `apk add --simulate 'name~B'` against a package at A;
 * - resolution: worlds resolved against the real signed index and against a signed index of
 *   versions apk 2.14 accepts and apk-tools 3 refuses (with a record ramroot skips), by
 *   `apk add --simulate` and by `ramroot apk resolve`: the same packages in the same order, or
 *   the same refusal.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { readApkindex, serializeApkindex } from "../../provider/apk/apkindex";
import { readIndexArchive } from "../../provider/apk/index-archive";
import type { PackageRecord } from "../../provider/apk/package-record";
import { compareVersions, isValidVersion, operatorMask, versionMatches, versionSort } from "../../provider/apk/version";
import { writeIndexArchive } from "../../provider/apk/index-archive";
import { alpineWorkspace, type AlpineWorkspace } from "../fixtures/alpine-minirootfs";
import { APK_2_14_ANSWERS, versionUnitVectors } from "../fixtures/apk-version-vectors";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";

jest.setTimeout(600_000);

const REAL_INDEX = path.join(__dirname, "..", "fixtures", "alpine", "alpine-3.23.3-x86_64-virt-iso-APKINDEX.tar.gz");

/** Runs a shell script in the workspace (chrooted, as the real apk runs). */
async function inAlpine(ws: AlpineWorkspace, script: string): Promise<string> {
  const r = await execa("chroot", [ws.dir, "/bin/sh", "-c", script], {
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    extendEnv: false,
    stdin: "ignore",
  });
  return String(r.stdout);
}

/** The version after the operator of each dependency/provide entry of a record. */
function constraintVersions(rec: PackageRecord): string[] {
  return [...rec.depends, ...rec.provides, ...rec.installIf]
    .map((d) => /^!?[^<>=~]+[<>=~]+(.+)$/.exec(d)?.[1])
    .filter((v): v is string => v !== undefined);
}

/** Versions made of the pieces apk's lexer cares about, from a fixed seed: the same set every run. */
function generatedVersions(count: number): [string, string][] {
  let seed = 0x2144;
  const next = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const PIECES = [
    "0",
    "1",
    "2",
    "9",
    "00",
    "01",
    "10",
    "007",
    "12345678901234567",
    "123456789012345678",
    ".",
    ".",
    "..",
    "_",
    "-r",
    "-r1",
    "-",
    "a",
    "b",
    "z",
    "r",
    "p",
    "_alpha",
    "_beta",
    "_pre",
    "_rc",
    "_cvs",
    "_svn",
    "_git",
    "_hg",
    "_p",
    "_post",
    "_foo",
    "~",
    "~abc",
  ];
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;
  const make = () => {
    const n = 1 + Math.floor(next() * 6);
    const parts = [pick(["0", "1", "2", "10", "1.0", "2.1", "0.1"])];
    for (let i = 1; i < n; i++) parts.push(pick(PIECES));
    return parts;
  };
  const pairs: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    const a = make();
    let b: string[];
    if (next() < 0.6) {
      // a near neighbour: the same pieces with one changed, added or dropped
      b = [...a];
      const at = Math.floor(next() * (b.length + 1));
      const op = next();
      if (op < 0.4 && at < b.length && at > 0) b[at] = pick(PIECES);
      else if (op < 0.7) b.splice(at, 0, pick(PIECES));
      else if (b.length > 1) b.splice(Math.max(1, at - 1), 1);
    } else {
      b = make();
    }
    pairs.push([a.join(""), b.join("")]);
  }
  return pairs;
}

describe("real Alpine data against the real apk 2.14.4", () => {
  let ws: AlpineWorkspace;
  let cli: CompiledCli;
  let realRecords: PackageRecord[];
  let installedRecords: PackageRecord[];

  beforeAll(async () => {
    ws = alpineWorkspace();
    cli = await compileCli();
    fs.mkdirSync(ws.host("/real/x86_64"), { recursive: true });
    fs.copyFileSync(REAL_INDEX, ws.host("/real/x86_64/APKINDEX.tar.gz"));
    realRecords = readApkindex(
      readIndexArchive(fs.readFileSync(REAL_INDEX), { keys: new Map(), allowUntrusted: true, source: REAL_INDEX })
        .apkindexText,
    ).records;
    installedRecords = readApkindex(fs.readFileSync(ws.host("/lib/apk/db/installed"), "utf8")).records;
    // an empty root for `apk add --simulate` and `ramroot apk resolve --root`
    fs.mkdirSync(ws.host("/roots/empty"), { recursive: true });
    const init = await ws.apk(["--root", "/roots/empty", "--initdb", "add"]);
    if (init.code !== 0) throw new Error(`apk --initdb: ${JSON.stringify(init)}`);
  });

  afterAll(() => {
    cli?.dispose();
    ws?.dispose();
  });

  test("validity: every real, vector and generated version is valid for ramroot exactly when `apk version -c` says so", async () => {
    const real = [...realRecords, ...installedRecords].flatMap((r) => [r.version, ...constraintVersions(r)]);
    expect(real).toEqual(expect.arrayContaining(["6.5_p20251123-r0", "20251016.3.1-r0", "2025c-r0", "1.36.1-r29"]));
    const vectors = versionUnitVectors().flatMap((v) =>
      v.kind === "valid" ? [v.version] : v.kind === "compare" || v.kind === "match" ? [v.a, v.b] : [],
    );
    const all = [...new Set([...real, ...vectors, ...generatedVersions(400).flat()])].filter((v) => v !== "");
    fs.writeFileSync(ws.host("/tmp/versions"), all.join("\n") + "\n");
    const apkInvalid = new Set(
      (
        await inAlpine(
          ws,
          'set --; while IFS= read -r v; do set -- "$@" "$v"; done < /tmp/versions; /sbin/apk version -c -- "$@"; true',
        )
      )
        .split("\n")
        .filter((l) => l !== ""),
    );
    expect(apkInvalid.size).toBeGreaterThan(50); // the generated set holds invalid versions too
    expect(all.filter((v) => !isValidVersion(v))).toEqual(all.filter((v) => apkInvalid.has(v)));
    // every real version is valid, as abuild (apk version --check) saw to
    expect(real.filter((v) => apkInvalid.has(v))).toEqual([]);
    const ours = await cli.run(["apk", "version", "-c"], all.join("\n") + "\n");
    expect(ours.stdout.split("\n").filter((l) => l !== "")).toEqual(all.filter((v) => apkInvalid.has(v)));
    // the empty version is valid for apk 2.14 too
    expect((await ws.apk(["version", "-c", "--", ""])).code).toBe(0);
    expect(isValidVersion("")).toBe(true);
  });

  test("order: ramroot's comparison of real, vector and generated pairs is `apk version -t`'s", async () => {
    const sorted = [...new Set([...realRecords, ...installedRecords].map((r) => r.version))].sort(versionSort);
    const vectorPairs = versionUnitVectors()
      .slice(733) // the first 733 lines are test/version.data, held line by line in the unit tests
      .flatMap((v) => (v.kind === "compare" ? [[v.a, v.b] as [string, string]] : []));
    const pairs: [string, string][] = [
      ...sorted.slice(1).map((v, i) => [sorted[i]!, v] as [string, string]),
      ...vectorPairs,
      ...generatedVersions(300),
    ];
    fs.writeFileSync(ws.host("/tmp/pairs"), pairs.map(([a, b]) => `${a} ${b}`).join("\n") + "\n");
    const apk = (
      await inAlpine(ws, 'while read -r a b; do /sbin/apk version -t -- "$a" "$b"; done < /tmp/pairs')
    ).split("\n");
    expect(apk).toHaveLength(pairs.length);
    const differ = pairs
      .map(([a, b], i) => ({ pair: `${a} ${b}`, apk: apk[i], ramroot: compareVersions(a, b) }))
      .filter((d) => d.apk !== d.ramroot);
    expect(differ).toEqual([]);
    // the real versions sort strictly (no two equal), adjacent pairs ascending
    expect(new Set(apk.slice(0, sorted.length - 1))).toEqual(new Set(["<"]));
    // the vector lines where 2.14 differs from apk-tools 3's file: apk says what APK_2_14_ANSWERS says
    for (const [i, [a, b]] of vectorPairs.entries()) {
      const line = versionUnitVectors().find((v) => v.kind === "compare" && v.a === a && v.b === b)!;
      expect([line.line, apk[sorted.length - 1 + i]]).toEqual([line.line, line.answer]);
    }
    const ours = await cli.run(["apk", "version", "-t"], pairs.map(([a, b]) => `${a} ${b}`).join("\n") + "\n");
    expect(ours.stdout.split("\n").slice(0, -1)).toEqual(apk);
  });

  test("fuzzy and versioned matches: `apk add --simulate 'name~B'` against a package at A, as versionMatches says", async () => {
    const matches = versionUnitVectors().flatMap((v) => (v.kind === "match" ? [v] : []));
    expect(matches).toHaveLength(16);
    const records = matches.map((m, i) => record(`fz${i}`, m.a));
    const { keys } = signedIndex(ws, "/fuzzy", records);
    for (const [i, m] of matches.entries()) {
      const real = await ws.apk([
        "--root",
        "/roots/empty",
        "--simulate",
        "--keys-dir",
        keys,
        "--repository",
        "/fuzzy",
        "add",
        `fz${i}${m.op}${m.b}`,
      ]);
      const ours = versionMatches(m.a, operatorMask(m.op), m.b);
      expect({ line: m.line, apk: real.code === 0, ramroot: ours }).toEqual({
        line: m.line,
        apk: m.answer,
        ramroot: m.answer,
      });
    }
    expect(APK_2_14_ANSWERS.get("3.8 !~ 3.8.1")?.answer).toBe(true);
  });

  /** `apk add --simulate WORLD` and `ramroot apk resolve WORLD` on the empty root: the same plan or the same refusal. */
  async function resolveBoth(
    repo: { apkDir: string; hostIndex: string; keys: string; hostKeys: string },
    world: string[],
  ) {
    const real = await ws.apk([
      "--root",
      "/roots/empty",
      "--simulate",
      "--keys-dir",
      repo.keys,
      "--repository",
      repo.apkDir,
      "add",
      ...world,
    ]);
    const ours = await cli.run([
      "apk",
      "resolve",
      "--root",
      ws.host("/roots/empty"),
      "--keys",
      repo.hostKeys,
      "--repository",
      repo.hostIndex,
      ...world,
    ]);
    // a plan is its "(n/N) Installing name (version)" lines; a refusal is apk's report, which
    // ramroot's error message holds (after naming the world entry, and followed by why)
    const plan = (out: string) => out.split("\n").filter((l) => /^\(\d+\/\d+\) /.test(l));
    if (real.code === 0) {
      expect({ world, ramroot: ours.code === 0 && (JSON.parse(ours.stdout) as { changes: string[] }).changes }).toEqual(
        {
          world,
          ramroot: plan(real.stdout),
        },
      );
      return plan(real.stdout);
    }
    const report = real.stderr.trim().replace(/^ERROR: /, "");
    expect({ world, code: ours.code, holds: ours.stderr.includes(report) || ours.stderr }).toEqual({
      world,
      code: 1,
      holds: true,
    });
    return report;
  }

  test("resolution against Alpine's own signed 3.23.3 index: the packages and order of the real apk", async () => {
    const index = await cli.run([
      "apk",
      "index",
      "--keys",
      ws.host("/etc/apk/keys"),
      ws.host("/real/x86_64/APKINDEX.tar.gz"),
    ]);
    expect(index.code).toBe(0);
    expect(JSON.parse(index.stdout)).toMatchObject({
      signer: "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
      verified: true,
      description: "3.23.3",
      packageCount: 102,
      skipped: [],
    });
    const repo = {
      apkDir: "/real",
      hostIndex: ws.host("/real/x86_64/APKINDEX.tar.gz"),
      keys: "/etc/apk/keys",
      hostKeys: ws.host("/etc/apk/keys"),
    };
    for (const world of [
      ["alpine-base", "openssh", "chrony"],
      ["alpine-base", "tiny-cloud-nocloud", "openntpd"],
      ["network-extras"],
      ["openssh-server", "e2fsprogs-extra", "wget", "doas"],
      ["apk-tools>=3.0", "musl~1.2"],
    ]) {
      expect(await resolveBoth(repo, world)).toEqual(expect.arrayContaining([expect.stringMatching(/Installing/)]));
    }
  });

  test("resolution with versions apk 2.14 accepts and apk-tools 3 refuses, beside a record ramroot skips", async () => {
    const records = [
      record("odd", "0.1a1-r0"),
      record("odd", "0.1a2-r0"),
      record("odd", "0.1-r"),
      record("pre", "6.04_pre1-r15"),
      record("pre", "6.03-r0"),
      record("rr", "1.0-r1-r2"),
      record("rr", "1.0-r1-r10"),
      record("prov", "1.0-r0", { provides: ["virt"] }),
      record("user", "1.0-r0", { depends: ["virt>=1"] }),
      record("hashed", "1.0~abc-r0"),
      // a record ramroot cannot use (its name would leave the repository directory): skipped, named
      record("../../evil", "1.0-r0"),
    ];
    const repo = signedIndex(ws, "/odd", records);
    const progress = await cli.run(["apk", "index", "--keys", repo.hostKeys, repo.hostIndex]);
    expect(progress.stderr).toMatch(
      /WARNING: .*APKINDEX\.tar\.gz:\d+: package "\.\.\/\.\.\/evil-1\.0-r0" skipped: package name/,
    );
    expect((JSON.parse(progress.stdout) as { packageCount: number }).packageCount).toBe(records.length - 1);
    for (const world of [
      ["odd"],
      ["odd<0.1a2"],
      ["odd>=0.1a1"],
      ["odd~0.1a"],
      ["pre"],
      ["pre<6.04"],
      ["rr"],
      ["rr<1.0-r1-r3"],
      ["hashed>1.0"],
      ["prov", "user"],
    ])
      await resolveBoth(repo, world);
    // the refusals are among them
    expect(await resolveBoth(repo, ["prov", "user"])).toContain("breaks: user-1.0-r0[virt>=1]");
    expect(await resolveBoth(repo, ["odd>=0.1bc"])).toContain("'odd>=0.1bc' is not a valid world dependency");
  });
});

/** An index record with a checksum of its own (apk keys packages by it), for an index-only repository. */
function record(name: string, version: string, extra: Partial<PackageRecord> = {}): PackageRecord {
  const sha1 = crypto.createHash("sha1").update(`${name}-${version}`).digest("base64");
  return {
    checksum: `Q1${sha1}`,
    name,
    version,
    arch: "x86_64",
    size: 1,
    installedSize: 1,
    description: name,
    depends: [],
    provides: [],
    installIf: [],
    replaces: [],
    ...extra,
  };
}

/** A signed index of `records` at <workspace>/<dir>/x86_64 (no packages: `--simulate` reads only the index), with its key. */
function signedIndex(ws: AlpineWorkspace, dir: string, records: PackageRecord[]) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const keyName = "ramroot-parity@example.org-1.rsa.pub";
  const keys = `${dir}-keys`;
  fs.mkdirSync(ws.host(keys), { recursive: true });
  fs.writeFileSync(path.join(ws.host(keys), keyName), publicKey);
  fs.mkdirSync(ws.host(`${dir}/x86_64`), { recursive: true });
  const hostIndex = ws.host(`${dir}/x86_64/APKINDEX.tar.gz`);
  fs.writeFileSync(
    hostIndex,
    writeIndexArchive(serializeApkindex(records), "ramroot parity", { keyName, privateKeyPem: privateKey }),
  );
  return { apkDir: dir, hostIndex, keys, hostKeys: ws.host(keys) };
}
