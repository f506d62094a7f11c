/**
 * The one-time boot under systemd-boot: the LoaderEntryOneShot EFI variable (vendor GUID
 * 4a67b082-0a4c-41cf-b6c7-440b29bb8c4f, a NUL-terminated UTF-16LE entry id). systemd-boot reads
 * it and deletes it before it boots anything (src/boot/efi/boot.c, config_default_entry_select),
 * so whatever the trial boot does next (a panic with panic=N, a watchdog reset, the guard's
 * reboot, a power cut) the following boot is the default again: syslinux's ADV once-boot, in
 * the firmware's NVRAM. The variable lives on the machine, so it is set through the target's
 * shell there (efivarfs); a disk image or a mounted directory has no NVRAM and no once-boot.
 */
import type { BootTarget, MachineShell } from "../../boot-target";
import type { BootConfigSpec } from "../boot-scheme";
import { readLoaderConfig } from "./loader-config";
import { FieldError, MachineError, TargetError } from "../../../ramroot-error";

const EFIVARS = "/sys/firmware/efi/efivars";
const ONESHOT = `${EFIVARS}/LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f`;
/** EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, as efivarfs wants the first 4 bytes. */
const ATTRIBUTES = Buffer.from([0x07, 0x00, 0x00, 0x00]);
const NO_EFI = 3;
const NO_CHATTR = 4;

/**
 * efivarfs mounted (the image may not mount it; Debian and Alpine build it as a module), or exit
 * NO_EFI when the machine did not boot through UEFI.
 */
const MOUNT = `[ -d /sys/firmware/efi ] || exit ${NO_EFI}; grep -q " ${EFIVARS} efivarfs " /proc/mounts || { modprobe -q efivarfs 2>/dev/null; mount -t efivarfs efivarfs ${EFIVARS}; }`;

/**
 * Removes the variable when it is set. efivarfs marks every variable outside the kernel's short
 * list of known ones immutable (fs/efivarfs/inode.c), this one included, even one it just
 * created: it is unlinked only after `chattr -i` (busybox's applet, or e2fsprogs'), as systemd's
 * own efi_set_variable does. A new one is created and written in one go, which needs no chattr.
 */
const REMOVE = `[ ! -e ${ONESHOT} ] || { command -v chattr >/dev/null || exit ${NO_CHATTR}; chattr -i ${ONESHOT} && rm -f ${ONESHOT}; }`;

function shellOf(target: BootTarget, what: string): MachineShell {
  if (!target.machine)
    throw new TargetError(
      `${target.describe()}: ${what} under UEFI is the LoaderEntryOneShot variable in the machine's NVRAM, set from the running machine: it needs an ssh target (a disk image or a mounted partition has no NVRAM)`,
    );
  return target.machine;
}

async function run(shell: MachineShell, target: BootTarget, script: string, input?: Buffer): Promise<Buffer> {
  const result = await shell.run(`${MOUNT}\n${script}`, input);
  if (result.exitCode === NO_EFI)
    throw new TargetError(
      `${target.describe()}: the machine did not boot through UEFI (no /sys/firmware/efi)`,
      "boot it through UEFI (firmware set to UEFI, not legacy/CSM), or deploy a BIOS machine with scheme syslinux",
    );
  if (result.exitCode === NO_CHATTR)
    throw new FieldError(
      "packages",
      `${target.describe()}: LoaderEntryOneShot is set and the machine has no chattr to clear efivarfs' immutable flag on it: add busybox's chattr applet or e2fsprogs-extra to the image's packages`,
    );
  if (result.exitCode !== 0)
    throw new MachineError(
      `${target.describe()}: LoaderEntryOneShot on the machine failed (exit ${result.exitCode}): ${result.stderr.trim()}`,
    );
  return result.stdout;
}

/** The entry id systemd-boot will boot once, without ".conf", or undefined (none, or no machine to ask). */
export async function readOneShot(target: BootTarget): Promise<string | undefined> {
  if (!target.machine) return undefined;
  const raw = await run(target.machine, target, `[ -e ${ONESHOT} ] || exit 0; cat ${ONESHOT}`);
  if (raw.length <= 4) return undefined;
  const id = raw.subarray(4).toString("utf16le").replace(/\0+$/, "");
  return id === "" ? undefined : id.replace(/\.conf$/i, "");
}

async function writeOneShot(target: BootTarget, label: string | undefined): Promise<void> {
  const shell = shellOf(target, label === undefined ? "clearing a one-time boot" : "a one-time boot");
  // efivarfs takes a variable in one write(2): dd from a file of exactly that size does one.
  const data =
    label === undefined
      ? undefined
      : Buffer.concat([ATTRIBUTES, Buffer.from(`${label.toLowerCase()}.conf\0`, "utf16le")]);
  const script =
    data === undefined
      ? REMOVE
      : `t=$(mktemp) && cat > "$t" && ${REMOVE} && dd if="$t" of=${ONESHOT} bs=${data.length} count=1 2>/dev/null; s=$?; rm -f "$t"; exit $s`;
  await run(shell, target, script, data);
  const now = await readOneShot(target);
  if (now !== label?.toLowerCase())
    throw new MachineError(
      `${target.describe()}: LoaderEntryOneShot reads back as ${JSON.stringify(now)} after setting ${JSON.stringify(label)}`,
    );
}

/** Boots `label` (an entry of the current config) on the next boot only. */
export async function setOneShot(target: BootTarget, label: string): Promise<void> {
  const config = await readLoaderConfig(target);
  if (!config?.spec.entries.some((e) => e.label === label.toLowerCase()))
    throw new FieldError(
      "label",
      `got ${JSON.stringify(label)}; expected one of the entries in loader/entries: ${config?.spec.entries.map((e) => e.label).join(", ") ?? "none"}`,
    );
  await writeOneShot(target, label);
}

export async function clearOneShot(target: BootTarget): Promise<void> {
  if (!target.machine || (await readOneShot(target)) === undefined) return;
  await writeOneShot(target, undefined);
}

/**
 * Clears a one-time boot of an entry `spec` lacks. systemd-boot ignores a one-shot naming no
 * entry and boots the default, so such a variable cannot stop a boot; it is cleared anyway, so
 * that it cannot name an entry a later config brings back.
 */
export async function clearStaleOneShot(target: BootTarget, spec: BootConfigSpec): Promise<string | undefined> {
  const pending = await readOneShot(target).catch(() => undefined);
  if (pending === undefined || spec.entries.some((e) => e.label.toLowerCase() === pending)) return undefined;
  await writeOneShot(target, undefined);
  return pending;
}
