/**
 * The streaming install: a data tar parsed in pieces of any size gives what it gives whole; a
 * data member inflated as a stream is checked (CRC, length, limit, what follows it) and re-hashed
 * against what was verified; and `ramroot apk install` of a package whose data tar is larger
 * than the memory bound stays under it, with the files as packed.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { execa } from "execa";
import { bufferSource, fdSource } from "../../../provider/apk/byte-source";
import { installPackages } from "../../../provider/apk/install";
import { loadKeysDir } from "../../../provider/apk/signature";
import { loadRepositories, packageLocator, type LoadedRepository } from "../../../provider/apk/repository";
import { resolvePackages } from "../../../provider/apk/solver";
import { GzipLimitError, readGzipMember, streamGzipMember } from "../../../provider/apk/gzip-members";
import { readPackage } from "../../../provider/apk/package-file";
import { readTar, TarStreamParser, type TarHeader } from "../../../provider/apk/tar-reader";
import { writeTar, type TarEntry } from "../../../provider/apk/tar-writer";
import { buildRepo, signingKey, writeSignedIndex, type SigningKey } from "../../fixtures/hostile-repo";
import { indexRecords } from "../../../provider/apk/repository-index";
import { compileCli, type CompiledCli } from "../../fixtures/ramroot-cli";

jest.setTimeout(600_000);

let work: string;
let key: SigningKey;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-apk-stream-"));
  key = signingKey(path.join(work, "key"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const sha1 = (b: Buffer | string) => createHash("sha1").update(b).digest("hex");

function sampleTar(): Buffer {
  const file = (name: string, size: number, extra: Partial<TarEntry> = {}): TarEntry => ({
    name,
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 1_700_000_000,
    content: Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + size) & 0xff)),
    ...extra,
  });
  const long = `usr/share/${"a-long-directory-name/".repeat(8)}file`;
  return writeTar(
    [
      { name: "usr/", type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: 0 },
      file("usr/empty", 0),
      file("usr/one", 1),
      file("usr/block-less-one", 511),
      file("usr/block", 512),
      file("usr/block-and-one", 513),
      file("usr/big", 100_000, { pax: { "APK-TOOLS.checksum.SHA1": "0".repeat(40) } }),
      file(long, 3000),
      { name: "usr/link", type: "symlink", mode: 0o777, uid: 0, gid: 0, mtime: 0, linkTarget: "one" },
      { name: "usr/hard", type: "hardlink", mode: 0o644, uid: 0, gid: 0, mtime: 0, linkTarget: "usr/one" },
      file("usr/after", 700, { uname: "nobody", gname: "nogroup", uid: 65534, gid: 65534 }),
    ],
    { endOfArchive: true },
  );
}

describe("TarStreamParser", () => {
  test.each([1, 7, 100, 511, 512, 513, 4096, 65536])(
    "fed in pieces of %i bytes, gives every entry readTar gives whole",
    (size) => {
      const tar = sampleTar();
      const whole = readTar(tar, "t");
      expect(whole.map((e) => e.name)).toContain(`usr/share/${"a-long-directory-name/".repeat(8)}file`);
      const got: { header: TarHeader; content: Buffer[] }[] = [];
      const parser = new TarStreamParser("t", {
        entry: (header) => got.push({ header, content: [] }),
        content: (piece) => got[got.length - 1]!.content.push(Buffer.from(piece)),
        entryEnd: () => {},
      });
      for (let at = 0; at < tar.length; at += size) parser.push(tar.subarray(at, at + size));
      parser.end();
      expect(got.map((g) => ({ ...g.header, content: Buffer.concat(g.content) }))).toEqual(whole);
    },
  );

  test("an entry cut short is refused at the end, naming the member and its header", () => {
    const tar = sampleTar();
    const parser = new TarStreamParser("cut.apk (data member)", {
      entry: () => {},
      content: () => {},
      entryEnd: () => {},
    });
    // Into the content of the 100 000-byte file.
    parser.push(tar.subarray(0, 512 * 14 + 100));
    expect(() => parser.end()).toThrow(/cut\.apk \(data member\): tar header at byte \d+: truncated/);
  });
});

describe("streamGzipMember", () => {
  const content = Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 31) % 251));
  const member = zlib.gzipSync(content, { level: 6 });

  async function inflate(bytes: Buffer, maxOutput = 64 << 20) {
    const pieces: Buffer[] = [];
    const raw: Buffer[] = [];
    const r = await streamGzipMember(bufferSource(bytes), 0, {
      source: "m.gz",
      maxOutput,
      onRaw: (b) => raw.push(Buffer.from(b)),
      sink: (p) => {
        pieces.push(Buffer.from(p));
      },
    });
    return { ...r, content: Buffer.concat(pieces), raw: Buffer.concat(raw) };
  }

  test("inflates in pieces, shows every raw byte, and counts what follows the member", async () => {
    const plain = await inflate(member);
    expect(plain.content.equals(content)).toBe(true);
    expect(plain.raw.equals(member)).toBe(true);
    expect(plain.trailing).toBe(0);
    const more = await inflate(Buffer.concat([member, Buffer.from("garbage")]));
    expect(more.content.equals(content)).toBe(true);
    expect(more.trailing).toBe(7);
  });

  test("a deflate stream that ends exactly where a raw read ends: the trailer and what follows are read, not inflated", async () => {
    // Stored blocks make the deflate size exact: find the content length whose deflate stream
    // fills the first 128 KiB read (after the 10-byte header) to the byte.
    let stored = zlib.gzipSync(Buffer.alloc(1), { level: 0 });
    for (let n = (128 << 10) - 64; stored.length - 18 !== (128 << 10) - 10; n++) {
      stored = zlib.gzipSync(Buffer.alloc(n, 0x41), { level: 0 });
      expect(stored.length - 18).toBeLessThanOrEqual((128 << 10) - 10);
    }
    const r = await inflate(Buffer.concat([stored, Buffer.from("more")]));
    expect(r.content.equals(zlib.gunzipSync(stored))).toBe(true);
    expect(r.trailing).toBe(4);
    expect(r.raw.length).toBe(stored.length + 4);
  });

  test("a sink that fails stops the inflate with its error", async () => {
    let calls = 0;
    await expect(
      streamGzipMember(bufferSource(member), 0, {
        source: "m.gz",
        maxOutput: 64 << 20,
        sink: () => {
          if (++calls === 2) throw new Error("disk full");
        },
      }),
    ).rejects.toThrow("disk full");
    expect(calls).toBe(2);
  });

  test("a wrong CRC, a truncated member and a member past its limit are refused", async () => {
    const badCrc = Buffer.from(member);
    badCrc[badCrc.length - 8]! ^= 0xff;
    await expect(inflate(badCrc)).rejects.toThrow(/m\.gz: gzip member at byte 0: CRC-32 .* does not match/);
    await expect(inflate(member.subarray(0, member.length - 1000))).rejects.toThrow(
      /m\.gz: gzip member at byte 0: corrupt or truncated deflate data/,
    );
    await expect(inflate(member, 1 << 20)).rejects.toThrow(GzipLimitError);
  });
});

test("a package changed on disk after it was verified is refused while its data streams", async () => {
  const dir = path.join(work, "changed");
  const repo = buildRepo(dir, key, [
    { spec: { name: "p", version: "1.0-r0" }, files: { "usr/share/p/data": "x".repeat(100_000) } },
  ]);
  const file = path.join(repo, "x86_64", "p-1.0-r0.apk");
  const fd = fs.openSync(file, "r");
  let closed = false;
  const pkg = readPackage(fdSource(fd), {
    source: file,
    keys: new Map(fs.readdirSync(key.keysDir).map((k) => [k, fs.readFileSync(path.join(key.keysDir, k))])),
    onDone: () => {
      if (!closed) fs.closeSync(fd);
      closed = true;
    },
  });
  expect(pkg.trust).toBe("signature");
  // A byte of the data member's deflate stream changed in place (the same inode the descriptor reads).
  const size = fs.statSync(file).size;
  const writer = fs.openSync(file, "r+");
  const at = size - 20;
  const byte = Buffer.alloc(1);
  fs.readSync(writer, byte, 0, 1, at);
  byte[0]! ^= 0x01;
  fs.writeSync(writer, byte, 0, 1, at);
  fs.closeSync(writer);
  await expect(pkg.streamDataTar(() => {})).rejects.toThrow(/p-1\.0-r0\.apk/);
  expect(closed).toBe(true);
});

test("a package whose data member does not match its datahash fails the install before the first byte of any package is unpacked", async () => {
  const dir = path.join(work, "verify-first");
  const repo = buildRepo(dir, key, [
    { spec: { name: "first", version: "1.0-r0" }, files: { "usr/share/first/file": "first\n" } },
    { spec: { name: "last", version: "1.0-r0", depends: ["first"] }, files: { "usr/share/last/file": "last\n" } },
  ]);
  const archDir = path.join(repo, "x86_64");
  // `last` (installed after `first`) gets another data member; its control member, so the index's C:, is unchanged.
  const lastFile = path.join(archDir, "last-1.0-r0.apk");
  const good = fs.readFileSync(lastFile);
  const signature = readGzipMember(good, 0, "sig");
  const control = readGzipMember(good, signature.raw.length, "control");
  const tampered = Buffer.concat([signature.raw, control.raw, zlib.gzipSync(Buffer.alloc(10_240))]);
  const records = indexRecords(archDir);
  fs.writeFileSync(lastFile, tampered);
  writeSignedIndex(
    archDir,
    key,
    records.map((r) => (r.name === "last" ? { ...r, size: tampered.length } : r)),
  );
  const keys = loadKeysDir(key.keysDir);
  const repos = await loadRepositories([repo], { arch: "x86_64", keys, cacheDir: path.join(dir, "index-cache") });
  const lock = resolvePackages(
    ["last"],
    repos.flatMap((r) => r.packages),
    { arch: "x86_64" },
  );
  expect(lock.packages.map((p) => p.name).sort()).toEqual(["first", "last"]);
  const root = path.join(dir, "root");
  await expect(
    installPackages({
      root,
      lock,
      arch: "x86_64",
      keys,
      cacheDir: path.join(dir, "cache"),
      locate: packageLocator(repos),
    }),
  ).rejects.toThrow(/last-1\.0-r0\.apk: data member SHA-256 is [0-9a-f]{64} but \.PKGINFO datahash says/);
  expect(fs.existsSync(path.join(root, "usr/share/first"))).toBe(false);
  expect(fs.existsSync(path.join(root, "lib/apk/db/installed"))).toBe(false);
});

test("a package from an HTTP repository is streamed into the cache, verified there, and read from it next time", async () => {
  const dir = path.join(work, "http");
  const repo = buildRepo(dir, key, [
    { spec: { name: "web", version: "1.0-r0" }, files: { "usr/share/web/page": "served\n".repeat(50_000) } },
  ]);
  const server = http.createServer((req, res) => {
    const file = path.join(repo, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (!fs.existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const keys = loadKeysDir(key.keysDir);
  const cacheDir = path.join(dir, "cache");
  const install = async (root: string, repos: LoadedRepository[]) =>
    installPackages({
      root,
      lock: resolvePackages(
        ["web"],
        repos.flatMap((r) => r.packages),
        { arch: "x86_64" },
      ),
      arch: "x86_64",
      keys,
      cacheDir,
      locate: packageLocator(repos),
    });
  let repos: LoadedRepository[];
  try {
    repos = await loadRepositories([url], { arch: "x86_64", keys, cacheDir: path.join(dir, "index-cache") });
    await install(path.join(dir, "root-1"), repos);
  } finally {
    server.close();
  }
  const cached = fs.readdirSync(cacheDir);
  const record = repos[0]!.packages.find((p) => p.name === "web")!;
  expect(cached).toEqual([Buffer.from(record.checksum!.slice(2), "base64").toString("hex")]);
  expect(
    fs
      .readFileSync(path.join(cacheDir, cached[0]!))
      .equals(fs.readFileSync(path.join(repo, "x86_64", "web-1.0-r0.apk"))),
  ).toBe(true);
  // The server is gone: the second install reads the cache entry (re-verified).
  await install(path.join(dir, "root-2"), repos);
  for (const root of ["root-1", "root-2"])
    expect(fs.readFileSync(path.join(dir, root, "usr/share/web/page"), "utf8")).toBe("served\n".repeat(50_000));
});

describe("ramroot apk install of a package whose data tar is larger than the memory bound", () => {
  let cli: CompiledCli;
  beforeAll(async () => {
    cli = await compileCli();
  });
  afterAll(() => cli?.dispose());

  test("peak RSS stays under 300 MB and every file is as packed (small files, a large streamed one)", async () => {
    const dir = path.join(work, "large");
    const files: Record<string, Buffer> = {};
    // ~330 MB unpacked that compresses ~150:1 (under the 200:1 bomb limit): zeros, and 2 MiB that does not compress.
    for (let i = 0; i < 280; i++) files[`usr/share/large/small-${String(i).padStart(3, "0")}`] = Buffer.alloc(1 << 20);
    files["usr/share/large/streamed"] = Buffer.alloc(48 << 20, 1);
    files["usr/share/large/random"] = randomish(2 << 20);
    const repo = buildRepo(dir, key, [{ spec: { name: "large", version: "1.0-r0" }, files }]);
    const keys = key.keysDir;
    const root = path.join(dir, "root");
    const { file, args } = cli.commandLine([
      "apk",
      "install",
      "--root",
      root,
      "--repository",
      repo,
      "--keys",
      keys,
      "--cache-dir",
      path.join(dir, "cache"),
      "large",
    ]);
    const r = await execa("/usr/bin/time", ["-f", "MAXRSS=%M", file, ...args], { reject: false });
    expect({ code: r.exitCode, stderr: r.stderr }).toMatchObject({ code: 0 });
    const dataTarBytes = Object.values(files).reduce((s, b) => s + b.length, 0);
    expect(dataTarBytes).toBeGreaterThan(300 << 20);
    const maxRssKiB = Number(/MAXRSS=(\d+)/.exec(r.stderr)![1]);
    expect(maxRssKiB).toBeLessThan(300 * 1024);
    for (const [rel, content] of Object.entries(files)) {
      const got = fs.readFileSync(path.join(root, rel));
      expect({ rel, size: got.length, sha1: sha1(got) }).toEqual({ rel, size: content.length, sha1: sha1(content) });
    }
  });
});

/** `n` bytes that deflate cannot shrink (a SHA-512 chain), made the same way every run. */
function randomish(n: number): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash("sha512").update("ramroot").digest();
  for (let at = 0; at < n; at += block.length) {
    block.copy(out, at);
    block = createHash("sha512").update(block).digest();
  }
  return out;
}
