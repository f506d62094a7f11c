/**
 * UEFI firmware for QEMU: OVMF on x86_64, AAVMF on aarch64 (from the arch table), as two flash
 * devices: the firmware's code read-only, and a variable store (NVRAM: boot entries, BootNext,
 * BootOrder) that belongs to one machine. Each run or twin gets its own copy of the pristine
 * store, so what one machine's firmware writes is never seen by another.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { archInfo, type Arch } from "../arch";
import { HostError } from "../ramroot-error";

function firmwareFile(arch: Arch, which: "code" | "vars"): string {
  const firmware = archInfo(arch).uefi.firmware;
  const file = firmware[which];
  if (!fs.existsSync(file))
    throw new HostError(
      `UEFI firmware for ${arch}: ${file} is missing; install Debian's ${firmware.debianPackage} (scripts/setup.sh does)`,
    );
  return file;
}

/** Copies the firmware's pristine variable store to `dest` (a new file; an existing one is refused). */
export function copyVarsStore(arch: Arch, dest: string): void {
  const pristine = firmwareFile(arch, "vars");
  fs.mkdirSync(path.dirname(path.resolve(dest)), { recursive: true });
  // A clone where the filesystem can (AAVMF's store is 64 MiB), a copy otherwise.
  fs.copyFileSync(pristine, dest, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
  fs.chmodSync(dest, 0o644);
}

/** Makes `dest` a copy of the pristine store unless it exists already (a twin keeps its NVRAM across runs). */
export function ensureVarsStore(arch: Arch, dest: string): { created: boolean } {
  if (fs.existsSync(dest)) return { created: false };
  copyVarsStore(arch, dest);
  return { created: true };
}

/** QEMU's flash devices: the firmware's code read-only, then the machine's variable store. */
export function firmwareArgs(arch: Arch, varsFile: string): string[] {
  return [
    "-drive",
    `if=pflash,format=raw,unit=0,readonly=on,file=${firmwareFile(arch, "code")}`,
    "-drive",
    `if=pflash,format=raw,unit=1,file=${varsFile}`,
  ];
}
