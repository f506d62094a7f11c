import { trialCases } from "./trial-cases";

// The lab's trial cases (good, panic, unhealthy, hung) on the BIOS twin: SeaBIOS, syslinux, the ADV once-boot.
trialCases("syslinux");
