import { trialCases } from "./trial-cases";

// The aarch64 UEFI twin (qemu-system-aarch64 -M virt under TCG, AAVMF, systemd-boot's BOOTAA64.EFI):
// it boots its ESP's default entry to a healthy image, the stack adopts it over ssh, and the
// one-time boot variable is set, replaced and cleared through efivarfs there (Alpine's busybox
// chattr). One trial case runs, the most telling: an image that panics, set as the one-shot,
// falls back to DEFAULT by itself. Each reset of this twin is a power cycle of QEMU on the same
// disks and NVRAM (AAVMF under TCG does not come back from a warm reset after real work:
// docs/machine-twin.md, "Resets"). Good and unhealthy are left to the x86_64 twins (each TCG boot
// here costs a minute or more), and a hang is not tried: `virt` has no watchdog its kernel drives.
trialCases("uefi", { arch: "aarch64", cases: ["panic"] });
