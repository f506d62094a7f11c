/**
 * Takes /boot out of the tree: the kernel (vmlinuz-<flavor>) and the microcode image go beside
 * the initramfs, never inside it. Kernel modules stay inside (/lib/modules). What a Unified
 * Kernel Image is made of besides (systemd's EFI stub, the os-release) is copied beside too.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { StagingRoot } from "../apk/staging-root";
import { archInfo } from "../arch";
import { FieldError } from "../ramroot-error";

export interface BootFiles {
  /** the kernel, moved out of the tree, or undefined when the image has none */
  kernel?: string;
  /** the microcode initramfs (loaded before the main one), or undefined */
  microcode?: string;
  /** the rest of /boot that was removed (config, System.map, ...) */
  removed: string[];
}

const MICROCODE_FILES: Record<string, string> = { intel: "intel-ucode.img", amd: "amd-ucode.img" };

/** Moves the kernel and microcode into `outDir` and deletes /boot from the tree. */
export function splitBoot(root: string, outDir: string, opts: { kernelFlavor: string; microcode: string }): BootFiles {
  // Inside the root only: a package's boot -> /host/dir never copies the host's kernel.
  const staging = new StagingRoot(root, "/boot");
  const result: BootFiles = { removed: [] };
  if (!staging.stat("boot")?.stat.isDirectory()) {
    if (opts.kernelFlavor !== "none")
      throw new FieldError(
        "kernel",
        `flavor "${opts.kernelFlavor}" was asked for, but no package installed /boot/vmlinuz-${opts.kernelFlavor}`,
      );
    return result;
  }
  fs.mkdirSync(outDir, { recursive: true });
  const names = staging.readdir("boot").sort();
  if (opts.kernelFlavor !== "none") {
    const name = `vmlinuz-${opts.kernelFlavor}`;
    if (!names.includes(name)) {
      const found = names.filter((n) => n.startsWith("vmlinuz"));
      throw new FieldError(
        "kernel",
        `no /boot/${name} in the image (found: ${found.join(", ") || "no kernel"}); install linux-${opts.kernelFlavor} or set kernel to none`,
      );
    }
    result.kernel = path.join(outDir, "vmlinuz");
    staging.copyOut(`boot/${name}`, result.kernel);
  }
  if (opts.microcode !== "none") {
    const name = MICROCODE_FILES[opts.microcode];
    if (!name || !names.includes(name))
      throw new FieldError(
        "microcode",
        `no /boot/${name ?? opts.microcode} in the image; install ${opts.microcode}-ucode`,
      );
    result.microcode = path.join(outDir, "microcode");
    staging.copyOut(`boot/${name}`, result.microcode);
  }
  result.removed = names;
  staging.remove("boot");
  staging.mkdirp("boot");
  return result;
}

/** The files beside a package layer a UKI is made from (uki.ts). */
export const EFI_STUB_FILE = "efistub";
export const OS_RELEASE_FILE = "os-release";

/** Where the stub is in the tree: Alpine's systemd-efistub (and Debian's systemd-boot-efi) put it there. */
export function efiStubPath(arch: string): string {
  return `usr/lib/systemd/boot/efi/${archInfo(arch).uefi.stub}`;
}

/**
 * Copies systemd's EFI stub and the os-release (/etc/os-release, else /usr/lib/os-release, as
 * systemd reads it; symlinks followed inside the root) into `outDir` when the tree has them.
 * Both stay in the tree: the apk database still names them, and the machine reads its os-release.
 */
export function copyUkiParts(root: string, outDir: string, arch: string): void {
  const staging = new StagingRoot(root, "/");
  fs.mkdirSync(outDir, { recursive: true });
  const stub = efiStubPath(arch);
  if (staging.stat(stub)?.stat.isFile()) staging.copyOut(stub, path.join(outDir, EFI_STUB_FILE));
  const osRelease = ["etc/os-release", "usr/lib/os-release"].find((p) => staging.stat(p)?.stat.isFile());
  if (osRelease) staging.copyOut(osRelease, path.join(outDir, OS_RELEASE_FILE));
}
