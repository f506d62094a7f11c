/**
 * The differential oracle: the real apk-tools 2.14.4 (Alpine's 3.20.3 minirootfs, chrooted, as
 * root) against ramroot, on one signed repository built with ramroot's own `pkg build` +
 * `repo index` code (test/fixtures/parity-repo.ts: scripts, a trigger, a user made by
 * pre-install, owners by name and number, setuid/setgid/sticky, symlinks, hard links, provider
 * priority, install_if, a conflict, replaces, a directories-only package, a failing script, two
 * packages owning one file, a post-install chown/chmod).
 *
 * The same world goes into two empty roots, one by `apk add --root R --initdb`, one by
 * `ramroot apk install`; then the real apk runs `del`, `fix` and `upgrade` (to a newer
 * repository) on both roots. After every step the two must hold the same installed db, world,
 * triggers, scripts.tar (names and contents, in order), script log and tree (owners, modes,
 * links, contents, package mtimes). Every difference that remains is listed in NORMALISED with
 * its reason; anything else fails the test.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { collectEntries } from "../../provider/image/tree-entries";
import { installPackages } from "../../provider/apk/install";
import { loadRepositories, packageLocator } from "../../provider/apk/repository";
import { resolvePackages } from "../../provider/apk/solver";
import { loadKeysDir } from "../../provider/apk/signature";
import { alpineWorkspace, cachedMinirootfs, type AlpineWorkspace } from "../fixtures/alpine-minirootfs";
import { buildParityRepos, BUILD_TIME, PARITY_WORLD, type ParityRepos } from "../fixtures/parity-repo";
import { compileCli, type CompiledCli, type CliRun } from "../fixtures/ramroot-cli";
import { step } from "../fixtures/scenario-step";
import {
  readText,
  scriptsTarEntries,
  snapshotRoot,
  type PathState,
  type RootSnapshot,
} from "../fixtures/root-snapshot";

jest.setTimeout(600_000);

/** Paths whose difference is known and why; compared nowhere else unless said. */
const NORMALISED: { pattern: RegExp; side: "apk" | "ramroot" | "both"; reason: string }[] = [
  {
    pattern: /^lib\/apk\/db\/lock$/,
    side: "apk",
    reason: "apk's lock file, created whenever apk opens a database for writing; ramroot takes no lock",
  },
  {
    pattern: /^etc\/apk\/keys(\/.*)?$/,
    side: "ramroot",
    reason:
      "ramroot installs the trusted public keys so the machine's own apk can verify its repositories; apk add --keys-dir reads them from outside the root",
  },
  {
    pattern: /^lib\/apk\/db\/scripts\.tar$/,
    side: "both",
    reason:
      "compared by entry names and contents in order (tar header bytes differ: apk writes the GNU 'ustar  ' magic)",
  },
  {
    pattern: /^tmp\/(order|seen)\.log$/,
    side: "both",
    reason:
      "what scripts did and saw is compared line by line (trigger arguments as a set: apk passes them in its hash-table order)",
  },
];

/** Test start: a file mtime at or after it was written during the run (the two runs' clocks differ). */
const START = Math.floor(Date.now() / 1000) - 1;

function normalised(p: string, side: "apk" | "ramroot" | "both"): boolean {
  return NORMALISED.some((n) => n.pattern.test(p) && (n.side === side || n.side === "both"));
}

function comparable(s: PathState): PathState {
  // mtimes of files written while installing (scripts, apk's own db) are the clock, not the package
  if (s.mtime !== undefined && s.mtime >= START) return { ...s, mtime: undefined };
  return s;
}

/** Differences between the apk-made and the ramroot-made root that NORMALISED does not explain. */
function unexplained(apkRoot: RootSnapshot, ramrootRoot: RootSnapshot): string[] {
  const out: string[] = [];
  for (const p of [...new Set([...apkRoot.keys(), ...ramrootRoot.keys()])].sort()) {
    const a = apkRoot.get(p);
    const r = ramrootRoot.get(p);
    if (!r) {
      if (!normalised(p, "apk")) out.push(`${p}: only in apk's root ${JSON.stringify(a)}`);
    } else if (!a) {
      if (!normalised(p, "ramroot")) out.push(`${p}: only in ramroot's root ${JSON.stringify(r)}`);
    } else if (!normalised(p, "both") && JSON.stringify(comparable(a)) !== JSON.stringify(comparable(r))) {
      out.push(`${p}: apk ${JSON.stringify(comparable(a))} ramroot ${JSON.stringify(comparable(r))}`);
    }
  }
  return out;
}

function logLines(root: string, file: string): string[] {
  return (readText(root, file) ?? "")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const m = /^(\S+ trigger) (.*)$/.exec(l);
      return m ? `${m[1]} ${m[2]!.split(" ").sort().join(" ")}` : l;
    });
}

/** Compares everything the two roots hold; returns what differs beyond NORMALISED. */
function compareRoots(ws: AlpineWorkspace): Record<string, unknown> {
  const a = ws.host("/roots/apk");
  const r = ws.host("/roots/ramroot");
  return {
    installed: readText(r, "lib/apk/db/installed") === readText(a, "lib/apk/db/installed") || {
      apk: readText(a, "lib/apk/db/installed"),
      ramroot: readText(r, "lib/apk/db/installed"),
    },
    world: readText(r, "etc/apk/world") === readText(a, "etc/apk/world") || {
      apk: readText(a, "etc/apk/world"),
      ramroot: readText(r, "etc/apk/world"),
    },
    triggers: readText(r, "lib/apk/db/triggers") === readText(a, "lib/apk/db/triggers") || {
      apk: readText(a, "lib/apk/db/triggers"),
      ramroot: readText(r, "lib/apk/db/triggers"),
    },
    repositories: readText(r, "etc/apk/repositories") === readText(a, "etc/apk/repositories") || {
      apk: readText(a, "etc/apk/repositories"),
      ramroot: readText(r, "etc/apk/repositories"),
    },
    scriptsTar: JSON.stringify(scriptsTarEntries(r)) === JSON.stringify(scriptsTarEntries(a)) || {
      apk: scriptsTarEntries(a).map((e) => e.name),
      ramroot: scriptsTarEntries(r).map((e) => e.name),
    },
    order: JSON.stringify(logLines(r, "tmp/order.log")) === JSON.stringify(logLines(a, "tmp/order.log")) || {
      apk: logLines(a, "tmp/order.log"),
      ramroot: logLines(r, "tmp/order.log"),
    },
    // Scripts see the same cwd, environment, /proc and /dev/null.
    seen: JSON.stringify(logLines(r, "tmp/seen.log").map((l) => l)) ===
      JSON.stringify(logLines(a, "tmp/seen.log").map((l) => l)) || {
      apk: logLines(a, "tmp/seen.log"),
      ramroot: logLines(r, "tmp/seen.log"),
    },
    tree: unexplained(snapshotRoot(a), snapshotRoot(r)),
  };
}

const SAME = {
  installed: true,
  world: true,
  triggers: true,
  repositories: true,
  scriptsTar: true,
  order: true,
  seen: true,
  tree: [],
};

/** Starts each step's script logs afresh in both roots. */
function clearLogs(ws: AlpineWorkspace): void {
  for (const root of ["/roots/apk", "/roots/ramroot"])
    for (const f of ["tmp/order.log", "tmp/seen.log"]) fs.rmSync(ws.host(path.join(root, f)), { force: true });
}

describe("ramroot against the real apk 2.14.4", () => {
  let ws: AlpineWorkspace;
  let repos: ParityRepos;
  let cli: CompiledCli;
  let apkAdd: CliRun;
  let ramrootInstall: CliRun;

  beforeAll(async () => {
    ws = alpineWorkspace();
    repos = buildParityRepos(ws.host("/parity"), cachedMinirootfs());
    cli = await compileCli();
    fs.mkdirSync(ws.host("/roots/apk"), { recursive: true });
    apkAdd = await ws.apk([
      "add",
      "--root",
      "/roots/apk",
      "--initdb",
      "--keys-dir",
      "/parity/keys",
      "--repository",
      "/parity/repo-v1",
      ...PARITY_WORLD,
    ]);
    ramrootInstall = await cli.run([
      "apk",
      "install",
      "--root",
      ws.host("/roots/ramroot"),
      "--keys",
      repos.keysDir,
      "--repository",
      repos.v1,
      ...PARITY_WORLD,
    ]);
  });

  afterAll(() => {
    cli?.dispose();
    ws?.dispose();
  });

  /** `ramroot apk resolve --root` on the ramroot-made root against the real apk's --simulate there. */
  async function resolveAsApk(cases: { apk: string[]; ramroot: string[] }[]): Promise<void> {
    const root = ws.host("/roots/ramroot");
    for (const c of cases) {
      const real = await ws.apk(["--root", "/roots/ramroot", "--keys-dir", "/parity/keys", "--simulate", ...c.apk]);
      const ours = await cli.run(["apk", "resolve", "--root", root, "--keys", repos.keysDir, ...c.ramroot]);
      expect(ours.code).toBe(0);
      const lines = real.stdout.split("\n").filter((l) => /^\(\d+\/\d+\) /.test(l));
      if (lines.length === 0) throw new Error(`real apk ${c.apk.join(" ")} changes nothing: ${JSON.stringify(real)}`);
      expect((JSON.parse(ours.stdout) as { changes: string[] }).changes).toEqual(lines);
    }
  }

  // One scenario: the steps after the install change both roots (del, fix, add, upgrade), each
  // judged against the real apk on its twin root, so they run in this order as one test.
  test("both roots through the real apk's lifecycle: install alike, then del, fix, resolve and upgrade alike", async () => {
    await step(
      "install: the same packages flagged, the same exit code (a failing script and a file two packages own: 2 errors)",
      () => {
        expect(apkAdd.stdout).toMatch(/2 errors; .* in 15 packages/);
        expect(apkAdd.stderr).toContain("clash-b-1.0-r0: trying to overwrite etc/clash owned by clash-a-1.0-r0.");
        expect(ramrootInstall.stderr).toContain(
          "clash-b-1.0-r0: trying to overwrite etc/clash owned by clash-a-1.0-r0.",
        );
        expect(ramrootInstall.stdout).toMatch(/2 errors; 15 packages/);
        expect(ramrootInstall.code).toBe(apkAdd.code);
        const db = readText(ws.host("/roots/ramroot"), "lib/apk/db/installed")!;
        expect(db).toMatch(/\nP:fails\n[^]*?\nf:s\n/);
        expect(db).toMatch(/\nP:clash-b\n[^]*?\nf:f\n/);
        // the directories-only package is installed without being opened
        expect(db).toMatch(
          /\nP:dirs-only\nV:1\.0-r0\nA:x86_64\nS:\d+\nI:0\nT:dirs-only\nU:\nL:\no:dirs-only\nt:\d+\n\n/,
        );
      },
    );

    await step("install: db, world, triggers, scripts.tar, script log and tree are apk's", () => {
      expect(compareRoots(ws)).toEqual(SAME);
      // the points the oracle is there for, checked directly as well
      const tree = snapshotRoot(ws.host("/roots/ramroot"));
      expect(tree.get("usr/bin/suidtool")).toMatchObject({ mode: "4755", uid: 0 });
      expect(tree.get("tmp")).toMatchObject({ mode: "1777" });
      expect(tree.get("etc/shadow")).toMatchObject({ gid: 42, mode: "640" });
      expect(tree.get("var/lib/app")).toMatchObject({ uid: 1234, gid: 1234, mode: "750" });
      expect(tree.get("usr/share/app/numeric")).toMatchObject({ uid: 4321, gid: 4321 });
      expect(tree.get("usr/share/app/changed")).toMatchObject({ uid: 1234, gid: 1234, mode: "600", mtime: BUILD_TIME });
      expect(tree.get("usr/lib/links/hard")!.links).toEqual(["usr/lib/links/real"]);
      expect(scriptsTarEntries(ws.host("/roots/ramroot"))[0]!.name).toMatch(
        /^busybox-1\.36\.1-r29\.Q1[A-Za-z0-9+/]{27}=\.post-install$/,
      );
    });

    await step("real apk del on both roots: pre-deinstall scripts found in scripts.tar, the same result", async () => {
      clearLogs(ws);
      const args = ["--keys-dir", "/parity/keys", "--repository", "/parity/repo-v1", "del", "app", "links"];
      const a = await ws.apk(["--root", "/roots/apk", ...args]);
      const r = await ws.apk(["--root", "/roots/ramroot", ...args]);
      expect(r.code).toBe(a.code);
      expect(r.stdout.replace(/\d+ MiB/, "")).toBe(a.stdout.replace(/\d+ MiB/, ""));
      expect(logLines(ws.host("/roots/ramroot"), "tmp/order.log")).toEqual(
        expect.arrayContaining(["app pre-deinstall 1.0-r0", "app post-deinstall 1.0-r0"]),
      );
      expect(compareRoots(ws)).toEqual(SAME);
    });

    await step("real apk fix on both roots: the flagged packages reinstalled alike", async () => {
      clearLogs(ws);
      const args = ["--keys-dir", "/parity/keys", "--repository", "/parity/repo-v1", "fix"];
      const a = await ws.apk(["--root", "/roots/apk", ...args]);
      const r = await ws.apk(["--root", "/roots/ramroot", ...args]);
      expect(r.code).toBe(a.code);
      expect(r.stdout.replace(/\d+ MiB/, "")).toBe(a.stdout.replace(/\d+ MiB/, ""));
      expect(a.stdout).toMatch(/Reinstalling (clash-b|fails)/);
      expect(compareRoots(ws)).toEqual(SAME);
    });

    await step("ramroot apk resolve --root answers as the real apk's simulated add and del on that root", async () => {
      await resolveAsApk([
        {
          apk: ["--repository", "/parity/repo-v1", "add", "app", "links"],
          ramroot: ["--repository", repos.v1, "app", "links"],
        },
        {
          apk: ["--repository", "/parity/repo-v1", "del", "over-b", "suid"],
          ramroot: ["--repository", repos.v1, "--del", "over-b", "--del", "suid"],
        },
        { apk: ["--repository", "/parity/repo-v2", "add", "app"], ramroot: ["--repository", repos.v2, "app"] },
      ]);
    });

    await step(
      "real apk upgrade from a newer repository on both roots: upgrade scripts, removed and added files alike",
      async () => {
        clearLogs(ws);
        for (const root of ["/roots/apk", "/roots/ramroot"])
          await ws.apk(["--root", root, "--keys-dir", "/parity/keys", "--repository", "/parity/repo-v1", "add", "app"]);
        clearLogs(ws);
        await resolveAsApk([
          { apk: ["--repository", "/parity/repo-v2", "upgrade"], ramroot: ["--repository", repos.v2, "--upgrade"] },
        ]);
        const args = ["--keys-dir", "/parity/keys", "--repository", "/parity/repo-v2", "upgrade"];
        const a = await ws.apk(["--root", "/roots/apk", ...args]);
        const r = await ws.apk(["--root", "/roots/ramroot", ...args]);
        expect(r.code).toBe(a.code);
        expect(a.stdout).toMatch(/Upgrading app \(1\.0-r0 -> 1\.1-r0\)/);
        expect(logLines(ws.host("/roots/ramroot"), "tmp/order.log")).toEqual(
          expect.arrayContaining(["app pre-upgrade 1.1-r0 1.0-r0", "app post-upgrade 1.1-r0 1.0-r0"]),
        );
        expect(fs.existsSync(ws.host("/roots/ramroot/usr/share/app/only-in-1"))).toBe(false);
        expect(compareRoots(ws)).toEqual(SAME);
      },
    );
  });

  test("the image keeps the packages' owners and modes and what the scripts changed", async () => {
    const root = ws.host("/roots/image");
    const keys = loadKeysDir(repos.keysDir);
    const loaded = await loadRepositories([repos.v1], { arch: "x86_64", keys });
    const lock = resolvePackages(
      ["app", "suid", "links"],
      loaded.flatMap((l) => l.packages),
      { arch: "x86_64" },
    );
    const result = await installPackages({
      root,
      lock,
      arch: "x86_64",
      keys,
      locate: packageLocator(loaded),
      cacheDir: ws.host("/cache"),
    });
    expect(result.errors).toBe(0);
    const entries = new Map(collectEntries(root, result.manifest, new Set()).map((e) => [e.path, e]));
    expect(entries.get("usr/share/app/changed")).toMatchObject({ uid: 1234, gid: 1234, mode: 0o600 });
    expect(entries.get("usr/bin/suidtool")).toMatchObject({ uid: 0, mode: 0o4755 });
    expect(entries.get("tmp")).toMatchObject({ mode: 0o1777 });
    expect(entries.get("etc/shadow")).toMatchObject({ gid: 42, mode: 0o640 });
    expect(entries.get("var/lib/app/data")).toMatchObject({ uid: 1234, gid: 1234, mode: 0o640 });
    expect(entries.get("usr/share/shared-dir")).toMatchObject({ gid: 50, mode: 0o2775 });
  });
});
