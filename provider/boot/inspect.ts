/**
 * What a boot target holds now: the syslinux config and its DEFAULT, the one-time boot, the
 * slot the machine runs (ssh), each slot's manifest (re-hashed), the deployment journal and the
 * failed trials. Read-only; `ramroot status` prints it, and the A/B rule
 * (provider/deploy/ab-decision.ts) decides from it which slot may be written.
 */
import { readJournal, type JournalEntry } from "./journal";
import { readLease, staleReason, type LeaseRecord } from "./lease";
import { defaultSlotOf, readSlot, runningSlotOf, slotOfLabel, type SlotState } from "./slot";
import type { SyslinuxConfigSpec } from "./schemes/syslinux/config";
import { assertBootPartition, schemeOf } from "./schemes/registry";
import { withTarget, type BootTarget, type TargetSpec } from "./target";
import { readFailedTrials, type FailedTrial } from "./trial-log";
import {
  HEALTH_REPORT_MAX_BYTES,
  parseHealthReport,
  TRIAL_REPORT_FILE,
  type HealthReport,
} from "../machine/health-report";
import { observeMachine, type Observation } from "./machine-observe";

export interface TargetState {
  description: string;
  config?: { path: string; spec: SyslinuxConfigSpec };
  /** the DEFAULT label and the slot it boots */
  defaultLabel?: string;
  defaultSlot?: string;
  /** label set to boot once, if any, and the slot that label boots */
  once?: string;
  onceSlot?: string;
  /** the slot the running machine booted from, when the target can tell (ssh: BOOT_IMAGE in /proc/cmdline) */
  runningSlot?: string;
  slots: Record<string, SlotState | undefined>;
  journal: JournalEntry[];
  /** trials that did not end healthy, oldest first */
  failedTrials: FailedTrial[];
  /** the lease a live writer holds on the target now (another deploy is writing it), if any */
  lease?: LeaseRecord;
  /** with `machine`: what the running machine says (a target with a shell on it: ssh) */
  machine?: Observation;
  /** with `machine`: the health report a failed trial's guard left on the boot partition */
  trialReport?: HealthReport;
}

export async function inspectTarget(
  spec: TargetSpec,
  slots: readonly string[],
  opts: { machine?: boolean; requireBootPartition?: boolean } = {},
): Promise<TargetState> {
  return withTarget(spec, async (target) => {
    // A deploy stops here when a mounted-directory or ssh path is no boot partition.
    if (opts.requireBootPartition) await assertBootPartition(target);
    return inspectOpenTarget(target, slots, opts);
  });
}

/** inspectTarget on a target already open (a write checks under its lease, on its own connection). */
export async function inspectOpenTarget(
  target: BootTarget,
  slots: readonly string[],
  opts: { machine?: boolean } = {},
): Promise<TargetState> {
  const lease = await readLease(target);
  const scheme = await schemeOf(target);
  const config = await scheme.readConfig(target);
  const states: Record<string, SlotState | undefined> = {};
  for (const slot of slots) states[slot] = await readSlot(target, slot);
  const once = config ? await scheme.readBootOnce(target).catch(() => undefined) : undefined;
  const onceSlot = config && once ? slotOfLabel(config, once) : undefined;
  const defaultSlot = config ? defaultSlotOf(config) : undefined;
  const machine = opts.machine ? await observeMachine(target) : undefined;
  const runningSlot = machine ? machine.slot : await runningSlotOf(target);
  const left = opts.machine
    ? await target.readFile(TRIAL_REPORT_FILE, { maxBytes: HEALTH_REPORT_MAX_BYTES }).catch(() => undefined)
    : undefined;
  const trialReport = left ? parseHealthReport(left.toString("utf8")) : undefined;
  return {
    description: target.describe(),
    ...(config ? { config: { path: config.path, spec: config.spec }, defaultLabel: config.spec.defaultLabel } : {}),
    ...(defaultSlot ? { defaultSlot } : {}),
    ...(once ? { once } : {}),
    ...(onceSlot ? { onceSlot } : {}),
    ...(runningSlot ? { runningSlot } : {}),
    slots: states,
    journal: await readJournal(target),
    failedTrials: await readFailedTrials(target),
    ...(lease && staleReason(lease) === undefined ? { lease } : {}),
    ...(machine ? { machine } : {}),
    ...(trialReport ? { trialReport } : {}),
  };
}
