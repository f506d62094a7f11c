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
import * as path from "node:path";
import type { Arch } from "../arch";
import { trialAppend } from "../machine/image-id";
import { ukiWithCmdline } from "./uki-cmdline";
import { assertUkiSignedBy, signUki, type UkiSigner } from "./uki-signing";

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
    await assertUkiSignedBy(file, opts.signer.certificate);
  }
  return out;
}
