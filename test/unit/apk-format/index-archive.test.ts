import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { gzipDeterministic, splitGzipMembers } from "../../../provider/apk/gzip-members";
import {
  generateKeyPair,
  loadKeysDir,
  signData,
  verifyData,
  type GeneratedKeyPair,
} from "../../../provider/apk/signature";
import { readIndexArchive, writeIndexArchive } from "../../../provider/apk/index-archive";
import { readTar } from "../../../provider/apk/tar-reader";
import { writeTar } from "../../../provider/apk/tar-writer";

jest.setTimeout(60_000);

let work: string;
let trusted: GeneratedKeyPair;
let stranger: GeneratedKeyPair;
let keysDir: string;

const INDEX = "C:Q1abcdefghijklmnopqrstuvwxyz0=\nP:hello\nV:1.0-r0\nA:x86_64\nS:100\nI:200\nT:hello\nD:\n\n";

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-apk-index-"));
  trusted = generateKeyPair(path.join(work, "private"), "trusted@example.org-1", { bits: 2048 });
  stranger = generateKeyPair(path.join(work, "private"), "stranger@example.org-2", { bits: 2048 });
  keysDir = path.join(work, "keys");
  fs.mkdirSync(keysDir);
  fs.copyFileSync(trusted.publicKeyPath, path.join(keysDir, trusted.keyName));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe("gzip members", () => {
  test("splits members written by the real gzip program, with a file name in the header, by the bytes each consumes", () => {
    const a = path.join(work, "first.txt");
    const b = path.join(work, "second.txt");
    fs.writeFileSync(a, "first member\n".repeat(50));
    fs.writeFileSync(b, "second member\n");
    const ga = execFileSync("gzip", ["-9", "-c", a]);
    const gb = execFileSync("gzip", ["-1", "-c", "-n", b]);
    const joined = Buffer.concat([ga, gb]);
    const members = splitGzipMembers(joined, "joined.gz");
    expect(members.map((m) => m.raw.length)).toEqual([ga.length, gb.length]);
    expect(members[1]!.offset).toBe(ga.length);
    expect(members[0]!.content.toString()).toBe(fs.readFileSync(a, "utf8"));
    expect(members[1]!.content.toString()).toBe("second member\n");
    // Node's own gunzip joins them: the split must agree with it.
    expect(Buffer.concat(members.map((m) => m.content))).toEqual(zlib.gunzipSync(joined));
  });

  test("a truncated member is an error naming the source", () => {
    const gz = zlib.gzipSync(Buffer.from("x".repeat(1000)));
    expect(() => splitGzipMembers(gz.subarray(0, gz.length - 4), "cut.gz")).toThrow(/cut\.gz.*truncated/);
    expect(() => splitGzipMembers(gz.subarray(0, 15), "cut.gz")).toThrow(/cut\.gz.*truncated/);
  });

  test("a corrupt trailer or non-gzip data is an error", () => {
    const gz = Buffer.from(zlib.gzipSync(Buffer.from("hello")));
    gz[gz.length - 6]! ^= 0xff;
    expect(() => splitGzipMembers(gz, "bad.gz")).toThrow(/bad\.gz.*CRC-32/);
    expect(() => splitGzipMembers(Buffer.from("PK\x03\x04 not gzip at all, long enough"), "zip")).toThrow(
      /zip.*not gzip/,
    );
  });
});

describe("signatures", () => {
  test.each(["sha1", "sha256", "sha512"] as const)(
    "RSA PKCS#1 v1.5 %s signatures verify with openssl and ours",
    (digest) => {
      const data = Buffer.from("signed bytes\n");
      const sig = signData(data, trusted.privateKeyPem, digest);
      expect(verifyData(data, sig, trusted.publicKeyPem, digest)).toBe(true);
      expect(verifyData(Buffer.from("other bytes\n"), sig, trusted.publicKeyPem, digest)).toBe(false);
      expect(verifyData(data, sig, stranger.publicKeyPem, digest)).toBe(false);
      // openssl dgst is what abuild-sign uses; it must accept our signature.
      const dataFile = path.join(work, `data-${digest}`);
      const sigFile = path.join(work, `sig-${digest}`);
      fs.writeFileSync(dataFile, data);
      fs.writeFileSync(sigFile, sig);
      const out = execFileSync(
        "openssl",
        ["dgst", `-${digest}`, "-verify", trusted.publicKeyPath, "-signature", sigFile, dataFile],
        { encoding: "utf8" },
      );
      expect(out.trim()).toBe("Verified OK");
      // ...and we must accept openssl's.
      const osslSig = execFileSync("openssl", ["dgst", `-${digest}`, "-sign", trusted.privateKeyPath, dataFile]);
      expect(verifyData(data, osslSig, trusted.publicKeyPem, digest)).toBe(true);
    },
  );

  test("loadKeysDir maps file names to PEM; key generation refuses to overwrite and bad names", () => {
    const keys = loadKeysDir(keysDir);
    expect([...keys.keys()]).toEqual(["trusted@example.org-1.rsa.pub"]);
    expect(keys.get("trusted@example.org-1.rsa.pub")!.toString()).toContain("BEGIN PUBLIC KEY");
    expect(fs.statSync(trusted.privateKeyPath).mode & 0o777).toBe(0o600);
    expect(() => generateKeyPair(path.join(work, "private"), "trusted@example.org-1", { bits: 2048 })).toThrow(
      /already exists/,
    );
    expect(() => generateKeyPair(work, "../evil", { bits: 2048 })).toThrow(/key name "\.\.\/evil" is not accepted/);
    expect(() => loadKeysDir(path.join(work, "missing"))).toThrow(/keys directory .*missing/);
  });
});

describe("APKINDEX.tar.gz", () => {
  const signer = () => ({ keyName: trusted.keyName, privateKeyPem: trusted.privateKeyPem });

  test("a signed index round-trips, is deterministic and has abuild's layout", () => {
    const archive = writeIndexArchive(INDEX, "test repo", signer());
    expect(writeIndexArchive(INDEX, "test repo", signer())).toEqual(archive);
    const read = readIndexArchive(archive, { keys: loadKeysDir(keysDir), source: "repo/APKINDEX.tar.gz" });
    expect(read).toEqual({ signer: trusted.keyName, verified: true, apkindexText: INDEX, description: "test repo" });

    const members = splitGzipMembers(archive, "index");
    expect(members).toHaveLength(2);
    const sigTar = members[0]!.content;
    expect(readTar(sigTar, "sig").map((e) => e.name)).toEqual([`.SIGN.RSA.${trusted.keyName}`]);
    expect(sigTar.length % 512).toBe(0);
    expect(sigTar.subarray(sigTar.length - 512).every((b) => b === 0)).toBe(false); // no end-of-archive blocks
    // GNU tar reads the whole file as one archive, as apk does.
    const file = path.join(work, "APKINDEX.tar.gz");
    fs.writeFileSync(file, archive);
    const listing = execFileSync("tar", ["-tzf", file], { encoding: "utf8" }).trim().split("\n");
    expect(listing).toEqual([`.SIGN.RSA.${trusted.keyName}`, "DESCRIPTION", "APKINDEX"]);
    // The signature covers the raw bytes of member 2: check it with openssl.
    const sigFile = path.join(work, "index.sig");
    const bodyFile = path.join(work, "index.body");
    fs.writeFileSync(sigFile, readTar(sigTar, "sig")[0]!.content);
    fs.writeFileSync(bodyFile, members[1]!.raw);
    expect(
      execFileSync("openssl", ["dgst", "-sha1", "-verify", trusted.publicKeyPath, "-signature", sigFile, bodyFile], {
        encoding: "utf8",
      }).trim(),
    ).toBe("Verified OK");
  });

  test.each(["sha256", "sha512"] as const)("%s signatures (.SIGN.RSA256 / .SIGN.RSA512) verify", (digest) => {
    const archive = writeIndexArchive(INDEX, "d", { ...signer(), digest });
    const name = readTar(splitGzipMembers(archive, "i")[0]!.content, "sig")[0]!.name;
    expect(name).toBe(`.SIGN.RSA${digest.slice(3)}.${trusted.keyName}`);
    expect(readIndexArchive(archive, { keys: loadKeysDir(keysDir), source: "i" }).verified).toBe(true);
  });

  test("an unsigned index is refused unless untrusted indexes are allowed", () => {
    const archive = writeIndexArchive(INDEX, "unsigned");
    expect(() => readIndexArchive(archive, { keys: loadKeysDir(keysDir), source: "unsigned/APKINDEX.tar.gz" })).toThrow(
      /unsigned\/APKINDEX\.tar\.gz: not signed by a trusted key \(no \.SIGN\.RSA\* signature entry/,
    );
    const read = readIndexArchive(archive, { keys: loadKeysDir(keysDir), allowUntrusted: true, source: "u" });
    expect(read.verified).toBe(false);
    expect(read.signer).toBeUndefined();
    expect(read.apkindexText).toBe(INDEX);
  });

  test("a signature by an unknown key is skipped; a trusted one after it is enough", () => {
    const unknownOnly = writeIndexArchive(INDEX, "x", {
      keyName: stranger.keyName,
      privateKeyPem: stranger.privateKeyPem,
    });
    expect(() => readIndexArchive(unknownOnly, { keys: loadKeysDir(keysDir), source: "s" })).toThrow(
      /s: not signed by a trusted key \(.*stranger@example\.org-2\.rsa\.pub: unknown key/,
    );
    expect(
      readIndexArchive(unknownOnly, { keys: loadKeysDir(keysDir), allowUntrusted: true, source: "s" }).verified,
    ).toBe(false);

    // Two signatures in the signature member: the unknown one first, then the trusted one.
    const body = splitGzipMembers(unknownOnly, "s")[1]!.raw;
    const sigs = [stranger, trusted].map((k) => ({
      name: `.SIGN.RSA.${k.keyName}`,
      type: "file" as const,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 0,
      content: signData(body, k.privateKeyPem, "sha1"),
    }));
    const twoSigs = Buffer.concat([gzipDeterministic(writeTar(sigs, { endOfArchive: false })), body]);
    expect(readIndexArchive(twoSigs, { keys: loadKeysDir(keysDir), source: "two" })).toMatchObject({
      verified: true,
      signer: trusted.keyName,
    });
  });

  test("a wrong key under a trusted name, or a tampered body, is refused even when untrusted indexes are allowed", () => {
    // Signed by the stranger's private key but naming the trusted key file.
    const forged = writeIndexArchive(INDEX, "x", { keyName: trusted.keyName, privateKeyPem: stranger.privateKeyPem });
    for (const allowUntrusted of [false, true]) {
      expect(() => readIndexArchive(forged, { keys: loadKeysDir(keysDir), allowUntrusted, source: "forged" })).toThrow(
        /forged: signature does not verify .*bad signature/,
      );
    }
    const good = writeIndexArchive(INDEX, "x", signer());
    const members = splitGzipMembers(good, "g");
    const tampered = Buffer.concat([members[0]!.raw, writeIndexArchive(INDEX.replace("hello", "hellx"), "x")]);
    expect(() => readIndexArchive(tampered, { keys: loadKeysDir(keysDir), source: "tampered" })).toThrow(
      /tampered: signature does not verify/,
    );
  });

  test("truncated and corrupt downloads are errors naming the source", () => {
    const good = writeIndexArchive(INDEX, "x", signer());
    const keys = loadKeysDir(keysDir);
    for (const cut of [10, 100, good.length - 1, good.length - 9]) {
      expect(() => readIndexArchive(good.subarray(0, cut), { keys, source: "cut/APKINDEX.tar.gz" })).toThrow(
        /cut\/APKINDEX\.tar\.gz/,
      );
    }
    const flipped = Buffer.from(good);
    flipped[flipped.length - 20]! ^= 0x55;
    expect(() => readIndexArchive(flipped, { keys, source: "flip" })).toThrow(/flip/);
    expect(() => readIndexArchive(Buffer.alloc(0), { keys, source: "empty" })).toThrow(/empty: empty file/);
  });

  test("an archive without APKINDEX is refused", () => {
    const tar = writeTar(
      [{ name: "DESCRIPTION", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 0, content: Buffer.from("d") }],
      { endOfArchive: true },
    );
    expect(() =>
      readIndexArchive(zlib.gzipSync(tar), { keys: new Map(), allowUntrusted: true, source: "noindex" }),
    ).toThrow(/noindex: no APKINDEX file in the archive \(found: DESCRIPTION\)/);
  });
});
