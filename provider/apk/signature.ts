import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { gzipDeterministic } from "./gzip-members";
import { writeTar } from "./tar-writer";
import { ConflictError, RamrootError, TrustError } from "../ramroot-error";

/** Digest of an APK v2 RSA signature, named by the signature file's prefix. */
export type SignatureDigest = "sha1" | "sha256" | "sha512";

const PREFIX: Record<SignatureDigest, string> = {
  sha1: ".SIGN.RSA.",
  sha256: ".SIGN.RSA256.",
  sha512: ".SIGN.RSA512.",
};

/** `.SIGN.RSA.<keyName>` (SHA-1), `.SIGN.RSA256.<keyName>` or `.SIGN.RSA512.<keyName>`. */
export function signatureEntryName(digest: SignatureDigest, keyName: string): string {
  return PREFIX[digest] + keyName;
}

/** The digest and key file name a `.SIGN.*` entry names, or undefined when it is no RSA signature apk knows. */
export function parseSignatureEntryName(name: string): { digest: SignatureDigest; keyName: string } | undefined {
  // Longest prefixes first: ".SIGN.RSA." is a prefix of neither of the others, but keep it explicit.
  for (const digest of ["sha512", "sha256", "sha1"] as const) {
    const prefix = PREFIX[digest];
    if (name.startsWith(prefix) && name.length > prefix.length) return { digest, keyName: name.slice(prefix.length) };
  }
  return undefined;
}

/** RSA PKCS#1 v1.5 signature of `data` with the given digest. */
export function signData(data: Buffer, privateKeyPem: string | Buffer, digest: SignatureDigest): Buffer {
  const key = crypto.createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== "rsa")
    throw new RamrootError("input", `signing key is ${key.asymmetricKeyType}, expected an RSA key`);
  return crypto.sign(digest, data, { key, padding: crypto.constants.RSA_PKCS1_PADDING });
}

/** True when `signature` is a valid RSA PKCS#1 v1.5 signature of `data` by the public key. */
export function verifyData(
  data: Buffer,
  signature: Buffer,
  publicKeyPem: string | Buffer,
  digest: SignatureDigest,
): boolean {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey(publicKeyPem);
  } catch {
    return false;
  }
  if (key.asymmetricKeyType !== "rsa") return false;
  try {
    return crypto.verify(digest, data, { key, padding: crypto.constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
}

/**
 * True when `pem` holds a private key (PKCS#1, PKCS#8, encrypted or not, EC, OpenSSH): such a
 * file must never be trusted as a key nor copied into a root.
 */
export function isPrivateKeyPem(pem: Buffer | string): boolean {
  const text = Buffer.isBuffer(pem) ? pem.toString("latin1") : pem;
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) return true;
  try {
    crypto.createPrivateKey(text);
    return true;
  } catch {
    return false;
  }
}

export interface LoadKeysOptions {
  /** Told about every private key skipped (default: a WARNING line on standard error). */
  onSkippedPrivateKey?: (file: string) => void;
}

function warnSkipped(file: string): void {
  process.stderr.write(
    `WARNING: ${file} is a PRIVATE key: skipped; only public keys are trusted and copied into a root (keep private keys out of the keys directory)\n`,
  );
}

/**
 * Trusted keys from a directory, as apk reads /etc/apk/keys: file name -> PEM. Every regular
 * file (symlinks followed) is a candidate; the name is what `.SIGN.RSA.<name>` refers to.
 * Private keys (a `ramroot key generate` directory holds the pair) are skipped loudly: they are
 * no trust anchor, and whatever this returns may be written into a root.
 */
export function loadKeysDir(dir: string, opts: LoadKeysOptions = {}): Map<string, Buffer> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw new RamrootError(
      "input",
      `keys directory ${JSON.stringify(dir)} cannot be read: ${(err as Error).message}`,
      undefined,
      "keys",
    );
  }
  const keys = new Map<string, Buffer>();
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    if (!fs.statSync(file).isFile()) continue;
    const pem = fs.readFileSync(file);
    if (isPrivateKeyPem(pem)) {
      (opts.onSkippedPrivateKey ?? warnSkipped)(file);
      continue;
    }
    keys.set(name, pem);
  }
  return keys;
}

/** One trusted key file: refused when it holds a private key; `what` names it in the error (default: the file). */
export function loadPublicKeyFile(file: string, what = `key file ${JSON.stringify(file)}`): Buffer {
  const pem = fs.readFileSync(file);
  if (isPrivateKeyPem(pem))
    throw new TrustError(
      `${what} is a PRIVATE key`,
      `name its public half (${path.basename(file)}.pub) instead: only public keys are trusted and copied into a root`,
    );
  return pem;
}

export interface GeneratedKeyPair {
  /** The public key's file name, `<name>.rsa.pub`: what signatures name and what goes into /etc/apk/keys. */
  keyName: string;
  privateKeyPath: string;
  publicKeyPath: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

/**
 * Generates an RSA key pair as abuild-keygen does: `<dir>/<name>.rsa` (private, PKCS#8 PEM,
 * mode 0600) and `<dir>/<name>.rsa.pub` (SubjectPublicKeyInfo PEM). Refuses to overwrite.
 */
export function generateKeyPair(dir: string, name: string, opts: { bits?: number } = {}): GeneratedKeyPair {
  if (!/^[A-Za-z0-9@._+-]+$/.test(name) || name.startsWith(".")) {
    throw new RamrootError(
      "input",
      `key name ${JSON.stringify(name)} is not accepted: use letters, digits and @ . _ + - (e.g. "me@example.org-5f1a2b3c"), not starting with "."`,
    );
  }
  const bits = opts.bits ?? 4096;
  if (![2048, 3072, 4096, 8192].includes(bits))
    throw new RamrootError("input", `key bits ${bits} is not accepted: use 2048, 3072, 4096 or 8192`);
  const privateKeyPath = path.join(dir, `${name}.rsa`);
  const publicKeyPath = `${privateKeyPath}.pub`;
  for (const file of [privateKeyPath, publicKeyPath]) {
    if (fs.existsSync(file)) throw new ConflictError(`key file ${file} already exists; refusing to overwrite it`);
  }
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
    modulusLength: bits,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(privateKeyPath, privateKey, { mode: 0o600, flag: "wx" });
  fs.writeFileSync(publicKeyPath, publicKey, { mode: 0o644, flag: "wx" });
  return {
    keyName: path.basename(publicKeyPath),
    privateKeyPath,
    publicKeyPath,
    privateKeyPem: privateKey,
    publicKeyPem: publicKey,
  };
}

export interface Signer {
  /** The public key's file name as installed in /etc/apk/keys, e.g. `me-5f1a2b3c.rsa.pub`. */
  keyName: string;
  privateKeyPem: string;
  /** Default sha1, which every apk-tools v2 accepts (abuild-sign's default). */
  digest?: SignatureDigest;
}

/**
 * The gzip member abuild-sign puts in front of a signed member: a tar holding one
 * `.SIGN.RSA*.<keyName>` file (mode 0644, root, mtime 0) with the signature of `signed`
 * (the raw compressed bytes of the member(s) it covers), without end-of-archive blocks.
 */
export function signatureMember(signed: Buffer, signer: Signer): Buffer {
  const digest = signer.digest ?? "sha1";
  const signature = signData(signed, signer.privateKeyPem, digest);
  const tar = writeTar(
    [
      {
        name: signatureEntryName(digest, signer.keyName),
        type: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        content: signature,
      },
    ],
    { endOfArchive: false },
  );
  return gzipDeterministic(tar);
}

export interface SignatureCheck {
  /** The key file name of the trusted key whose signature was checked. */
  signer?: string;
  /** True when that signature verified. */
  valid: boolean;
  /** Each signature entry seen and what became of it, for error messages. */
  tried: { entry: string; outcome: "verified" | "unknown key" | "bad signature" }[];
}

/**
 * Checks the `.SIGN.*` entries of a signature member against `signed`, as apk-tools does:
 * signatures by keys not in `keys` are skipped, and the first signature by a trusted key
 * decides (valid: verified; invalid: the file is rejected, even with --allow-untrusted).
 */
export function checkSignatures(
  entries: { name: string; content: Buffer }[],
  signed: Buffer,
  keys: Map<string, Buffer>,
): SignatureCheck {
  const check: SignatureCheck = { valid: false, tried: [] };
  for (const entry of entries) {
    const parsed = parseSignatureEntryName(entry.name);
    if (!parsed) continue;
    const key = keys.get(parsed.keyName);
    if (!key) {
      check.tried.push({ entry: entry.name, outcome: "unknown key" });
      continue;
    }
    check.valid = verifyData(signed, entry.content, key, parsed.digest);
    check.signer = parsed.keyName;
    check.tried.push({ entry: entry.name, outcome: check.valid ? "verified" : "bad signature" });
    break;
  }
  return check;
}

/** The entries tried and their outcome, for error messages. */
export function describeSignatureCheck(check: SignatureCheck): string {
  if (check.tried.length === 0) return "no .SIGN.RSA* signature entry";
  return check.tried.map((t) => `${t.entry}: ${t.outcome}`).join(", ");
}
