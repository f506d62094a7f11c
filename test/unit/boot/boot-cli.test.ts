import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import * as crypto from "node:crypto";
import { registerBootCommands } from "../../../provider/cli/boot-command";
import { mtools } from "../../../provider/boot/mtools";
import { secureBootKeyPair } from "../../fixtures/secure-boot-keys";
import { readUkiSigner, ukiSignatureRefusal } from "../../../provider/secure-boot-signing";
import { efiStubPath } from "../../../provider/image/boot-split";
import { writeUki } from "../../../provider/image/uki";
import { signedSlotUkis } from "../../../provider/image/uki-slot";
import { namingSlot, writeSlot } from "../../../provider/boot/slot";
import { openTarget } from "../../../provider/boot/target";
import { debianDeb } from "../../fixtures/debian-deb";
import { debianKernel } from "../../fixtures/debian-kernel";

jest.setTimeout(300_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-bootcli-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `ramroot <args>` with only the boot verbs registered, returning what it printed. */
async function ramroot(...args: string[]): Promise<unknown> {
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
  return JSON.parse(out);
}

test("disk create, slot write, syslinux write/once/clear-once/set-default, through the CLI", async () => {
  const image = path.join(dir, "cli.img");
  const created = (await ramroot(
    "disk",
    "create",
    "--size",
    "16",
    "--layout",
    "mbr",
    "--slots",
    "a,b",
    "--volume-id",
    "0badcafe",
    image,
  )) as { fatOffset: number };
  expect(created.fatOffset).toBe(1048576);
  const kernel = path.join(dir, "k");
  fs.writeFileSync(kernel, "kernel bytes");
  const slot = (await ramroot(
    "slot",
    "write",
    "--image",
    image,
    "--slot",
    "b",
    "--kernel",
    kernel,
    "--initramfs",
    kernel,
    "--image-id",
    "img1",
  )) as { consistent: boolean };
  expect(slot.consistent).toBe(true);
  // DEFAULT a while slot a is empty would leave the disk unbootable: refused, nothing written.
  await expect(ramroot("syslinux", "write", "--image", image, "--default", "a")).rejects.toThrow(
    /refusing to make "a" bootable: entry a: \/a\/vmlinuz does not exist/,
  );
  expect(await ramroot("syslinux", "show", "--image", image)).toEqual({ scheme: "syslinux" });
  await ramroot(
    "slot",
    "write",
    "--image",
    image,
    "--slot",
    "a",
    "--kernel",
    kernel,
    "--initramfs",
    kernel,
    "--image-id",
    "img0",
  );
  expect(await ramroot("syslinux", "write", "--image", image, "--default", "a")).toMatchObject({
    path: "syslinux.cfg",
  });
  expect(await ramroot("syslinux", "once", "--image", image, "b")).toEqual({ bootOnce: "b" });
  expect(await ramroot("syslinux", "show", "--image", image)).toMatchObject({
    path: "syslinux.cfg",
    bootOnce: "b",
    config: { defaultLabel: "a" },
  });
  expect(await ramroot("syslinux", "clear-once", "--image", image)).toEqual({});
  await ramroot("syslinux", "set-default", "--image", image, "b");
  expect(await ramroot("syslinux", "show", "--image", image)).toMatchObject({ config: { defaultLabel: "b" } });
  expect(await ramroot("slot", "show", "--image", image, "--slot", "b")).toMatchObject({
    slot: "b",
    consistent: true,
    manifest: { imageId: "img1" },
  });
  await expect(ramroot("slot", "show", "--dir", dir, "--image", image, "--slot", "b")).rejects.toThrow(
    /give one of --dir <path>, --image <file> or --ssh .*, or none for the stack.s/,
  );
  await expect(ramroot("disk", "create", "--size", "16", "--layout", "gpt", image)).rejects.toThrow(
    /layout: got "gpt"; expected "mbr" or "superfloppy"/,
  );
  // An existing disk holds deployed slots: replaced only when asked.
  const before = fs.readFileSync(image);
  await expect(ramroot("disk", "create", "--size", "16", image)).rejects.toThrow(
    /exists \(it may hold deployed slots and their history\).*--force/,
  );
  expect(fs.readFileSync(image).equals(before)).toBe(true);
  await ramroot("disk", "create", "--size", "16", "--force", image);
  expect(await ramroot("slot", "show", "--image", image, "--slot", "b")).toEqual({ slot: "b", empty: true });
});

// `disk create --scheme uefi --secure-boot-key K --secure-boot-cert C`: systemd-boot on the ESP signed
// with the key (sbsign), sbverify accepting both copies, the same bytes twice (signed at the package
// file's time), the key nowhere in the image; a key without its certificate, a key that is not the
// certificate's, or a key for a syslinux disk is one error naming the flag or field, nothing written.
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
  const made = (await ramroot("disk", "create", ...uefi, ...signedWith(db.key, db.cert), a)) as { sha256: string };
  expect(await ramroot("disk", "create", ...uefi, ...signedWith(db.key, db.cert), b)).toMatchObject({
    sha256: made.sha256,
  });
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

// `syslinux write` on an ESP whose slot holds signed UKIs (Secure Boot): the entry boots the UKI
// with the command line baked into it, never the slot's kernel and initrds (the firmware would
// refuse an unsigned kernel under Secure Boot); --append does not change it and says so.
test("syslinux write on a Secure Boot slot: the entry boots its signed UKI, with the command line baked in", async () => {
  const esp = path.join(dir, "sb-esp.img");
  await ramroot("disk", "create", "--size", "32", "--scheme", "uefi", "--slots", "a,b", "--volume-id", "5b5b0002", esp);
  const stubRoot = debianDeb("systemd-boot-efi", { ready: (r) => fs.existsSync(path.join(r, efiStubPath("x86_64"))) });
  const kernel = debianKernel("x86_64").vmlinuz;
  const initramfs = path.join(dir, "sb-initramfs");
  fs.writeFileSync(initramfs, Buffer.alloc(4099, 0x49));
  const imageUki = path.join(dir, "sb-uki.efi");
  await writeUki(
    {
      arch: "x86_64",
      stub: path.join(stubRoot, efiStubPath("x86_64")),
      kernel,
      initrds: [initramfs],
      cmdline: "rdinit=/sbin/init",
      osRelease: 'ID=alpine\nPRETTY_NAME="Alpine Linux"\n',
    },
    imageUki,
  );
  const db = secureBootKeyPair(dir, "sb-db");
  const signer = readUkiSigner({ privateKey: db.key, certificate: db.cert }, dir);
  const baked = namingSlot("a", "rdinit=/sbin/init console=ttyS0 ramroot.image=0123");
  const ukiDir = fs.mkdtempSync(path.join(dir, "sb-ukis-"));
  const ukis = await signedSlotUkis(imageUki, {
    arch: "x86_64",
    cmdline: baked,
    signer,
    epoch: 1700000000,
    dir: ukiDir,
  });
  const target = await openTarget({ kind: "image", path: esp });
  try {
    await writeSlot(target, {
      slot: "a",
      files: { kernel, initramfs, uki: ukis.uki, trialUki: ukis.trialUki },
      manifest: { imageId: "0123", planId: "0123" },
    });
  } finally {
    await target.close();
  }
  const notes: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    notes.push(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await ramroot("syslinux", "write", "--image", esp, "--default", "a", "--slots", "a", "--append", "quiet");
  } finally {
    process.stderr.write = write;
  }
  expect(notes.join("")).toMatch(/slot a boots a signed UKI: its command line is the one baked into it, not --append/);
  const shown = (await ramroot("syslinux", "show", "--image", esp)) as {
    scheme: string;
    config: { defaultLabel: string; entries: { label: string; kernel: string; initrd: string[]; append: string }[] };
  };
  expect(shown.scheme).toBe("uefi");
  expect(shown.config.defaultLabel).toBe("a");
  expect(shown.config.entries).toEqual([
    expect.objectContaining({ label: "a", kernel: "/a/ramroot.efi", initrd: [], append: baked }),
  ]);
});
