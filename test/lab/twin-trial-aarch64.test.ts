import { trialCases } from "./trial-cases";

// The aarch64 UEFI twin (qemu-system-aarch64 -M virt under TCG, AAVMF, systemd-boot's BOOTAA64.EFI):
// it boots its ESP's default entry to a healthy image, the stack adopts it over ssh, and the
// one-time boot variable is set, replaced and cleared through efivarfs there (Alpine's busybox
// chattr). No trial case runs here yet: in the panic trial the one-shot was set and the machine
// rebooted, and AAVMF did not get past its console setup after that warm reset within 12 minutes
// (docs/boot-schemes.md, "Status"). A hang is not tried on aarch64 at all: `virt` has no watchdog
// its kernel drives.
trialCases("uefi", { arch: "aarch64", cases: [] });
