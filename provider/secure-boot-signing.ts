/**
 * Secure Boot: an EFI binary (a UKI, or systemd-boot on a new disk) signed with the user's key
 * (Debian's sbsigntool), and checked against the user's certificate before it is written. A module
 * of its own, outside image/ and boot/, as both sign (image/ its UKIs, boot/disk-create systemd-boot).
 *
 * The private key never touches the disk: sbsign reads it from a pipe (/dev/stdin); the plan,
 * the image cache and the logs carry only the certificate's sha256. sbsign stamps the signature with the time it signs at, so it runs under
 * libfaketime with the clock stopped at the image's epoch: the same UKI, key and certificate give
 * the same signed bytes. RSA signatures (PKCS#1 v1.5, what UEFI firmware verifies) carry no
 * randomness; other key types are refused.
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { FieldError, HostError, InputError } from "./ramroot-error";
import { sha256Hex } from "./file-hash";
import { openScratchDir } from "./scratch-dir";

/** A key and certificate, read and checked: what signs a UKI. */
export interface UkiSigner {
  /** PEM text of the private key (a secret: never logged, never written) */
  privateKey: string;
  /** PEM text of the certificate */
  certificate: string;
}

/** The config's secureBoot block: each field PEM text or a path to a PEM file. */
export interface SecureBootInput {
  privateKey: string;
  certificate: string;
}

const field = (name: keyof SecureBootInput) => `secureBoot.${name}`;

function refuse(name: keyof SecureBootInput, reason: string): never {
  throw new InputError("image config", [{ property: field(name), reason: `${field(name)}: ${reason}` }]);
}

/** PEM text as given, or the file a path names (relative to `baseDir`). */
function pemOf(value: string, name: keyof SecureBootInput, baseDir: string): string {
  // Text with a line break is PEM text however malformed (and a key's is never echoed), not a path.
  if (value.includes("-----BEGIN ") || value.includes("\n")) return value;
  const file = path.resolve(baseDir, value);
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    return refuse(
      name,
      `cannot read ${JSON.stringify(value)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); expected PEM text or the path of a PEM file`,
    );
  }
}

/**
 * The signer the config's secureBoot block names, checked: the certificate is an X.509 PEM, the
 * key an RSA private key PEM without a passphrase, and the key is the certificate's. Errors name
 * the field and never show the key.
 */
export function readUkiSigner(input: SecureBootInput, baseDir: string): UkiSigner {
  const certificate = pemOf(input.certificate, "certificate", baseDir);
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certificate);
  } catch (err) {
    return refuse(
      "certificate",
      `not an X.509 certificate in PEM (${(err as Error).message}); expected "-----BEGIN CERTIFICATE-----" text or its file, e.g. from openssl req -new -x509`,
    );
  }
  const privateKey = pemOf(input.privateKey, "privateKey", baseDir);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(privateKey);
  } catch {
    // The library's message may quote the input: say what was expected, not what was found.
    return refuse(
      "privateKey",
      'got a secret that is not an unencrypted private key in PEM; expected "-----BEGIN PRIVATE KEY-----" (or RSA PRIVATE KEY) text or its file, without a passphrase',
    );
  }
  if (key.asymmetricKeyType !== "rsa")
    refuse(
      "privateKey",
      `got a ${key.asymmetricKeyType ?? "non-RSA"} key; expected an RSA key (UEFI firmware verifies RSA-2048 signatures; openssl req -newkey rsa:2048)`,
    );
  if (!cert.checkPrivateKey(key))
    refuse(
      "privateKey",
      `got a key that is not the certificate's (${cert.subject.replace(/\n/g, ", ")}, sha256 ${certificateId(certificate).slice(0, 12)}); expected the private key of secureBoot.certificate`,
    );
  return { privateKey, certificate };
}

/** The certificate's identity in the plan: sha256 over its DER bytes, however the PEM is spelt. */
export function certificateId(certificatePem: string): string {
  return sha256Hex(new crypto.X509Certificate(certificatePem).raw);
}

/** The libfaketime preload sbsign runs under, so its signature carries the image's epoch. */
function faketimeLibrary(): string {
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]) {
    const lib = path.join(dir, "faketime", "libfaketime.so.1");
    if (fs.existsSync(lib)) return lib;
  }
  throw new HostError(
    "secureBoot: signing needs libfaketime (Debian libfaketime), so the signature carries the image's epoch and the same inputs give the same bytes",
    "apt-get install libfaketime (scripts/setup.sh installs it)",
  );
}

interface Run {
  code: number | null;
  output: string;
}

/**
 * Runs an sbsigntool command with `stdin` fed to it through a pipe it can open as /dev/stdin:
 * node's stdio is a socket, which open(2) refuses, so `cat` hands it on through a real pipe.
 */
function runFed(command: string, args: string[], stdin: string, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", 'cat | "$@"', "sh", command, ...args], { stdio: "pipe", env });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 127 && /not found/.test(output)
        ? reject(new Error(`secureBoot: ${command} is not installed (Debian sbsigntool; scripts/setup.sh installs it)`))
        : resolve({ code, output }),
    );
    // A child that exits before reading its input must not crash us with EPIPE.
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
  });
}

/** sbsigntool's lines worth showing: its "gaps between PE/COFF sections" warnings are about the stub's padding. */
function toolMessage(output: string): string {
  return output
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^warning: data remaining/.test(l))
    .join("; ");
}

/**
 * `unsigned` (a UKI, or any EFI binary such as systemd-boot: `what` names it in errors) signed with
 * `signer` into `out`, the signature dated `epoch` (seconds since 1970).
 */
export async function signUki(
  unsigned: string,
  out: string,
  signer: UkiSigner,
  epoch: number,
  what = "the UKI",
): Promise<void> {
  const time = new Date(epoch * 1000)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "");
  const env = { ...process.env, LD_PRELOAD: faketimeLibrary(), FAKETIME: time, TZ: "UTC", FAKETIME_DONT_RESET: "1" };
  // The certificate is public: a file in a private scratch directory. The key only ever flows through the pipe.
  const scratch = await openScratchDir("ramroot-sbsign-");
  let run: Run;
  try {
    const cert = path.join(scratch.dir, "db.crt");
    fs.writeFileSync(cert, signer.certificate, { mode: 0o600 });
    run = await runFed(
      "sbsign",
      ["--key", "/dev/stdin", "--cert", cert, "--output", out, unsigned],
      signer.privateKey,
      env,
    );
  } finally {
    scratch.drop();
  }
  if (run.code !== 0 || !fs.existsSync(out))
    throw new FieldError(
      "secureBoot",
      `sbsign could not sign ${what}: ${toolMessage(run.output) || `exit ${run.code}`}`,
    );
}

/** Why `uki` is not signed by `certificatePem`'s key, or undefined when sbverify accepts it. */
export async function ukiSignatureRefusal(uki: string, certificatePem: string): Promise<string | undefined> {
  const run = await runFed("sbverify", ["--cert", "/dev/stdin", uki], certificatePem);
  if (run.code === 0) return undefined;
  return toolMessage(run.output) || `sbverify exited ${run.code}`;
}

/**
 * Throws an InputError naming secureBoot.certificate unless `uki` is signed by that certificate's
 * key: what every slot write of a signed UKI asks first, so nothing is written otherwise.
 */
export async function assertUkiSignedBy(uki: string, certificatePem: string): Promise<void> {
  const refusal = await ukiSignatureRefusal(uki, certificatePem);
  if (refusal === undefined) return;
  const id = certificateId(certificatePem).slice(0, 12);
  throw new InputError(
    "Secure Boot UKI",
    [
      {
        property: field("certificate"),
        reason: `${field("certificate")}: ${uki} is not signed by certificate ${id} (sbverify: ${refusal}); expected a UKI built with this certificate's key`,
      },
    ],
    "nothing was written; build the image with the secureBoot key that matches the certificate",
  );
}
