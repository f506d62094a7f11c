/**
 * The signed UKIs a Secure Boot slot holds: the image's uki.efi with an entry's command line
 * baked into `.cmdline` (uki-cmdline.ts), signed with the user's key (sbsign under libfaketime,
 * dated the image's epoch: the same image, command line and key give the same bytes) and checked
 * with sbverify against the certificate before anything is written.
 *
 * Two per slot, because the stub ignores a command line from the boot loader under Secure Boot:
 * `ramroot.efi` (the default entry's command line) and `ramroot-trial.efi` (the same plus
 * `ramroot.trial=1`, which is how the on-machine guard knows a boot is a trial).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Arch } from "../arch";
import { privateDir } from "../cache-dir";
import { sha256File } from "../file-hash";
import { trialAppend } from "../machine/image-id";
import { ukiWithCmdline } from "./uki-cmdline";
import { assertUkiSignedBy, certificateId, signUki, type UkiSigner } from "../secure-boot-signing";

export interface SlotUkis {
  /** the UKI the slot's entry boots */
  uki: string;
  /** the UKI a trial of the slot boots (its command line with ramroot.trial=1) */
  trialUki: string;
}

/** Writes both signed UKIs into `dir` (a private scratch directory) and checks each with sbverify. */
export async function signedSlotUkis(
  imageUki: string,
  opts: { arch: Arch; cmdline: string; signer: UkiSigner; epoch: number; dir: string },
): Promise<SlotUkis> {
  const out: SlotUkis = { uki: path.join(opts.dir, "ramroot.efi"), trialUki: path.join(opts.dir, "ramroot-trial.efi") };
  for (const [file, cmdline] of [
    [out.uki, opts.cmdline],
    [out.trialUki, trialAppend(opts.cmdline)],
  ] as const) {
    const unsigned = `${file}.unsigned`;
    await ukiWithCmdline(imageUki, opts.arch, cmdline, unsigned);
    await signUki(unsigned, file, opts.signer, opts.epoch);
    fs.rmSync(unsigned);
    await assertUkiSignedBy(file, opts.signer.certificate);
  }
  return out;
}

interface Artifact {
  path: string;
  sha256: string;
}

/**
 * The slot's signed UKIs for an image's UKI and an entry's command line, kept beside the image in
 * its cache (`slot-ukis/<key>/`), so a preview, the update and a later rollback make them once.
 * The key is a hash of the image UKI, the command line, the certificate and the epoch: never of
 * the private key.
 */
export async function cachedSlotUkis(
  imageUki: Artifact,
  opts: { arch: Arch; cmdline: string; signer: UkiSigner; epoch: number },
): Promise<{ uki: Artifact; trialUki: Artifact }> {
  const key = crypto
    .createHash("sha256")
    .update(JSON.stringify([imageUki.sha256, opts.cmdline, certificateId(opts.signer.certificate), opts.epoch]))
    .digest("hex");
  const dir = path.join(path.dirname(imageUki.path), "slot-ukis", key);
  const names = { uki: path.join(dir, "ramroot.efi"), trialUki: path.join(dir, "ramroot-trial.efi") };
  if (!fs.existsSync(names.uki) || !fs.existsSync(names.trialUki)) {
    const staging = privateDir(`${dir}.${process.pid}.new`);
    try {
      await signedSlotUkis(imageUki.path, { ...opts, dir: staging });
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(staging, dir);
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }
  const artifact = async (file: string): Promise<Artifact> => ({ path: file, sha256: (await sha256File(file))! });
  return { uki: await artifact(names.uki), trialUki: await artifact(names.trialUki) };
}
