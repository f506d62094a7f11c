import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { serializeApkindex, parseApkindex, readApkindex } from "../../../provider/apk/apkindex";
import { writeIndexArchive } from "../../../provider/apk/index-archive";
import type { PackageRecord } from "../../../provider/apk/package-record";
import { loadRepository, packageUrl } from "../../../provider/apk/repository";
import { TrustError } from "../../../provider/ramroot-error";
import { resolvePackages } from "../../../provider/apk/solver";

const RECORDS: PackageRecord[] = [
  {
    checksum: "Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    name: "busybox",
    version: "1.37.0-r30",
    arch: "x86_64",
    size: 500000,
    installedSize: 900000,
    description: "Size optimized toolbox",
    url: "https://busybox.net/",
    license: "GPL-2.0-only",
    origin: "busybox",
    maintainer: "Someone <s@example.org>",
    buildTime: 1750000000,
    commit: "0123456789abcdef",
    depends: ["so:libc.musl-x86_64.so.1"],
    provides: ["/bin/sh", "cmd:busybox=1.37.0-r30"],
    installIf: [],
    replaces: [],
    providerPriority: 100,
  },
  {
    checksum: "Q1BBBBBBBBBBBBBBBBBBBBBBBBBBB=",
    name: "musl",
    version: "1.2.5-r10",
    arch: "x86_64",
    size: 400000,
    installedSize: 700000,
    description: "the musl c library",
    depends: [],
    provides: ["so:libc.musl-x86_64.so.1=1"],
    installIf: [],
    replaces: [],
  },
];
const INDEX_TEXT = serializeApkindex(RECORDS);

interface Keys {
  keyName: string;
  privateKeyPem: string;
  keysDir: string;
}

function makeKeys(dir: string, name: string): Keys {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const keysDir = path.join(dir, `keys-${name}`);
  fs.mkdirSync(keysDir, { recursive: true });
  const keyName = `${name}.rsa.pub`;
  fs.writeFileSync(path.join(keysDir, keyName), publicKey);
  return { keyName, privateKeyPem: privateKey, keysDir };
}

let tmp: string;
let good: Keys;
let other: Keys;
let signedArchive: Buffer;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-repo-"));
  good = makeKeys(tmp, "alpine-devel@lists.alpinelinux.org-4a6a0840");
  other = makeKeys(tmp, "someone-else-12345678");
  signedArchive = writeIndexArchive(INDEX_TEXT, "v3.24.0-test", {
    keyName: good.keyName,
    privateKeyPem: good.privateKeyPem,
  });
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function repoDir(name: string, archive: Buffer, arch = "x86_64"): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, arch), { recursive: true });
  fs.writeFileSync(path.join(dir, arch, "APKINDEX.tar.gz"), archive);
  return dir;
}

describe("APKINDEX text", () => {
  test("parse and serialize round-trip, deterministically", () => {
    const parsed = parseApkindex(INDEX_TEXT);
    expect(parsed).toEqual(RECORDS);
    expect(serializeApkindex(parsed)).toBe(INDEX_TEXT);
    expect(
      INDEX_TEXT.startsWith(
        "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:busybox\nV:1.37.0-r30\nA:x86_64\nS:500000\nI:900000\n",
      ),
    ).toBe(true);
  });

  test("unknown lower-case fields are dropped, unknown upper-case ones kept, repeated lists accumulate", () => {
    const [rec] = parseApkindex("P:a\nV:1\nx:whatever\nX:future\np:one=1\np:two\nD:b c\nD:d\n");
    expect(rec).toMatchObject({
      name: "a",
      version: "1",
      provides: ["one=1", "two"],
      depends: ["b", "c", "d"],
      unknownUpperFields: ["X:future"],
    });
    expect(serializeApkindex([rec!])).toBe("P:a\nV:1\nD:b c d\np:one=1 two\nX:future\n\n");
  });

  test("a record that cannot be used is skipped, naming it and why; every other record is read", () => {
    const text = [
      "P:ok1\nV:1.0-r0\n",
      "P:badline\nV:1\nnot a field\n",
      "P:badsize\nS:big\nV:1\n",
      "P:nover\n",
      "V:1.0\nT:no name\n",
      "P:../../tmp/x/pkgname\nV:1.0-r0\n",
      "P:a..b\nV:1.0-r0\n",
      "P:dotdot\nV:1.0/../../x\n",
      "P:nul\nV:1.0\0-r0\n",
      // versions apk 2.14 reads as they are: valid for it (0.1a1, 1.0-r) or not (1.0~abc), all kept
      "P:odd\nV:0.1a1-r0\n",
      "P:odd\nV:1.0-r\n",
      "P:hash\nV:1.0~abc\n",
      "P:ok2\nV:6.04_pre1-r15\n",
    ].join("\n");
    const read = readApkindex(text, "idx");
    expect(read.records.map((r) => `${r.name}-${r.version}`)).toEqual([
      "ok1-1.0-r0",
      "odd-0.1a1-r0",
      "odd-1.0-r",
      "hash-1.0~abc",
      "ok2-6.04_pre1-r15",
    ]);
    expect(read.skipped.map((s) => s.message)).toEqual([
      'idx:4: package "badline-1" skipped: line 6 "not a field" is not "X:value"',
      'idx:8: package "badsize-1" skipped: field S on line 9 has value "big"; expected a non-negative integer',
      'idx:12: package "nover" skipped: it has no V: (version) field',
      "idx:14: a record skipped: it has no P: (name) field",
      'idx:17: package "../../tmp/x/pkgname-1.0-r0" skipped: package name "../../tmp/x/pkgname" is not accepted: expected letters, digits and . _ + - (not starting with . or -), no "/" and no ".."',
      'idx:20: package "a..b-1.0-r0" skipped: package name "a..b" is not accepted: expected letters, digits and . _ + - (not starting with . or -), no "/" and no ".."',
      'idx:23: package "dotdot-1.0/../../x" skipped: package dotdot: version "1.0/../../x" is not accepted: a version holds no "/", "..", NUL or line break',
      'idx:26: package "nul-1.0\\u0000-r0" skipped: package nul: version "1.0\\u0000-r0" is not accepted: a version holds no "/", "..", NUL or line break',
    ]);
    expect(parseApkindex(text, "idx")).toEqual(read.records);
  });
});

describe("local repositories", () => {
  test("a signed directory repository verifies with the right key", async () => {
    const dir = repoDir("signed", signedArchive);
    const repo = await loadRepository(dir, { arch: "x86_64", keysDir: good.keysDir }, 2);
    expect(repo).toMatchObject({
      url: dir,
      order: 2,
      verified: true,
      signer: good.keyName,
      description: "v3.24.0-test",
    });
    expect(repo.packages.map((p) => [p.name, p.repository, p.repositoryOrder])).toEqual([
      ["busybox", dir, 2],
      ["musl", dir, 2],
    ]);
    expect(packageUrl(repo, repo.packages[0]!)).toBe(`${dir}/x86_64/busybox-1.37.0-r30.apk`);
    const lock = resolvePackages(["/bin/sh"], repo.packages, { arch: "x86_64" });
    expect(lock.packages.map((p) => `${p.name}-${p.version}`)).toEqual(["busybox-1.37.0-r30", "musl-1.2.5-r10"]);
  });

  test("a signed index with one record that cannot be used loads: the record is reported, the rest resolves", async () => {
    const text = INDEX_TEXT + "C:Q1CCCCCCCCCCCCCCCCCCCCCCCCCCC=\nP:../../evil\nV:1.0-r0\nA:x86_64\n\n";
    const archive = writeIndexArchive(text, "v3.24.0-test", {
      keyName: good.keyName,
      privateKeyPem: good.privateKeyPem,
    });
    const dir = repoDir("one-bad-record", archive);
    const progress: string[] = [];
    const repo = await loadRepository(
      dir,
      { arch: "x86_64", keysDir: good.keysDir, onProgress: (m) => progress.push(m) },
      0,
    );
    expect(repo.packages.map((p) => p.name)).toEqual(["busybox", "musl"]);
    expect(repo.skipped.map((s) => [s.line, s.name])).toEqual([
      [text.split("\n").indexOf("P:../../evil"), "../../evil"],
    ]);
    expect(progress).toEqual([
      expect.stringMatching(
        new RegExp(
          `^WARNING: ${dir}/x86_64/APKINDEX.tar.gz:\\d+: package "\\.\\./\\.\\./evil-1\\.0-r0" skipped: package name`,
        ),
      ),
    ]);
    const lock = resolvePackages(["busybox"], repo.packages, { arch: "x86_64" });
    expect(lock.packages.map((p) => p.name)).toEqual(["busybox", "musl"]);
  });

  test("file:// URLs and direct index files load too", async () => {
    const dir = repoDir("signed-url", signedArchive);
    const url = pathToFileURL(dir).href;
    const repo = await loadRepository(url, { arch: "x86_64", keysDir: good.keysDir }, 0);
    expect(repo.verified).toBe(true);
    expect(packageUrl(repo, repo.packages[1]!)).toBe(`${url}/x86_64/musl-1.2.5-r10.apk`);
    const direct = await loadRepository(
      path.join(dir, "x86_64", "APKINDEX.tar.gz"),
      { arch: "x86_64", keysDir: good.keysDir },
      0,
    );
    expect(direct.packages).toHaveLength(2);
  });

  test("a wrong key is refused, naming the index", async () => {
    const dir = repoDir("wrong-key", signedArchive);
    await expect(loadRepository(dir, { arch: "x86_64", keysDir: other.keysDir }, 0)).rejects.toThrow(
      new RegExp(`${dir}/x86_64/APKINDEX.tar.gz: not signed by a trusted key`),
    );
  });

  test("an unsigned index needs --allow-untrusted", async () => {
    const dir = repoDir("unsigned", writeIndexArchive(INDEX_TEXT, "unsigned"));
    await expect(loadRepository(dir, { arch: "x86_64", keysDir: good.keysDir }, 0)).rejects.toThrow(
      /not signed by a trusted key/,
    );
    const repo = await loadRepository(dir, { arch: "x86_64", keysDir: good.keysDir, allowUntrusted: true }, 0);
    expect(repo.verified).toBe(false);
    expect(repo.signer).toBeUndefined();
  });

  test("a tampered index is refused even with --allow-untrusted: a trust error, the keys to look at", async () => {
    const bad = Buffer.from(signedArchive);
    bad.writeUInt8(bad.readUInt8(bad.length - 20) ^ 0xff, bad.length - 20);
    const dir = repoDir("tampered", bad);
    const refused = loadRepository(dir, { arch: "x86_64", keysDir: good.keysDir, allowUntrusted: true }, 0);
    await expect(refused).rejects.toThrow(TrustError);
    await expect(refused).rejects.toMatchObject({
      kind: "trust",
      property: "keys",
      fix: "fetch it again from the repository you trust; do not add keys to make it pass",
    });
  });

  test("a plain APKINDEX text file is accepted only untrusted", async () => {
    const file = path.join(tmp, "APKINDEX");
    fs.writeFileSync(file, INDEX_TEXT);
    await expect(loadRepository(file, { arch: "x86_64" }, 0)).rejects.toThrow(
      /plain, unsigned APKINDEX text; pass allowUntrusted/,
    );
    const repo = await loadRepository(file, { arch: "x86_64", allowUntrusted: true }, 0);
    expect(repo.packages.map((p) => p.name)).toEqual(["busybox", "musl"]);
  });

  test("a missing repository names itself", async () => {
    await expect(loadRepository(path.join(tmp, "nowhere"), { arch: "x86_64" }, 0)).rejects.toThrow(
      /nowhere.*cannot be reached/,
    );
    await expect(loadRepository("ftp://example.org/alpine", { arch: "x86_64" }, 0)).rejects.toThrow(
      /unsupported scheme/,
    );
  });
});

describe("https-style repositories over a local HTTP server", () => {
  type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
  let server: http.Server;
  let base: string;
  let handler: Handler;
  const seen: Array<{ url: string; ifNoneMatch?: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url!, ifNoneMatch: req.headers["if-none-match"] as string | undefined });
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => (seen.length = 0));

  const serveIndex: Handler = (req, res) => {
    if (req.url !== "/alpine/v3.24/main/x86_64/APKINDEX.tar.gz") {
      res.writeHead(404).end();
      return;
    }
    if (req.headers["if-none-match"] === '"v1"') {
      res.writeHead(304).end();
      return;
    }
    res.writeHead(200, { etag: '"v1"', "content-length": signedArchive.length }).end(signedArchive);
  };

  test("first load downloads and caches; the next revalidates with If-None-Match and uses the cache on 304", async () => {
    handler = serveIndex;
    const cacheDir = path.join(tmp, "cache-304");
    const opts = { arch: "x86_64", keysDir: good.keysDir, cacheDir };
    const first = await loadRepository(`${base}/alpine/v3.24/main/`, opts, 0);
    expect(first.verified).toBe(true);
    expect(first.url).toBe(`${base}/alpine/v3.24/main`);
    expect(packageUrl(first, first.packages[0]!)).toBe(`${base}/alpine/v3.24/main/x86_64/busybox-1.37.0-r30.apk`);
    const second = await loadRepository(`${base}/alpine/v3.24/main`, opts, 0);
    expect(second.packages).toEqual(first.packages);
    expect(seen).toEqual([
      { url: "/alpine/v3.24/main/x86_64/APKINDEX.tar.gz", ifNoneMatch: undefined },
      { url: "/alpine/v3.24/main/x86_64/APKINDEX.tar.gz", ifNoneMatch: '"v1"' },
    ]);
  });

  test("a 404 fails at once naming the URL", async () => {
    handler = serveIndex;
    await expect(
      loadRepository(
        `${base}/alpine/edge/main`,
        { arch: "x86_64", cacheDir: path.join(tmp, "c404"), attempts: 3, retryDelayMs: 1 },
        0,
      ),
    ).rejects.toThrow(`${base}/alpine/edge/main/x86_64/APKINDEX.tar.gz: HTTP 404`);
    expect(seen).toHaveLength(1);
  });

  test("server errors are retried with backoff", async () => {
    let calls = 0;
    handler = (req, res) => (++calls < 3 ? res.writeHead(503).end() : serveIndex(req, res));
    const repo = await loadRepository(
      `${base}/alpine/v3.24/main`,
      { arch: "x86_64", keysDir: good.keysDir, cacheDir: path.join(tmp, "c503"), retryDelayMs: 1 },
      0,
    );
    expect(repo.verified).toBe(true);
    expect(calls).toBe(3);
  });

  test("a truncated download fails naming the URL and is not cached", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-length": signedArchive.length });
      res.write(signedArchive.subarray(0, 100));
      res.destroy();
    };
    const cacheDir = path.join(tmp, "c-trunc");
    await expect(
      loadRepository(
        `${base}/alpine/v3.24/main`,
        { arch: "x86_64", keysDir: good.keysDir, cacheDir, attempts: 2, retryDelayMs: 1 },
        0,
      ),
    ).rejects.toThrow(
      new RegExp(`${base}/alpine/v3.24/main/x86_64/APKINDEX.tar.gz: cannot be reached after 2 attempts`),
    );
    expect(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []).toEqual([]);
  });

  test("a corrupt download fails naming the URL and is not cached", async () => {
    const corrupt = Buffer.concat([signedArchive.subarray(0, signedArchive.length - 40), Buffer.alloc(40, 0x55)]);
    handler = (_req, res) => res.writeHead(200).end(corrupt);
    const cacheDir = path.join(tmp, "c-corrupt");
    await expect(
      loadRepository(`${base}/alpine/v3.24/main`, { arch: "x86_64", keysDir: good.keysDir, cacheDir }, 0),
    ).rejects.toThrow(new RegExp(`^${base}/alpine/v3.24/main/x86_64/APKINDEX.tar.gz`));
    expect(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []).toEqual([]);
  });

  test("an unreachable repository fails naming the URL", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const url = `http://127.0.0.1:${port}/alpine/v3.24/main`;
    await expect(
      loadRepository(url, { arch: "x86_64", cacheDir: path.join(tmp, "c-unreach"), attempts: 2, retryDelayMs: 1 }, 0),
    ).rejects.toThrow(new RegExp(`${url}/x86_64/APKINDEX.tar.gz: cannot be reached after 2 attempts.*ECONNREFUSED`));
  });
});
