/**
 * No private key can reach a root or an image: a `keys:` directory where `ramroot key generate`
 * wrote its pair gives only the public key (the private one is skipped loudly), a key file that
 * is private is refused naming it, and the database writer refuses to write one whatever it is
 * handed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeApkDatabase } from "../../../provider/apk/installed-db";
import { buildPackage } from "../../../provider/apk/package-builder";
import { writeRepositoryIndex } from "../../../provider/apk/repository-index";
import { generateKeyPair, isPrivateKeyPem, loadKeysDir, type GeneratedKeyPair } from "../../../provider/apk/signature";
import { parseImageConfig, trustedKeys } from "../../../provider/image/plan";
import { compileCli, type CompiledCli } from "../../fixtures/ramroot-cli";

let work: string;
let keysDir: string;
let pair: GeneratedKeyPair;
let cli: CompiledCli;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-privkeys-"));
  keysDir = path.join(work, "keys");
  pair = generateKeyPair(keysDir, "me@example.org-1", { bits: 2048 });
  cli = await compileCli();
}, 180_000);
afterAll(() => {
  cli?.dispose();
  fs.rmSync(work, { recursive: true, force: true });
});

test("a private key is recognised in every PEM form; a public key is not", () => {
  expect(isPrivateKeyPem(pair.privateKeyPem)).toBe(true);
  expect(isPrivateKeyPem(pair.publicKeyPem)).toBe(false);
  expect(isPrivateKeyPem("-----BEGIN RSA PRIVATE KEY-----\nnot even valid\n-----END RSA PRIVATE KEY-----\n")).toBe(
    true,
  );
  expect(isPrivateKeyPem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----\n")).toBe(true);
});

test("a key directory holding a pair yields only the public key, and says so", () => {
  const skipped: string[] = [];
  const keys = loadKeysDir(keysDir, { onSkippedPrivateKey: (f) => skipped.push(f) });
  expect([...keys.keys()]).toEqual([pair.keyName]);
  expect(skipped).toEqual([pair.privateKeyPath]);
});

test("image keys: a directory with a pair gives the public key only; naming the private key file is refused", async () => {
  const fromDir = await trustedKeys(parseImageConfig({ packages: ["busybox"], keys: [keysDir] }), work);
  expect([...fromDir.keys()]).toEqual([pair.keyName]);
  for (const pem of fromDir.values()) expect(isPrivateKeyPem(pem)).toBe(false);
  await expect(
    trustedKeys(parseImageConfig({ packages: ["busybox"], keys: [pair.privateKeyPath] }), work),
  ).rejects.toThrow(
    /keys: ".*me@example\.org-1\.rsa" is a PRIVATE key; name its public half \(me@example\.org-1\.rsa\.pub\) instead/,
  );
});

test("the database writer refuses to put a private key into etc/apk/keys", () => {
  const root = path.join(work, "db-root");
  const keys = new Map([["me@example.org-1.rsa", Buffer.from(pair.privateKeyPem)]]);
  expect(() => writeApkDatabase(root, { packages: [], world: [], arch: "x86_64", keys })).toThrow(
    /key "me@example\.org-1\.rsa" is a PRIVATE key/,
  );
  expect(fs.existsSync(path.join(root, "etc/apk/keys/me@example.org-1.rsa"))).toBe(false);
});

test("`ramroot apk install --keys DIR` with the pair in DIR: only the .pub lands in etc/apk/keys, with a warning", async () => {
  const tree = path.join(work, "tree");
  fs.mkdirSync(path.join(tree, "etc"), { recursive: true });
  fs.writeFileSync(path.join(tree, "etc/hello"), "hello\n");
  const archDir = path.join(work, "repo", "x86_64");
  fs.mkdirSync(archDir, { recursive: true });
  const signer = { keyName: pair.keyName, privateKeyPem: pair.privateKeyPem };
  const built = buildPackage(tree, { name: "hello", version: "1.0-r0", arch: "x86_64", buildTime: 1 }, signer);
  fs.writeFileSync(path.join(archDir, built.fileName), built.apk);
  writeRepositoryIndex(archDir, { description: "keys test", signer });
  const root = path.join(work, "root");
  const r = await cli.run([
    "apk",
    "install",
    "--root",
    root,
    "--repository",
    path.join(work, "repo"),
    "--keys",
    keysDir,
    "--cache-dir",
    path.join(work, "cache"),
    "hello",
  ]);
  expect(r.stderr).toContain(`WARNING: ${pair.privateKeyPath} is a PRIVATE key: skipped`);
  expect(r.code).toBe(0);
  expect(fs.readdirSync(path.join(root, "etc/apk/keys"))).toEqual([pair.keyName]);
  expect(fs.readFileSync(path.join(root, "etc/apk/keys", pair.keyName), "utf8")).toBe(pair.publicKeyPem);
});
