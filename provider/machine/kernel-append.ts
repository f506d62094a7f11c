/**
 * What may go on a boot entry's kernel command line. syslinux reads `initrd=` in APPEND as the
 * entry's initramfs (it once made entry a load /b/initramfs while ramroot believed a used only
 * slot a) and sets `BOOT_IMAGE=` itself (ramroot reads it to know the running slot); ramroot
 * sets `ramroot.image=` (a trial waits for it), `ramroot.slot=` on an entry whose initrds are shared
 * layers (the running slot is read from it) and, on the trial entry only, `ramroot.trial=` (the
 * machine's guard reboots a trial that is not healthy in time: on every entry it would make each
 * boot a trial). A command line that names them, or spans lines
 * (a newline would end the APPEND line and start a keyword), is refused where it is given, so
 * the preview stops, not the update after a slot was written.
 */
import { z } from "zod";
import { parseInput } from "../input-error";
import { IMAGE_PARAMETER, SLOT_PARAMETER, TRIAL_PARAMETER } from "./image-id";

/** Parameters syslinux or ramroot set; an entry's command line must not set them. */
const SYSLINUX_SET = ["initrd", "boot_image"];
const RAMROOT_SET = [IMAGE_PARAMETER, SLOT_PARAMETER, TRIAL_PARAMETER];

function overriding(value: string, names: string[]): string | undefined {
  return value.split(/\s+/).find((token) => names.includes(token.split("=")[0]?.toLowerCase() ?? ""));
}

const singleLine = (v: string) => !/[\r\n\0]/.test(v);

/** A whole entry's APPEND (ramroot's parameters included). */
export const entryAppendSchema = z
  .string()
  .refine(singleLine, "expected a single line (no newline, carriage return or NUL)")
  .refine((v) => overriding(v, SYSLINUX_SET) === undefined, {
    message:
      "expected no initrd= or BOOT_IMAGE= (syslinux sets them from the entry; an initrd= would load another slot's initramfs)",
  });

/** What a user adds to the command line (`ramroot:append`, an image's `cmdline`). */
export const userAppendSchema = entryAppendSchema.refine((v) => overriding(v, RAMROOT_SET) === undefined, {
  message:
    "expected no ramroot.image=, ramroot.slot= or ramroot.trial= (ramroot sets them: the image's id, the slot of an entry whose initrds are shared layers, and the trial entry's mark)",
});

const appendInput = z.strictObject({ append: userAppendSchema });

/** Validates a user's command line addition (`append`), or throws an error naming it, its value and what is accepted. */
export function parseUserAppend(value: string | undefined): string {
  return parseInput(appendInput, { append: value ?? "" }, "kernel command line").append;
}
