/**
 * One look at a running machine over its shell (an ssh target): the boot it is in, the image it
 * runs, its guard's health report and the slot its kernel came from. The trial strategy polls it
 * while the machine reboots; `ramroot status` shows it.
 */
import type { BootTarget } from "./target";
import { shellQuote } from "./shell-quote";
import { bootedSlotOf } from "./booted-slot";
import { HEALTH_PATH, HEALTH_REPORT_MAX_BYTES, parseHealthReport, type HealthReport } from "../machine/health-report";
import { IMAGE_ID_PATH } from "../machine/image-id";
import { GUARD_PATH } from "../machine/scripts";

export interface Observation {
  bootId: string;
  imageId: string | undefined;
  health: HealthReport | undefined;
  /** the image has the health guard (so it will report; until then it is not healthy yet) */
  guarded: boolean;
  /** the slot the running kernel came from (BOOT_IMAGE under syslinux, initrd= under systemd-boot) */
  slot: string | undefined;
  /** seconds since the machine booted */
  uptimeSeconds: number | undefined;
}

/** Each file is read bounded: the machine writes them, and a machine can misbehave. */
const OBSERVE_SCRIPT = (probePath: string) =>
  [
    "head -c 256 /proc/sys/kernel/random/boot_id",
    "echo ---",
    `head -c 4096 ${shellQuote(probePath)} 2>/dev/null`,
    "echo ---",
    `head -c ${HEALTH_REPORT_MAX_BYTES} ${shellQuote(HEALTH_PATH)} 2>/dev/null`,
    "echo ---",
    "head -c 65536 /proc/cmdline",
    "echo ---",
    `test -x ${shellQuote(GUARD_PATH)} && echo guarded`,
    "echo ---",
    "head -c 256 /proc/uptime",
  ].join("; ");

/** Undefined when the target has no shell on the machine, or the machine gave no boot id. */
export async function observeMachine(
  target: BootTarget,
  probePath: string = IMAGE_ID_PATH,
): Promise<Observation | undefined> {
  if (!target.machine) return undefined;
  const r = await target.machine.run(OBSERVE_SCRIPT(probePath));
  const [bootId, imageId, health, cmdline, guarded, uptime] = r.stdout.toString("utf8").split("---\n");
  if (!bootId?.trim()) return undefined;
  const seconds = /^(\d+)(?:\.\d+)?\s/.exec(uptime ?? "")?.[1];
  return {
    bootId: bootId.trim(),
    imageId: imageId?.trim() || undefined,
    health: parseHealthReport(health ?? ""),
    guarded: guarded?.trim() === "guarded",
    slot: bootedSlotOf(cmdline ?? ""),
    uptimeSeconds: seconds === undefined ? undefined : Number(seconds),
  };
}
