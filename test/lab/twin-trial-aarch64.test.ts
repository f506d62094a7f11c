import { trialCases } from "./trial-cases";

// One trial on an aarch64 UEFI twin (qemu-system-aarch64 -M virt under TCG, AAVMF, systemd-boot's
// BOOTAA64.EFI): an image that panics comes back on the previous one by itself, after the once-boot
// through efivarfs booted it (its console shows the panic). TCG aarch64 is slow, so only this case
// and the one-shot variable's bytes. A hang is not tried here: `virt` has no i6300esb
// (docs/boot-schemes.md, "What comes back by itself").
trialCases("uefi", { arch: "aarch64", cases: ["panic"] });
