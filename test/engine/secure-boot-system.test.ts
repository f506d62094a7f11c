import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import { openTarget, type TargetSpec } from "../../provider/boot/target";
import { inspectTarget } from "../../provider/boot/inspect";
import { rollback } from "../../provider/deploy/rollback";
import { mtools } from "../../provider/boot/mtools";
import { bootQemu } from "../../provider/qemu/boot";
import { ukiCmdline } from "../../provider/image/uki-cmdline";
import { ukiSignatureRefusal } from "../../provider/secure-boot-signing";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, type EngineStack } from "./pulumi-harness";
import { expectEspImport } from "./esp-import";
import { expectNoKey, exportAsUser, stateText } from "./ssh-stack";
import { secureBootKeyPair, snakeoil } from "../fixtures/secure-boot-keys";

// An AbSystem with `secureBoot` on an EFI system partition, through the real pulumi CLI and
// provider plugin: each slot gets signed UKIs (the entry's command line baked in, and the trial's
// with ramroot.trial=1), checked by sbverify before the slot write; the entry boots it with
// `efi`. The key is given as a secret in the stack config and is nowhere in the state. A key that
// is not the certificate's, or a partition that is not an ESP, stops the preview naming the
// field. sbverify (Debian's sbsigntool) checks what is on the disk. The key is the one Debian's
// OVMF_VARS_4M.snakeoil.fd enrolls in db; `disk create` signed the ESP's systemd-boot with it, so
// the deployed slot boots under OVMF with Secure Boot enforced, and the same slot tampered with
// is refused by the firmware.
jest.setTimeout(900_000);

let env: EngineStack;
let repo: ImageRepo;
let esp: string;
let bios: string;
let keyPem: string;
let certPem: string;
let otherKeyPem: string;
let overlay: string;
let varsStore: string;

// The overlay's service: the marker names the image the UKI's command line carries.
const SERVICE = `#!/bin/sh
[ "$1" = start ] || exit 0
image=$(sed -n 's/.*ramroot\\.image=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
echo "SB-MACHINE-UP image=$image"
`;

const espTarget = (): TargetSpec => ({ kind: "image", path: esp });
const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");

function keyPair(name: string): { key: string; cert: string } {
  const made = secureBootKeyPair(env.dir, name);
  return { key: fs.readFileSync(made.key, "utf8"), cert: fs.readFileSync(made.cert, "utf8") };
}

async function configure(target: TargetSpec, privateKey: string): Promise<void> {
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify(target) },
    "ramroot:image": {
      value: JSON.stringify({
        repositories: [repo.repository],
        keys: [repo.keysDir],
        packages: ["alpine-baselayout", "busybox", "ramroot-init"],
        kernel: "lts",
        cmdline: "console=ttyS0",
        overlay,
        services: { default: ["machine"] },
        epoch: 1700000000,
      }),
    },
    "ramroot:secureBoot": { value: JSON.stringify({ privateKey, certificate: certPem }), secret: true },
  });
}

/** A file of the ESP, copied out. */
async function fromEsp(file: string): Promise<string> {
  const t = await openTarget({ kind: "image", path: esp });
  try {
    const out = path.join(env.dir, file.replace(/\//g, "_"));
    fs.writeFileSync(out, (await t.readFile(file))!);
    return out;
  } finally {
    await t.close();
  }
}

beforeAll(async () => {
  env = await machineStack("secure-boot");
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"), { efiStub: true });
  const db = snakeoil();
  keyPem = db.key;
  certPem = fs.readFileSync(db.cert, "utf8");
  varsStore = db.vars;
  otherKeyPem = keyPair("other").key;
  overlay = path.join(env.dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "init.d"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "init.d", "machine"), SERVICE, { mode: 0o755 });
  esp = path.join(env.dir, "esp.img");
  // As a user runs `disk create --scheme uefi --secure-boot-key K --secure-boot-cert C`: the key as a file.
  const keyFile = path.join(env.dir, "db.key");
  fs.writeFileSync(keyFile, keyPem, { mode: 0o600 });
  await createDisk({
    output: esp,
    sizeMiB: 64,
    layout: "mbr",
    slots: ["a", "b"],
    scheme: "uefi",
    secureBoot: { privateKey: keyFile, certificate: db.cert },
  });
  bios = path.join(env.dir, "bios.img");
  await createDisk({ output: bios, sizeMiB: 16, layout: "mbr", slots: ["a", "b"] });
});
afterAll(async () => env?.cleanup());

/** Boots a copy of the ESP (changed by `tamper` first) under OVMF with Secure Boot on and the snakeoil cert in db. */
async function bootSecure(name: string, marker: string, tamper?: (copy: string) => Promise<void>) {
  const copy = path.join(env.dir, `${name}.img`);
  fs.copyFileSync(esp, copy);
  await tamper?.(copy);
  const varsFile = path.join(env.dir, `${name}-vars.fd`);
  fs.copyFileSync(varsStore, varsFile);
  return bootQemu({
    arch: "x86_64",
    uefi: true,
    varsFile,
    media: { kind: "disk", image: copy },
    marker,
    timeoutMs: 300_000,
  });
}

test("secureBoot on an ESP: signed UKIs in the slot, the key in no state, a wrong pair or a BIOS partition stops the preview; boots under OVMF with Secure Boot through the signed systemd-boot of disk create, a tampered UKI refused; a damaged signed slot rewritten, rollback, import", async () => {
  await step(
    "a key that is not the certificate's: the preview names secureBoot.privateKey, never the key",
    async () => {
      const before = sha256(esp);
      await configure({ kind: "image", path: esp }, otherKeyPem);
      const err = await env.stack.preview().catch((e: Error) => e);
      expect(String(err)).toMatch(/secureBoot\.privateKey: got a key that is not the certificate's/);
      expectNoKey(String(err), otherKeyPem);
      expect(sha256(esp)).toBe(before);
    },
  );

  await step("a syslinux partition: the preview names secureBoot and what the partition is", async () => {
    const before = sha256(bios);
    await configure({ kind: "image", path: bios }, keyPem);
    await expect(env.stack.preview()).rejects.toThrow(
      /secureBoot: Secure Boot boots a signed UKI from an EFI system partition, and image .*bios\.img.* is a syslinux boot partition/,
    );
    expect(sha256(bios)).toBe(before);
  });

  await step("up on the ESP: signed UKIs in slot a, verified; the entry boots ramroot.efi", async () => {
    await configure({ kind: "image", path: esp }, keyPem);
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.outputs.activeSlot!.value).toBe("a");
    const image = up.outputs.imageId!.value as string;
    const entry = fs.readFileSync(await fromEsp("loader/entries/a.conf"), "utf8");
    expect(entry).toMatch(/^efi \/a\/ramroot\.efi$/m);
    expect(entry).not.toMatch(/^(linux|initrd) /m);
    const options = /^options (.*)$/m.exec(entry)![1]!;
    expect(options).toContain(`ramroot.image=${image}`);
    expect(options).toContain("panic=10");
    const uki = await fromEsp("a/ramroot.efi");
    const trial = await fromEsp("a/ramroot-trial.efi");
    expect(await ukiSignatureRefusal(uki, certPem)).toBeUndefined();
    expect(await ukiSignatureRefusal(trial, certPem)).toBeUndefined();
    expect(ukiCmdline(uki)).toBe(options);
    expect(ukiCmdline(trial)).toBe(`${options} ramroot.trial=1`);
  });

  await step(
    "disk create signed systemd-boot with the key: sbverify passes, the key is nowhere on the disk",
    async () => {
      for (const loader of ["EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi"])
        expect(await ukiSignatureRefusal(await fromEsp(loader), certPem)).toBeUndefined();
      const body = /-----BEGIN [A-Z ]*PRIVATE KEY-----\n([^\n]+)/.exec(keyPem)![1]!;
      expect(fs.readFileSync(esp).includes(body)).toBe(false);
      expect(
        fs
          .readFileSync(esp)
          .includes(Buffer.from(crypto.createPrivateKey(keyPem).export({ format: "der", type: "pkcs8" }))),
      ).toBe(false);
    },
  );

  await step("OVMF with Secure Boot enforced boots the deployed slot through the signed systemd-boot", async () => {
    const image = (await env.stack.outputs()).imageId!.value as string;
    const on = await bootSecure("sb-boot", `SB-MACHINE-UP image=${image}`);
    if (!on.found) console.log(on.log.slice(-3000));
    expect(on.found).toBe(true);
    expect(on.log).toContain("secureboot: Secure boot enabled");
  });

  await step(
    "the slot's UKI with one byte of its command line changed: the firmware refuses it, no kernel starts",
    async () => {
      const off = await bootSecure("sb-tampered", "Error loading", async (copy) => {
        const uki = fs.readFileSync(await fromEsp("a/ramroot.efi"));
        const at = uki.indexOf("panic=10");
        expect(at).toBeGreaterThan(0);
        uki.write("panic=11", at);
        const file = path.join(env.dir, "tampered.efi");
        fs.writeFileSync(file, uki);
        const done = await mtools("mcopy", copy, 1 << 20, ["-o", file, "::/a/ramroot.efi"]);
        expect(done.exitCode).toBe(0);
        expect(await ukiSignatureRefusal(file, certPem)).toBeDefined();
      });
      if (!off.found) console.log(off.log.slice(-3000));
      expect(off.found).toBe(true);
      expect(off.log).not.toContain("Linux version");
    },
  );

  await step("the key is in no state file and no `pulumi stack export`; a preview shows no change", async () => {
    expectNoKey(stateText(env), keyPem);
    expectNoKey(await exportAsUser(env), keyPem);
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update ?? 0).toBe(0);
    expect(preview.changeSummary.create ?? 0).toBe(0);
  });

  const second = await step("an edited image: up writes signed slot b, DEFAULT b", async () => {
    fs.writeFileSync(path.join(overlay, "etc", "motd"), "second\n");
    const up = await env.stack.up();
    expect(up.outputs.activeSlot!.value).toBe("b");
    for (const f of ["b/ramroot.efi", "b/ramroot-trial.efi"])
      expect(await ukiSignatureRefusal(await fromEsp(f), certPem)).toBeUndefined();
    return up.outputs.imageId!.value as string;
  });

  await step(
    "slot a damaged: the preview names it, up rewrites it from the image cache with its UKIs signed again, the same bytes",
    async () => {
      const was = sha256(await fromEsp("a/ramroot-trial.efi"));
      const junk = path.join(env.dir, "junk.efi");
      fs.writeFileSync(junk, "not a UKI\n");
      expect((await mtools("mcopy", esp, 1 << 20, ["-o", junk, "::/a/ramroot-trial.efi"])).exitCode).toBe(0);
      expect((await inspectTarget(espTarget(), ["a", "b"])).slots.a?.consistent).toBe(false);
      // Signed again, not copied: the slot UKIs made by the first up leave the image cache.
      for (const dir of fs.globSync(path.join(env.dir, "images", "**", "slot-ukis")))
        fs.rmSync(dir, { recursive: true, force: true });
      const preview = await env.stack.preview({ diff: true });
      expect(preview.stdout).toMatch(/machine-slot-a/);
      expect(preview.stdout).not.toMatch(/not rewritten/);
      expect(preview.changeSummary.update ?? 0).toBeGreaterThan(0);
      const up = await env.stack.up();
      expect(up.outputs.activeSlot!.value).toBe("b");
      const after = await inspectTarget(espTarget(), ["a", "b"]);
      expect(after.slots.a?.consistent).toBe(true);
      expect(after.defaultLabel).toBe("b");
      const trial = await fromEsp("a/ramroot-trial.efi");
      expect(sha256(trial)).toBe(was);
      expect(await ukiSignatureRefusal(trial, certPem)).toBeUndefined();
      expectNoKey(stateText(env), keyPem);
    },
  );

  await step("ramroot rollback: DEFAULT back to signed slot a, nothing copied, sbverify still passes", async () => {
    const before = await inspectTarget(espTarget(), ["a", "b"]);
    const result = await rollback(env.stack, espTarget());
    expect(result.inSlot).toBe("a");
    const after = await inspectTarget(espTarget(), ["a", "b"]);
    expect(after.defaultLabel).toBe("a");
    expect(after.slots.a?.manifest?.when).toBe(before.slots.a?.manifest?.when);
    expect(after.slots.b?.manifest?.imageId).toBe(second);
    expect(fs.readFileSync(await fromEsp("loader/entries/a.conf"), "utf8")).toMatch(/^efi \/a\/ramroot\.efi$/m);
    for (const f of ["a/ramroot.efi", "a/ramroot-trial.efi"])
      expect(await ukiSignatureRefusal(await fromEsp(f), certPem)).toBeUndefined();
    expectNoKey(stateText(env), keyPem);
  });

  await step(
    "import: another stack adopts the signed slots (their UKIs by hash) and the ESP's config, writing nothing",
    async () => {
      await expectEspImport("sb-import", espTarget(), "a", certPem);
    },
  );
});
