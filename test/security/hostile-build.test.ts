/**
 * Hostile packages, overlays, indexes and configs, each a small signed repository built with
 * ramroot's own package and index code, run through the real `ramroot` CLI (`build`,
 * `apk install`). Canary files outside the staging root are planted and checked (bytes, modes,
 * owners, presence) after every run. As root; the sandbox case also as an unprivileged user.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";
import { cachedMinirootfs } from "../fixtures/alpine-minirootfs";
import { plantCanaries } from "../fixtures/host-canaries";
import { hostileBuilds, type HostileBuilds } from "../fixtures/hostile-builds";
import { buildRepo, signingKey, userland, writeSignedIndex, type SigningKey } from "../fixtures/hostile-repo";
import { indexRecords } from "../../provider/apk/repository-index";
import { readGzipMember } from "../../provider/apk/gzip-members";
import * as zlib from "node:zlib";

jest.setTimeout(600_000);

let cli: CompiledCli;
let work: string;
let minirootfs: string;
let key: SigningKey;
let writeConfig: HostileBuilds["writeConfig"];
let build: HostileBuilds["build"];
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  cli = await compileCli();
  // The compiled CLI and the work tree are read by an unprivileged user in one case.
  const cliDir = path.resolve(JSON.parse(/require\((".*?")\)/.exec(cli.script)![1]!), "../../../..");
  fs.chmodSync(cliDir, 0o755);
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-hostile-"));
  fs.chmodSync(work, 0o755);
  minirootfs = cachedMinirootfs();
  key = signingKey(path.join(work, "key"));
  ({ writeConfig, build } = hostileBuilds(cli, key));
});
afterAll(() => {
  cli?.dispose();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function caseDir(name: string): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

describe("symlinks a package or the overlay put in the tree never lead ramroot's own steps out of the root", () => {
  test("lib/apk/db, etc/apk/world, lib/firmware, etc/hostname, boot and an overlay link to host paths; an inline setuid file behind the overlay link", async () => {
    const dir = caseDir("links");
    const host = path.join(dir, "host");
    const snapshot = plantCanaries(host);
    const before = snapshot();
    const repo = buildRepo(dir, key, [
      {
        spec: { name: "evil-links", version: "1.0-r0" },
        files: {
          lib: { dir: true },
          "lib/apk": { dir: true },
          etc: { dir: true },
          "etc/apk": { dir: true },
          "lib/apk/db": { symlink: path.join(host, "db") },
          "etc/apk/world": { symlink: path.join(host, "canary") },
          "lib/firmware": { symlink: path.join(host, "fw") },
          "etc/hostname": { symlink: path.join(host, "hostname") },
          boot: { symlink: path.join(host, "boot") },
        },
      },
      // what kernel: lts adds; it ships no kernel, so only the host's /boot would have one
      { spec: { name: "linux-lts", version: "6.12.1-r0" }, files: { "usr/share/linux-lts": "no kernel here\n" } },
    ]);
    const overlay = path.join(dir, "overlay");
    fs.mkdirSync(path.join(overlay, "etc"), { recursive: true });
    fs.symlinkSync(path.join(host, "overlay-target"), path.join(overlay, "etc/evil"));
    const config = writeConfig(dir, {
      repositories: [repo],
      packages: ["evil-links"],
      overlay,
      hostname: "box",
      firmware: ["keep.bin"],
      files: [{ path: "/etc/evil/suid", content: "#!/bin/sh\n", mode: 0o4755 }],
    });
    const r = await build(dir, config);
    expect(r.stderr).not.toMatch(/EACCES|EPERM/);
    expect(r.code).toBe(0);
    expect(snapshot()).toBe(before);
    // The kernel asked for is the package's, never the host's: with kernel lts the build fails.
    const withKernel = writeConfig(dir, { repositories: [repo], packages: ["evil-links"], kernel: "lts" });
    const k = await build(dir, withKernel);
    expect(k.code).not.toBe(0);
    expect(k.stderr).toMatch(/vmlinuz-lts/);
    expect(snapshot()).toBe(before);
  });
});

describe("install scripts run in the sandbox", () => {
  const escapeScript = (host: string) =>
    [
      "#!/bin/busybox sh",
      "B=/bin/busybox",
      "$B mkdir -p /mnt/p && $B mount -t proc proc /mnt/p 2>/dev/null",
      `for p in /proc/$PPID/root /proc/1/root /mnt/p/1/root ""; do`,
      `  if $B cat "$p${host}/canary" 2>/dev/null; then echo "read the host canary through '$p'"; fi`,
      `  if echo pwned 2>/dev/null > "$p${host}/canary"; then echo "ESCAPED through '$p'"; exit 0; fi`,
      "done",
      `$B nc -w 2 127.0.0.1 "$PORT_FILE" </dev/null && echo "NETWORK reached"`,
      "echo 'no way out'",
      "exit 1",
      "",
    ].join("\n");

  async function listener(): Promise<{ port: number; connections: () => number; close: () => void }> {
    let count = 0;
    const server = net.createServer((s) => {
      count++;
      s.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as net.AddressInfo).port, connections: () => count, close: () => server.close() };
  }

  test("a post-install that tries /proc/$PPID/root, a proc mount and the network fails inside the sandbox, and the build fails", async () => {
    const dir = caseDir("escape");
    const host = path.join(dir, "host");
    const snapshot = plantCanaries(host);
    const before = snapshot();
    const server = await listener();
    try {
      const repo = buildRepo(dir, key, [
        ...userland(minirootfs),
        {
          spec: {
            name: "escape",
            version: "1.0-r0",
            depends: ["busybox"],
            scripts: { "post-install": escapeScript(host).replace("$PORT_FILE", String(server.port)) },
          },
          files: { "usr/share/escape": "x\n" },
        },
      ]);
      const r = await build(dir, writeConfig(dir, { repositories: [repo], packages: ["escape"] }));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/install scripts failed/);
      expect(r.stderr).toMatch(/escape-1\.0-r0\.post-install exited with 1/);
      expect(r.stderr).toMatch(/no way out/);
      expect(r.stderr).not.toMatch(/ESCAPED|read the host canary|NETWORK reached/);
      expect(server.connections()).toBe(0);
      expect(snapshot()).toBe(before);
      // allowScriptFailures builds it anyway, still without touching the host
      const allowed = await build(
        dir,
        writeConfig(dir, { repositories: [repo], packages: ["escape"], allowScriptFailures: true }),
      );
      expect(allowed.code).toBe(0);
      expect(snapshot()).toBe(before);
    } finally {
      server.close();
    }
  });

  const goodScript = [
    "#!/bin/busybox sh",
    "B=/bin/busybox",
    "echo hello > /tmp/from-script || exit 10",
    "$B test -c /dev/null && $B test -c /dev/console && $B test -e /proc/self/status || exit 11",
    '[ "$($B id -u)" = 0 ] || exit 12',
    "$B test -e /usr/share/good || exit 13",
    'if [ "$WANT_CHOWN" = yes ]; then $B chown 1234:1234 /usr/share/good && $B chmod 0600 /usr/share/good || exit 14; fi',
    "",
  ].join("\n");

  test("a well-behaved script sees /tmp, /proc, /dev/null and /dev/console, runs as root of the sandbox, and its chown lands on disk (as root)", async () => {
    const dir = caseDir("good");
    const repo = buildRepo(dir, key, [
      ...userland(minirootfs),
      {
        spec: {
          name: "good",
          version: "1.0-r0",
          depends: ["busybox"],
          scripts: { "post-install": goodScript.replace('"$WANT_CHOWN"', isRoot ? "yes" : "no") },
        },
        files: { "usr/share/good": "x\n" },
      },
    ]);
    const root = path.join(dir, "root");
    const r = await cli.run([
      "apk",
      "install",
      "--root",
      root,
      "--repository",
      repo,
      "--keys",
      key.keysDir,
      "--cache-dir",
      path.join(dir, "cache"),
      "good",
    ]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(fs.readFileSync(path.join(root, "tmp/from-script"), "utf8")).toBe("hello\n");
    if (isRoot) {
      const st = fs.statSync(path.join(root, "usr/share/good"));
      expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1234, 1234, 0o600]);
    }
  });

  test("as an unprivileged user (setpriv to nobody): the escape fails, the host is untouched, a good script runs", async () => {
    if (!isRoot) return; // needs root to switch users; the whole suite run unprivileged covers it otherwise
    const dir = caseDir("unprivileged");
    fs.chmodSync(dir, 0o777);
    const host = path.join(dir, "host");
    const snapshot = plantCanaries(host);
    const before = snapshot();
    const repo = buildRepo(dir, key, [
      ...userland(minirootfs),
      {
        spec: {
          name: "escape",
          version: "1.0-r0",
          depends: ["busybox"],
          scripts: { "post-install": escapeScript(host).replace("$PORT_FILE", "9") },
        },
        files: { "usr/share/escape": "x\n" },
      },
      {
        spec: {
          name: "good",
          version: "1.0-r0",
          depends: ["busybox"],
          scripts: { "post-install": goodScript.replace('"$WANT_CHOWN"', "no") },
        },
        files: { "usr/share/good": "x\n" },
      },
    ]);
    fs.chmodSync(path.join(dir, "repo"), 0o755);
    const asNobody = (args: string[]) => {
      const { file, args: nodeArgs } = cli.commandLine(args);
      return execa("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", file, ...nodeArgs], {
        reject: false,
        env: { HOME: dir, RAMROOT_CACHE: path.join(dir, "nobody-cache"), PATH: process.env.PATH ?? "/usr/bin:/bin" },
      });
    };
    const userns = fs.readFileSync("/proc/sys/user/max_user_namespaces", "utf8").trim();
    expect(Number(userns)).toBeGreaterThan(0); // unprivileged user namespaces are enabled here
    const bad = await asNobody([
      "apk",
      "install",
      "--root",
      path.join(dir, "root-escape"),
      "--repository",
      repo,
      "--keys",
      key.keysDir,
      "escape",
    ]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/escape-1\.0-r0\.post-install exited with 1/);
    expect(bad.stderr).not.toMatch(/ESCAPED|read the host canary/);
    expect(snapshot()).toBe(before);
    const good = await asNobody([
      "apk",
      "install",
      "--root",
      path.join(dir, "root-good"),
      "--repository",
      repo,
      "--keys",
      key.keysDir,
      "good",
    ]);
    expect({ code: good.exitCode, stderr: good.stderr }).toMatchObject({ code: 0 });
    expect(fs.readFileSync(path.join(dir, "root-good/tmp/from-script"), "utf8")).toBe("hello\n");
    expect(fs.statSync(path.join(dir, "root-good/usr/share/good")).uid).toBe(65534);
  });
});

describe("names and versions from an index become file names only when they are names", () => {
  test("a package named ../../host/pkgname in a signed index is refused before any file is read or written", async () => {
    const dir = caseDir("names");
    const host = path.join(dir, "host");
    const snapshot = plantCanaries(host);
    fs.writeFileSync(path.join(host, "pkgname-1.0-r0.apk"), "not a package: the host's file\n");
    const before = snapshot();
    const repo = buildRepo(dir, key, [
      { spec: { name: "victim", version: "1.0-r0" }, files: { "usr/share/victim": "v\n" } },
    ]);
    const archDir = path.join(repo, "x86_64");
    const records = indexRecords(archDir);
    const evilName = "../../host/pkgname";
    records.push({ ...records[0]!, name: evilName, version: "1.0-r0", depends: [] });
    records[0] = { ...records[0]!, depends: [evilName] };
    writeSignedIndex(archDir, key, records);
    const r = await build(dir, writeConfig(dir, { repositories: [repo], packages: ["victim"] }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`package name "${evilName}" is not accepted`);
    expect(snapshot()).toBe(before);
  });

  test("an inline file at / or . is refused at validation, naming the field", async () => {
    const dir = caseDir("inline-root");
    const repo = buildRepo(dir, key, [
      { spec: { name: "victim", version: "1.0-r0" }, files: { "usr/share/victim": "v\n" } },
    ]);
    for (const p of ["/", ".", "/./"]) {
      const r = await build(
        dir,
        writeConfig(dir, { repositories: [repo], packages: ["victim"], files: [{ path: p, content: "x" }] }),
        ["--plan-only"],
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/files.*path|path.*not the root itself/s);
    }
  });
});

describe("decompression bombs are refused before they are inflated, under 300 MB", () => {
  const LIMIT_KIB = 300 * 1024;

  test("a 2 MB unsigned gzip bomb served as APKINDEX.tar.gz", async () => {
    const dir = caseDir("index-bomb");
    const archDir = path.join(dir, "repo", "x86_64");
    fs.mkdirSync(archDir, { recursive: true });
    const bomb = zlib.gzipSync(Buffer.alloc(2000 << 20), { level: 9 });
    expect(bomb.length).toBeLessThan(3 << 20);
    fs.writeFileSync(path.join(archDir, "APKINDEX.tar.gz"), bomb);
    const config = writeConfig(dir, { repositories: [path.join(dir, "repo")], packages: ["x"] });
    const r = await build(dir, config, ["--plan-only"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not signed by a trusted key/);
    expect(r.maxRssKiB).toBeLessThan(LIMIT_KIB);
    // Even when untrusted indexes are allowed, inflating stops at the limit.
    const untrusted = await build(
      dir,
      writeConfig(dir, { repositories: [path.join(dir, "repo")], packages: ["x"], allowUntrusted: true }),
      ["--plan-only"],
    );
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toMatch(/decompression bomb/);
    expect(untrusted.maxRssKiB).toBeLessThan(LIMIT_KIB);
  });

  test("a 1.5 MB tampered .apk whose data member is a bomb (control and index record intact)", async () => {
    const dir = caseDir("apk-bomb");
    const repo = buildRepo(dir, key, [
      { spec: { name: "bomb", version: "1.0-r0" }, files: { "usr/share/bomb": "small\n" } },
    ]);
    const archDir = path.join(repo, "x86_64");
    const apkFile = path.join(archDir, "bomb-1.0-r0.apk");
    const good = fs.readFileSync(apkFile);
    const signature = readGzipMember(good, 0, "sig");
    const control = readGzipMember(good, signature.raw.length, "control");
    const dataBomb = zlib.gzipSync(Buffer.alloc(1500 << 20), { level: 9 });
    const tampered = Buffer.concat([signature.raw, control.raw, dataBomb]);
    expect(tampered.length).toBeLessThan(2 << 20);
    // A mirror with the key serves an index whose S: matches the tampered file; C: (the control member) is unchanged.
    const records = indexRecords(archDir);
    fs.writeFileSync(apkFile, tampered);
    writeSignedIndex(archDir, key, [{ ...records[0]!, size: tampered.length }]);
    const r = await build(dir, writeConfig(dir, { repositories: [repo], packages: ["bomb"] }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/data member SHA-256 is [0-9a-f]{64} but \.PKGINFO datahash says/);
    expect(r.maxRssKiB).toBeLessThan(LIMIT_KIB);
    // Served with the index's original S:, the size alone refuses it, unread.
    writeSignedIndex(archDir, key, records);
    const sized = await build(dir, writeConfig(dir, { repositories: [repo], packages: ["bomb"] }));
    expect(sized.code).not.toBe(0);
    expect(sized.stderr).toMatch(/but the index says \d+ for bomb-1\.0-r0/);
    expect(sized.maxRssKiB).toBeLessThan(LIMIT_KIB);
  });
});

describe("a remote index cannot go back in time", () => {
  /** Serves files from `root()` over HTTP with ETags, answering 304 to a matching If-None-Match. */
  async function serve(root: () => string): Promise<{ url: string; close: () => void }> {
    const server = http.createServer((req, res) => {
      const file = path.join(root(), decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      const body = fs.readFileSync(file);
      const etag = `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`;
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, { etag }).end();
        return;
      }
      res.writeHead(200, { etag, "last-modified": new Date().toUTCString(), "content-length": body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, close: () => server.close() };
  }

  test("after evil 2.0-r0 was seen, an older signed index offering 1.0-r0 is refused unless allowDowngrade; a damaged cached index is fetched again", async () => {
    const dir = caseDir("downgrade");
    const v2 = buildRepo(
      dir,
      key,
      [{ spec: { name: "evil", version: "2.0-r0" }, files: { "usr/share/evil": "2\n" } }],
      { name: "v2", buildTime: 1_700_100_000 },
    );
    const v1 = buildRepo(
      dir,
      key,
      [{ spec: { name: "evil", version: "1.0-r0" }, files: { "usr/share/evil": "1\n" } }],
      { name: "v1", buildTime: 1_700_000_000 },
    );
    let serving = v2;
    const server = await serve(() => serving);
    try {
      const config = writeConfig(dir, { repositories: [server.url], packages: ["evil"] });
      const first = await build(dir, config, ["--plan-only"]);
      expect({ code: first.code, stderr: first.stderr }).toMatchObject({ code: 0 });
      expect(JSON.parse(first.stdout).packages).toEqual({ evil: "2.0-r0" });

      // A byte flipped in the cached index while the server answers 304: dropped and fetched again.
      const indexCache = path.join(dir, "cache", "apk", "indexes");
      const cachedFile = fs.readdirSync(indexCache).find((f) => f.endsWith(".tar.gz"))!;
      const bytes = fs.readFileSync(path.join(indexCache, cachedFile));
      bytes[bytes.length - 20]! ^= 0xff;
      fs.writeFileSync(path.join(indexCache, cachedFile), bytes);
      const again = await build(dir, config, ["--plan-only"]);
      expect({ code: again.code, stderr: again.stderr }).toMatchObject({ code: 0 });
      expect(again.stderr).toContain(`cached index ${path.join(indexCache, cachedFile)} is damaged`);

      serving = v1; // the replay: signed by the same key, served fresh
      const replay = await build(dir, config, ["--plan-only"]);
      expect(replay.code).not.toBe(0);
      expect(replay.stderr).toMatch(/refused as a replayed or downgraded index/);
      expect(replay.stderr).toMatch(/evil 1\.0-r0 is lower than the 2\.0-r0 seen on/);
      expect(replay.stderr).toMatch(/allowDowngrade: true/);

      const allowed = await build(
        dir,
        writeConfig(dir, { repositories: [server.url], packages: ["evil"], allowDowngrade: true }),
        ["--plan-only"],
      );
      expect({ code: allowed.code, stderr: allowed.stderr }).toMatchObject({ code: 0 });
      expect(JSON.parse(allowed.stdout).packages).toEqual({ evil: "1.0-r0" });
      expect(allowed.stderr).toMatch(/accepted although evil 1\.0-r0 is lower/);
    } finally {
      server.close();
    }
  });
});
