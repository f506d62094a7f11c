/**
 * Secure Boot signing on real inputs: a UKI written from Debian's systemd-boot-efi stub and
 * kernel, keys and certificates made by openssl, signed by sbsign and checked by sbverify
 * (Debian's sbsigntool). A slot write of a UKI that the configured certificate's key did not sign
 * is refused before anything on the target changes.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { efiStubPath } from "../../../provider/image/boot-split";
import { parseImageConfig } from "../../../provider/image/plan";
import { writeUki } from "../../../provider/image/uki";
import {
  readUkiSigner,
  signUki,
  ukiSignatureRefusal,
  certificateId,
  type UkiSigner,
} from "../../../provider/secure-boot-signing";
import { writeSlotChecked } from "../../../provider/deploy/slot-guard";
import { openTarget } from "../../../provider/boot/target";
import { InputError } from "../../../provider/ramroot-error";
import { debianDeb } from "../../fixtures/debian-deb";
import { debianKernel } from "../../fixtures/debian-kernel";
import { secureBootKeyPair } from "../../fixtures/secure-boot-keys";

jest.setTimeout(300_000);

let work: string;
let unsigned: string;
let db: { key: string; cert: string };
let other: { key: string; cert: string };

/** A key (RSA-2048 unless said) and its self-signed certificate, as files in `work`. */
const keyPair = (name: string, newkey?: string[]) => secureBootKeyPair(work, name, newkey);

const read = (f: string) => fs.readFileSync(f, "utf8");
const sha256 = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sb-"));
  db = keyPair("db");
  other = keyPair("other");
  const stubRoot = debianDeb("systemd-boot-efi", { ready: (r) => fs.existsSync(path.join(r, efiStubPath("x86_64"))) });
  const initramfs = path.join(work, "initramfs");
  fs.writeFileSync(initramfs, Buffer.alloc(4099, 0x49));
  unsigned = path.join(work, "uki.efi");
  await writeUki(
    {
      arch: "x86_64",
      stub: path.join(stubRoot, efiStubPath("x86_64")),
      kernel: debianKernel("x86_64").vmlinuz,
      initrds: [initramfs],
      cmdline: "rdinit=/sbin/init console=ttyS0",
      osRelease: "ID=alpine\n",
    },
    unsigned,
  );
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("signed with the key from a pipe, dated the epoch: the same inputs give the same bytes, and sbverify accepts only the key's certificate", async () => {
  const signer = readUkiSigner({ privateKey: db.key, certificate: db.cert }, work);
  const a = path.join(work, "a.efi");
  const b = path.join(work, "b.efi");
  await signUki(unsigned, a, signer, 1700000000);
  await new Promise((r) => setTimeout(r, 1100)); // a second later: sbsign's own clock would differ
  await signUki(unsigned, b, signer, 1700000000);
  expect(sha256(b)).toBe(sha256(a));
  // Another epoch is another signing time: the signature, not the UKI, changes.
  const c = path.join(work, "c.efi");
  await signUki(unsigned, c, signer, 1700000001);
  expect(sha256(c)).not.toBe(sha256(a));

  expect(await ukiSignatureRefusal(a, read(db.cert))).toBeUndefined();
  expect(await ukiSignatureRefusal(a, read(other.cert))).toMatch(/verification failed/);
  expect(await ukiSignatureRefusal(unsigned, read(db.cert))).toMatch(/No signature table/);
  // The signed file is the unsigned one plus its signature table: sbsign changes only the header's
  // checksum and security directory, and appends the signature.
  const before = fs.readFileSync(unsigned);
  const after = fs.readFileSync(a);
  expect(after.length).toBeGreaterThan(before.length);
});

test("PEM text and paths name the same certificate; its id is the sha256 of its DER bytes", () => {
  const fromText = readUkiSigner({ privateKey: read(db.key), certificate: read(db.cert) }, "/");
  const fromPath = readUkiSigner({ privateKey: "db.key", certificate: "db.crt" }, work);
  expect(fromPath).toEqual(fromText);
  const der = execFileSync("openssl", ["x509", "-in", db.cert, "-outform", "DER"]);
  expect(certificateId(fromText.certificate)).toBe(createHash("sha256").update(der).digest("hex"));
});

test("a wrong key, a key that is not the certificate's, an EC key, a bad certificate or a missing file is refused naming the field, never showing the key", () => {
  const ec = keyPair("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]);
  const refused = (input: { privateKey: string; certificate: string }): InputError => {
    try {
      readUkiSigner(input, work);
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      for (const line of read(db.key)
        .split("\n")
        .filter((l) => l !== "" && !l.startsWith("-----")))
        expect((err as Error).message).not.toContain(line);
      return err as InputError;
    }
    throw new Error("expected a refusal");
  };
  expect(refused({ privateKey: other.key, certificate: db.cert }).message).toMatch(
    /secureBoot\.privateKey: got a key that is not the certificate's \(CN=ramroot secure boot db, sha256 [0-9a-f]{12}\); expected the private key of secureBoot\.certificate/,
  );
  expect(refused({ privateKey: ec.key, certificate: ec.cert }).message).toMatch(
    /secureBoot\.privateKey: got a ec key; expected an RSA key/,
  );
  expect(refused({ privateKey: read(db.key).replace(/[A-Za-z]/g, "A"), certificate: db.cert }).message).toMatch(
    /secureBoot\.privateKey: got a secret that is not an unencrypted private key in PEM/,
  );
  expect(refused({ privateKey: db.key, certificate: db.key }).message).toMatch(
    /secureBoot\.certificate: not an X\.509 certificate in PEM/,
  );
  expect(refused({ privateKey: db.key, certificate: "missing.crt" }).message).toMatch(
    /secureBoot\.certificate: cannot read "missing.crt" \(ENOENT\); expected PEM text or the path of a PEM file/,
  );
});

test("secureBoot without uki is refused naming uki; the key's value is never echoed", () => {
  expect(() =>
    parseImageConfig({ packages: ["busybox"], secureBoot: { privateKey: "db.key", certificate: "db.crt" } }),
  ).toThrow("uki: got false; expected true with secureBoot");
  let message = "";
  try {
    parseImageConfig({ packages: ["busybox"], uki: true, secureBoot: { privateKey: 7, certificate: "c" } });
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).toMatch(/secureBoot\.privateKey: got 7; expected a string/);
});

test("a slot write of a UKI the certificate's key did not sign is refused naming secureBoot.certificate, and nothing is written", async () => {
  const signer: UkiSigner = readUkiSigner({ privateKey: db.key, certificate: db.cert }, work);
  const signed = path.join(work, "signed.efi");
  await signUki(unsigned, signed, signer, 0);
  const boot = path.join(work, "boot");
  fs.mkdirSync(boot);
  const target = await openTarget({ kind: "local", path: boot });
  const kernel = path.join(work, "k");
  fs.writeFileSync(kernel, "kernel");
  const write = (uki: string, certificate: string) =>
    writeSlotChecked(
      target,
      {
        slot: "a",
        files: { kernel, initramfs: kernel },
        manifest: { imageId: "image-a", planId: "p" },
        secureBoot: { uki, certificate },
      },
      () => {},
    );
  for (const [uki, cert] of [
    [signed, other.cert],
    [unsigned, db.cert],
  ] as const) {
    const err = await write(uki, read(cert)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).failures.map((f) => f.property)).toEqual(["secureBoot.certificate"]);
    expect((err as Error).message).toMatch(
      /is not signed by certificate [0-9a-f]{12} \(sbverify: .+\).*nothing was written/s,
    );
    expect(fs.readdirSync(boot)).toEqual([]);
  }
  // The certificate whose key signed it: the write goes ahead.
  const state = await write(signed, read(db.cert));
  expect(state.consistent).toBe(true);
  expect(fs.readdirSync(path.join(boot, "a")).sort()).toEqual(["initramfs", "manifest.json", "vmlinuz"]);
});
