import { SLOT_PARAMETER } from "../machine/image-id";

/**
 * The slot the running kernel came from, read from its command line. An entry whose initrds are
 * layers in the partition's shared store names its slot itself (`ramroot.slot=a`, slot.ts
 * slotEntry): its paths name the store, not the slot. Otherwise the boot loader's marks say it:
 * syslinux adds `BOOT_IMAGE=/a/vmlinuz` (the entry's kernel); systemd-boot 252 adds
 * `initrd=\a\initramfs` for each `initrd` line of a Type #1 entry (beside handing the files over
 * through LINUX_INITRD_MEDIA), with the firmware's backslashes. The slot is the first directory of
 * that path on the boot partition; `ramroot.slot=` wins, then BOOT_IMAGE.
 */
const RAMROOT_SLOT = new RegExp(`(?:^|\\s)${SLOT_PARAMETER.replace(".", "\\.")}=([^\\s/\\\\]+)(?=\\s|$)`);
const BOOT_IMAGE = /(?:^|\s)BOOT_IMAGE=\/?([^/\s]+)\//;
const EFI_INITRD = /(?:^|\s)initrd=[\\/]?([^\\/\s]+)[\\/]/;

export function bootedSlotOf(cmdline: string): string | undefined {
  return (RAMROOT_SLOT.exec(cmdline) ?? BOOT_IMAGE.exec(cmdline) ?? EFI_INITRD.exec(cmdline))?.[1]?.toLowerCase();
}
