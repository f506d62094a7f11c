import * as fs from "node:fs";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import { slotEntry, writeSlot } from "../../provider/boot/slot";
import { schemeOf } from "../../provider/boot/schemes/registry";
import { openTarget } from "../../provider/boot/target";
import { debianKernel } from "../fixtures/debian-kernel";
import { makeBusyboxInitramfs } from "../fixtures/busybox-initramfs";

/** The kernel command line every test slot boots with: serial console, and a panic reboots after 5 s. */
export const TEST_APPEND = "rdinit=/sbin/init console=ttyS0 no_timer_check panic=5 quiet";

/**
 * A bootable MBR disk image made through ramroot's own API (disk create, slot write, the boot
 * config of its scheme: syslinux's, or systemd-boot's on an EFI system partition): one slot per entry of `inits`, each with the Debian kernel and a busybox initramfs
 * running that init script, DEFAULT `defaultLabel`.
 */
export async function makeSlotDisk(
  dir: string,
  name: string,
  inits: Record<string, string>,
  defaultLabel: string,
  sizeMiB = 48,
  scheme: "syslinux" | "uefi" = "syslinux",
): Promise<string> {
  const kernel = debianKernel();
  const output = path.join(dir, name);
  await createDisk({ output, sizeMiB, layout: "mbr", scheme, slots: Object.keys(inits) });
  const target = await openTarget({ kind: "image", path: output });
  try {
    for (const [slot, init] of Object.entries(inits)) {
      const initramfs = makeBusyboxInitramfs({ init, output: path.join(dir, `${name}-${slot}.cpio.gz`) });
      await writeSlot(target, {
        slot,
        files: { kernel: kernel.vmlinuz, initramfs },
        manifest: { imageId: `test-${slot}`, planId: `plan-${slot}`, when: "1980-01-01T00:00:00Z" },
      });
      fs.rmSync(initramfs);
    }
    await (
      await schemeOf(target)
    ).writeConfig(target, {
      defaultLabel,
      timeout: 0,
      entries: Object.keys(inits).map((slot) =>
        slotEntry(slot, { microcode: false, append: TEST_APPEND, menuLabel: `slot ${slot}` }),
      ),
    });
  } finally {
    await target.close();
  }
  return output;
}

/** A private copy of an image for one test. */
export function copyImage(image: string, dir: string, name: string): string {
  const copy = path.join(dir, name);
  fs.copyFileSync(image, copy);
  return copy;
}
