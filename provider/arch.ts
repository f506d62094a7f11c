/**
 * The architectures ramroot builds and boots, and everything that differs between them, in one
 * table: the name apk and Debian give each, how QEMU runs it (binary, machine, CPU, the serial
 * console the kernel writes to), its UEFI names (systemd's EFI stub, the removable-media boot
 * file, the PE machine type) and firmware (OVMF, AAVMF), and how the kernel recognises its
 * executables (the ELF machine, for binfmt_misc). Nothing else names an architecture's details.
 */
import { FieldError } from "./ramroot-error";

/** Every architecture Alpine publishes packages for: what repository tools (`ramroot apk`) accept. */
export const APK_ARCHES = [
  "x86_64",
  "x86",
  "aarch64",
  "armhf",
  "armv7",
  "ppc64le",
  "s390x",
  "riscv64",
  "loongarch64",
] as const;

/** apk's name for each of Node's process.arch values. */
const APK_ARCH_OF_NODE: Partial<Record<NodeJS.Architecture, (typeof APK_ARCHES)[number]>> = {
  x64: "x86_64",
  arm64: "aarch64",
  ia32: "x86",
  arm: "armv7",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loongarch64",
};

/** apk's architecture name for the machine this runs on. */
export function hostApkArch(): string {
  return APK_ARCH_OF_NODE[process.arch] ?? process.arch;
}

/** The architectures ramroot builds images for and boots. */
export const ARCHES = ["x86_64", "aarch64"] as const;
export type Arch = (typeof ARCHES)[number];

export interface UefiFirmware {
  /** the firmware's code, mapped read-only as the first flash device */
  code: string;
  /** the pristine variable store; every run gets its own copy as the second flash device */
  vars: string;
  /** the Debian package that ships both */
  debianPackage: string;
}

export interface ArchInfo {
  /** apk's name (repository subdirectory, APKINDEX `A:`) */
  apk: string;
  /** Debian's name (dpkg --add-architecture, `apt-get download pkg:<arch>`) */
  debian: string;
  qemu: {
    binary: string;
    /** the Debian package that ships the binary */
    debianPackage: string;
    machine: string;
    /** -cpu; undefined keeps QEMU's default */
    cpu?: string;
    /** the serial console the kernel writes to (console=...) */
    console: string;
    /**
     * what a kernel QEMU boots directly (a boot test) is also given. x86_64: no_timer_check, since
     * under TCG on a busy host the IO-APIC timer check can miss its ticks and panic ("IO-APIC +
     * timer doesn't work!") an image that is fine; a deployed entry never gets it.
     */
    kernelArgs: readonly string[];
    /**
     * A guest reset is done as a power cycle: QEMU runs with -no-reboot and the twin starts it
     * again on the same disks and NVRAM (as a board's watchdog or reset button cuts power). On
     * aarch64 `virt` under TCG with AAVMF, a warm reset after the guest has done real work (a NAS
     * image for a few minutes) left the firmware stuck after its banner, its vCPU in TCG's
     * code-invalidating store path (docs/machine-twin.md, "Resets"); a cold start is back in seconds.
     */
    powerCycleOnReset: boolean;
  };
  /** the ELF e_machine of its executables (what binfmt_misc matches on) */
  elfMachine: number;
  /** the name QEMU's user-mode emulator registers under in binfmt_misc (qemu-user-static, binfmt-support) */
  binfmtName: string;
  uefi: {
    /** systemd's EFI stub for UKIs, as named in /usr/lib/systemd/boot/efi/ (Alpine's systemd-efistub, Debian's systemd-boot-efi) */
    stub: string;
    /** the file UEFI firmware boots from removable media: EFI/BOOT/<bootFile> on an ESP */
    bootFile: string;
    /** systemd-boot, as named in /usr/lib/systemd/boot/efi/ (Debian's systemd-boot-efi) */
    systemdBoot: string;
    /** the PE/COFF machine type of its EFI executables (the stub and the kernel must both carry it) */
    peMachine: number;
    firmware: UefiFirmware;
  };
  /** the kernel image format: x86_64's bzImage, aarch64's Image (both PE/COFF executables with an EFI stub) */
  kernelImage: "bzImage" | "Image";
}

const TABLE: Record<Arch, ArchInfo> = {
  x86_64: {
    apk: "x86_64",
    debian: "amd64",
    qemu: {
      binary: "qemu-system-x86_64",
      debianPackage: "qemu-system-x86",
      machine: "pc",
      console: "ttyS0",
      kernelArgs: ["no_timer_check"],
      powerCycleOnReset: false,
    },
    elfMachine: 62,
    binfmtName: "qemu-x86_64",
    uefi: {
      stub: "linuxx64.efi.stub",
      bootFile: "BOOTX64.EFI",
      systemdBoot: "systemd-bootx64.efi",
      peMachine: 0x8664,
      firmware: {
        code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
        vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
        debianPackage: "ovmf",
      },
    },
    kernelImage: "bzImage",
  },
  aarch64: {
    apk: "aarch64",
    debian: "arm64",
    qemu: {
      binary: "qemu-system-aarch64",
      debianPackage: "qemu-system-arm",
      machine: "virt",
      // The Ampere Altra's core (the seed's machine). Not `max`: its pointer authentication, which
      // the kernel uses, costs TCG a QARMA computation per signed pointer (why QEMU offers
      // pauth-impdef); Linux reached init in about 2 s here instead of 11-21 s, AAVMF faster too.
      cpu: "neoverse-n1",
      console: "ttyAMA0",
      kernelArgs: [],
      powerCycleOnReset: true,
    },
    elfMachine: 183,
    binfmtName: "qemu-aarch64",
    uefi: {
      stub: "linuxaa64.efi.stub",
      bootFile: "BOOTAA64.EFI",
      systemdBoot: "systemd-bootaa64.efi",
      peMachine: 0xaa64,
      firmware: {
        code: "/usr/share/AAVMF/AAVMF_CODE.fd",
        vars: "/usr/share/AAVMF/AAVMF_VARS.fd",
        debianPackage: "qemu-efi-aarch64",
      },
    },
    kernelImage: "Image",
  },
};

export function isArch(value: string): value is Arch {
  return (ARCHES as readonly string[]).includes(value);
}

/** The table's row for `arch`; an unknown name is refused with the accepted ones. */
export function archInfo(arch: string): ArchInfo {
  if (!isArch(arch)) throw new FieldError("arch", `"${arch}" is not supported; expected one of ${ARCHES.join(", ")}`);
  return TABLE[arch];
}

/** The architecture whose PE machine type is `machine`, if any. */
export function archOfPeMachine(machine: number): Arch | undefined {
  return ARCHES.find((a) => TABLE[a].uefi.peMachine === machine);
}
