/**
 * What a boot target holds now: the syslinux config and its DEFAULT, the one-time boot, each
 * slot's manifest (re-hashed), and the deployment journal. Read-only; `ramroot status` prints
 * it and the A/B component decides from it which slot to write.
 */
import { readBootOnce } from "./once";
import { readJournal, type JournalEntry } from "./journal";
import { readLease, staleReason, type LeaseRecord } from "./lease";
import { defaultSlotOf, readSlot, type SlotState } from "./slot";
import { assertBootPartition, readSyslinuxConfig, type SyslinuxConfigSpec } from "./syslinux-config";
import { withTarget, type TargetSpec } from "./target";
import { parseHealthReport, type HealthReport } from "./health-report";
import { observeMachine, type Observation } from "./machine-observe";
import { TRIAL_REPORT_FILE } from "../image/machine-services";

export interface TargetState {
  description: string;
  config?: { path: string; spec: SyslinuxConfigSpec };
  /** the DEFAULT label and the slot it boots */
  defaultLabel?: string;
  defaultSlot?: string;
  /** label set to boot once, if any */
  once?: string;
  slots: Record<string, SlotState | undefined>;
  journal: JournalEntry[];
  /** the lease a live writer holds on the target now (another deploy is writing it), if any */
  lease?: LeaseRecord;
  /** with `machine`: what the running machine says (a target with a shell on it: ssh) */
  machine?: Observation;
  /** with `machine`: the health report a failed trial's guard left on the boot partition */
  trialReport?: HealthReport;
}

export async function inspectTarget(
  spec: TargetSpec,
  slots: string[],
  opts: { machine?: boolean; requireBootPartition?: boolean } = {},
): Promise<TargetState> {
  return withTarget(spec, async (target) => {
    // A deploy stops here when a mounted-directory or ssh path is no boot partition.
    if (opts.requireBootPartition) await assertBootPartition(target);
    const lease = await readLease(target);
    const config = await readSyslinuxConfig(target);
    const states: Record<string, SlotState | undefined> = {};
    for (const slot of slots) states[slot] = await readSlot(target, slot);
    const once = config ? await readBootOnce(target).catch(() => undefined) : undefined;
    const defaultSlot = config ? defaultSlotOf(config) : undefined;
    const machine = opts.machine ? await observeMachine(target) : undefined;
    const left = opts.machine ? await target.readFile(TRIAL_REPORT_FILE).catch(() => undefined) : undefined;
    const trialReport = left ? parseHealthReport(left.toString("utf8")) : undefined;
    return {
      description: target.describe(),
      ...(config ? { config: { path: config.path, spec: config.spec }, defaultLabel: config.spec.defaultLabel } : {}),
      ...(defaultSlot ? { defaultSlot } : {}),
      ...(once ? { once } : {}),
      slots: states,
      journal: await readJournal(target),
      ...(lease && staleReason(lease) === undefined ? { lease } : {}),
      ...(machine ? { machine } : {}),
      ...(trialReport ? { trialReport } : {}),
    };
  });
}

/** The slot that holds a plan's image, consistent (every file hashing as its manifest says). */
export function slotHolding(state: TargetState, planId: string): string | undefined {
  return Object.entries(state.slots).find(([, s]) => s?.consistent && s.manifest?.planId === planId)?.[0];
}
