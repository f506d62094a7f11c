import { trialCases } from "./trial-cases";

// The lab's trial cases (good, panic, unhealthy, hung) on the UEFI twin: OVMF, systemd-boot, the
// once-boot as LoaderEntryOneShot set through efivarfs on the machine.
trialCases("uefi");
