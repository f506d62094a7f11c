/**
 * `ramroot disk create --scheme uefi --secure-boot-key K --secure-boot-cert C` through the CLI:
 * systemd-boot on the ESP signed with the key (sbsign), sbverify accepting both copies against the
 * certificate, the same bytes twice (signed at the package file's time), the key's bytes nowhere
 * in the image; a key without its certificate, a key that is not the certificate's, or a key
 * for a syslinux disk is one error naming the flag or field, and nothing is written.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { registerBootCommands } from "../../../provider/cli/boot-command";
import { mtools } from "../../../provider/boot/mtools";
import { ukiSignatureRefusal } from "../../../provider/image/uki-signing";
import { secureBootKeyPair } from "../../fixtures/secure-boot-keys";

jest.setTimeout(120_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-disk-sb-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `ramroot <args>` with only the boot verbs registered, returning what it printed. */
async function ramroot(...args: string[]): Promise<{ sha256?: string }> {
  const program = new Command("ramroot").exitOverride();
  registerBootCommands(program);
  let out = "";
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(["node", "ramroot", ...args]);
  } finally {
    process.stdout.write = write;
  }
  return JSON.parse(out) as { sha256?: string };
}

async function copiedOut(image: string, file: string): Promise<string> {
  const out = path.join(dir, `${path.basename(image)}-${path.basename(file)}`);
  const done = await mtools("mcopy", image, 1 << 20, [`::/${file}`, out]);
  expect(done.exitCode).toBe(0);
  return out;
}

test("disk create --secure-boot-key/--secure-boot-cert: systemd-boot signed, verified, deterministic; bad pairs refused, nothing written", async () => {
  const db = secureBootKeyPair(dir, "db");
  const other = secureBootKeyPair(dir, "other");
  const uefi = ["--size", "32", "--scheme", "uefi", "--volume-id", "5b5b0001"];
  const signedWith = (k: string, c: string) => ["--secure-boot-key", k, "--secure-boot-cert", c];

  const a = path.join(dir, "a.img");
  const b = path.join(dir, "b.img");
  const made = await ramroot("disk", "create", ...uefi, ...signedWith(db.key, db.cert), a);
  expect((await ramroot("disk", "create", ...uefi, ...signedWith(db.key, db.cert), b)).sha256).toBe(made.sha256);
  const cert = fs.readFileSync(db.cert, "utf8");
  for (const loader of ["EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi"]) {
    const file = await copiedOut(a, loader);
    expect(await ukiSignatureRefusal(file, cert)).toBeUndefined();
    expect(await ukiSignatureRefusal(file, fs.readFileSync(other.cert, "utf8"))).toMatch(/verification failed/);
  }
  const der = crypto.createPrivateKey(fs.readFileSync(db.key)).export({ format: "der", type: "pkcs8" });
  expect(fs.readFileSync(a).includes(der)).toBe(false);

  // Without the key, Debian's systemd-boot as packaged: no signature.
  const plain = path.join(dir, "plain.img");
  await ramroot("disk", "create", ...uefi, plain);
  expect(await ukiSignatureRefusal(await copiedOut(plain, "EFI/BOOT/BOOTX64.EFI"), cert)).toMatch(/No signature table/);

  const refused = path.join(dir, "refused.img");
  await expect(ramroot("disk", "create", ...uefi, "--secure-boot-key", db.key, refused)).rejects.toThrow(
    /--secure-boot-cert: got nothing; expected both --secure-boot-key and --secure-boot-cert/,
  );
  await expect(ramroot("disk", "create", ...uefi, ...signedWith(other.key, db.cert), refused)).rejects.toThrow(
    /secureBoot\.privateKey: got a key that is not the certificate's/,
  );
  await expect(ramroot("disk", "create", "--size", "16", ...signedWith(db.key, db.cert), refused)).rejects.toThrow(
    /secureBoot: got a key for scheme "syslinux".*expected scheme "uefi" \(--scheme uefi\)/,
  );
  expect(fs.existsSync(refused)).toBe(false);
});
