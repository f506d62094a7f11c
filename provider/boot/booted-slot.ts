/**
 * The slot the running kernel came from, read from its command line, which each boot loader
 * marks: syslinux adds `BOOT_IMAGE=/a/vmlinuz` (the entry's kernel); systemd-boot 252 adds
 * `initrd=\a\initramfs` for each `initrd` line of a Type #1 entry (beside handing the files over
 * through LINUX_INITRD_MEDIA), with the firmware's backslashes. The slot is the first directory of
 * that path on the boot partition; BOOT_IMAGE wins when both are there.
 */
const BOOT_IMAGE = /(?:^|\s)BOOT_IMAGE=\/?([^/\s]+)\//;
const EFI_INITRD = /(?:^|\s)initrd=[\\/]?([^\\/\s]+)[\\/]/;

export function bootedSlotOf(cmdline: string): string | undefined {
  return (BOOT_IMAGE.exec(cmdline) ?? EFI_INITRD.exec(cmdline))?.[1]?.toLowerCase();
}
