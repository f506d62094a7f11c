/**
 * The trial strategy: boot the new label once, wait until the machine answers "image X healthy",
 * then promote it to DEFAULT.
 *
 * The once-boot goes to a trial entry (TRIAL_LABEL): the new label's kernel and initramfs with
 * `ramroot.trial=1` added, so the booted image knows it is on trial and its guard reboots it
 * when its health checks do not pass in time (provider/image/machine-services.ts). syslinux
 * consumes the once-boot before the kernel starts, so that reboot, a panic (panic=N) or a
 * watchdog reset all come back on DEFAULT. Promotion writes the config with DEFAULT the new
 * label and without the trial entry.
 *
 * When the trial does not succeed, DEFAULT is left alone, the trial entry and a pending once-boot
 * are removed, the failure is recorded on the boot partition (provider/boot/trial-log.ts: image,
 * slot, time, cause, seconds), and a TrialFailedError says what was seen (no answer / the machine
 * back on the old image without the new one ever answering / unhealthy with the failed checks'
 * output, read live or from the report the guard left on the boot partition), after how long, and
 * where the machine is now.
 */
import { openTarget, type BootTarget, type TargetSpec } from "./target";
import { schemeOf } from "./schemes/registry";
import { readSlot, runningSlotOf, slotOfLabel, SLOT_FILES } from "./slot";
import { entryByLabel, type SyslinuxConfigSpec, type SyslinuxEntry } from "./schemes/syslinux/config";
import { sha256Hex } from "../file-hash";
import {
  describeFailedChecks,
  HEALTH_REPORT_MAX_BYTES,
  parseHealthReport,
  TRIAL_REPORT_FILE,
  type HealthReport,
} from "../machine/health-report";
import { trialAppend } from "../machine/image-id";
import { observeMachine, type Observation } from "./machine-observe";
import { ConflictError, FieldError, MachineError, TargetError } from "../ramroot-error";
import { recordFailedTrial, type FailedTrial, type TrialCause } from "./trial-log";

/** The entry the once-boot names during a trial (longer than a slot name can be, so never one). */
export const TRIAL_LABEL = "ramroot-trial";

export interface TrialOptions {
  /** a file the booted image writes with its image id (from ramroot.image= on its command line) */
  probePath: string;
  timeoutSeconds: number;
  /** reboot the machine over ssh to start the trial (default true) */
  reboot: boolean;
  pollSeconds?: number;
  log?: (message: string) => void;
}

/** The image id the config's entry `label` boots, from its slot's manifest. */
async function imageOfLabel(
  target: BootTarget,
  spec: SyslinuxConfigSpec,
  label: string,
  configPath: string,
): Promise<{ slot: string | undefined; imageId: string | undefined }> {
  const slot = slotOfLabel({ path: configPath, spec }, label);
  const state = slot ? await readSlot(target, slot) : undefined;
  return { slot, imageId: state?.manifest?.imageId };
}

/** The trial entry: the new label's files, its command line marked as a trial. */
export function trialEntry(entry: SyslinuxEntry): SyslinuxEntry {
  return {
    ...entry,
    label: TRIAL_LABEL,
    menuLabel: `${entry.menuLabel ?? entry.label} (trial)`,
    // A Secure Boot entry boots a signed UKI whose command line is baked in: the trial's own UKI.
    kernel: entry.kernel.endsWith(`/${SLOT_FILES.uki}`)
      ? `${entry.kernel.slice(0, -SLOT_FILES.uki.length)}${SLOT_FILES.trialUki}`
      : entry.kernel,
    append: trialAppend(entry.append),
  };
}

/** One look over a fresh connection (the machine reboots between looks); undefined while it does not answer. */
async function observe(spec: TargetSpec, probePath: string): Promise<Observation | undefined> {
  let target: BootTarget | undefined;
  try {
    target = await openTarget(spec);
    return await observeMachine(target, probePath);
  } catch {
    return undefined; // rebooting: not answering yet
  } finally {
    await target?.close().catch(() => undefined);
  }
}

const short = (id: string | undefined) => (id === undefined ? "(none)" : id.slice(0, 12));

/** A trial that did not end healthy: DEFAULT stayed; `config` is what the boot partition's config file holds now. */
export class TrialFailedError extends MachineError {
  constructor(
    problem: string,
    readonly trial: FailedTrial,
    readonly config: { path: string; sha256: string } | undefined,
  ) {
    super(
      problem,
      "the image is not tried again by itself: change the config to deploy another image, or run `RAMROOT_RETRY_TRIAL=1 pulumi up` to try it again",
    );
  }
}

/** Runs a trial of `spec.defaultLabel`; resolves when it is promoted, throws (DEFAULT unchanged) when it is not. */
export async function trialBoot(
  targetSpec: TargetSpec,
  spec: SyslinuxConfigSpec,
  opts: TrialOptions,
): Promise<{ path: string; sha256: string }> {
  const log = opts.log ?? (() => undefined);
  const target = await openTarget(targetSpec);
  const machine = target.machine;
  if (!machine) {
    await target.close();
    throw new FieldError(
      "strategy",
      '"trial" needs a target with a shell on the machine, an ssh target (it waits for the booted machine to answer); use "switch" for this target',
    );
  }
  const newLabel = spec.defaultLabel;
  const entries = spec.entries.filter((e) => e.label.toLowerCase() !== TRIAL_LABEL);
  let expected: string;
  let oldLabel: string;
  let old: { slot: string | undefined; imageId: string | undefined };
  let newSlot: string | undefined;
  let bootBefore: string | undefined;
  try {
    const scheme = await schemeOf(target);
    const current = await scheme.readConfig(target);
    const currentDefault = current?.spec.defaultLabel;
    if (!current || !currentDefault || !entryByLabel(current.spec, currentDefault)) {
      // Nothing to fall back to: a plain switch is the only honest choice.
      return await scheme.writeConfig(target, { ...spec, entries });
    }
    oldLabel = currentDefault;
    const newEntry = entryByLabel(spec, newLabel);
    if (!newEntry) throw new ConflictError(`trial: the config has no entry ${newLabel} to try`);
    // The new entries go in with the old DEFAULT and the trial entry, which is set to boot once.
    const staged = await scheme.writeConfig(target, {
      ...spec,
      defaultLabel: oldLabel,
      entries: [...entries, trialEntry(newEntry)],
    });
    const trying = await imageOfLabel(target, spec, newLabel, staged.path);
    if (!trying.imageId)
      throw new TargetError(
        `trial: label ${newLabel} boots slot ${trying.slot ?? "?"}, which holds no ramroot image`,
        "write an image to that slot first (`pulumi up`, or `ramroot slot write`), then try it",
      );
    expected = trying.imageId;
    newSlot = trying.slot;
    old = await imageOfLabel(target, { ...spec, defaultLabel: oldLabel }, oldLabel, staged.path);
    bootBefore = (await observeMachine(target, opts.probePath))?.bootId;
    await scheme.setBootOnce(target, TRIAL_LABEL);
    log(
      `trial: ${newLabel} (image ${short(expected)}) set to boot once (DEFAULT stays ${oldLabel}); waiting up to ${opts.timeoutSeconds} s for it to answer healthy`,
    );
    if (opts.reboot) await machine.run("(sleep 1; reboot) >/dev/null 2>&1 &").catch(() => undefined);
  } finally {
    await target.close().catch(() => undefined);
  }

  const started = Date.now();
  const deadline = started + opts.timeoutSeconds * 1000;
  const poll = (opts.pollSeconds ?? 5) * 1000;
  /** what was seen of the trial image: its last health report */
  let trialHealth: HealthReport | undefined;
  let trialAnswered = false;
  let fellBack: Observation | undefined;
  let lastSeen: Observation | undefined;
  await new Promise((r) => setTimeout(r, Math.min(poll, opts.timeoutSeconds * 1000)));
  while (Date.now() < deadline) {
    const seen = await observe(targetSpec, opts.probePath);
    if (seen) lastSeen = seen;
    const rebooted = seen !== undefined && (bootBefore === undefined || seen.bootId !== bootBefore || !opts.reboot);
    if (seen && rebooted && seen.imageId === expected) {
      trialAnswered = true;
      // An image without health checks has no guard: answering with its id is all it can say.
      // One with a guard is healthy when its report says so (none yet: the guard has not run).
      const healthy = seen.guarded
        ? seen.health?.imageId === expected && seen.health.status === "healthy"
        : seen.health === undefined;
      if (healthy) {
        const again = await openTarget(targetSpec);
        try {
          log(
            `trial: image ${short(expected)} answered ${seen.guarded ? "healthy" : "(it has no health checks)"}; promoting ${newLabel}`,
          );
          const promoted = await (await schemeOf(again)).writeConfig(again, { ...spec, entries });
          // An earlier failed trial's report is no longer the last trial's: `ramroot status` stops showing it.
          await again.remove(TRIAL_REPORT_FILE).catch(() => undefined);
          return promoted;
        } finally {
          await again.close();
        }
      }
      if (seen.health?.imageId === expected) {
        trialHealth = seen.health;
        log(`trial: image ${short(expected)} is ${seen.health.status}: ${describeFailedChecks(seen.health)}`);
      }
    } else if (seen && rebooted && bootBefore !== undefined) {
      // Up again, on another image: the trial boot is over (a panic, the guard, a watchdog).
      fellBack = seen;
      break;
    }
    await new Promise((r) => setTimeout(r, poll));
  }

  // The trial failed: DEFAULT stays; the trial entry and a pending once-boot go; say what was seen.
  const seconds = Math.round((Date.now() - started) / 1000);
  let report: HealthReport | undefined;
  let where: string;
  let config: { path: string; sha256: string } | undefined;
  const cleanup = await openTarget(targetSpec).catch(() => undefined);
  if (cleanup) {
    try {
      const scheme = await schemeOf(cleanup);
      await scheme.clearBootOnce(cleanup).catch(() => undefined);
      const current = await scheme.readConfig(cleanup);
      if (current && entryByLabel(current.spec, TRIAL_LABEL))
        config = await scheme.writeConfig(cleanup, { ...spec, defaultLabel: oldLabel, entries });
      else if (current) config = { path: current.path, sha256: sha256Hex(current.text) };
      const left = await cleanup
        .readFile(TRIAL_REPORT_FILE, { maxBytes: HEALTH_REPORT_MAX_BYTES })
        .catch(() => undefined);
      const parsed = left ? parseHealthReport(left.toString("utf8")) : undefined;
      if (parsed?.imageId === expected) report = parsed;
      const now = (await observeMachine(cleanup, opts.probePath).catch(() => undefined)) ?? fellBack;
      const runningSlot = now?.slot ?? (await runningSlotOf(cleanup).catch(() => undefined));
      if (now && now.imageId === old.imageId && (old.slot === undefined || runningSlot === old.slot))
        where = `the machine is back on slot ${old.slot ?? oldLabel} (image ${short(old.imageId)})`;
      else if (now && now.imageId === expected)
        where = `the machine still runs the trial (slot ${newSlot ?? newLabel}); its guard reboots it to DEFAULT ${oldLabel}, or a reboot does`;
      else
        where = `the machine runs slot ${runningSlot ?? "?"} (image ${short(now?.imageId)}), not slot ${old.slot ?? oldLabel} (image ${short(old.imageId)}) as expected`;
    } finally {
      await cleanup.close().catch(() => undefined);
    }
  } else {
    where = `the machine does not answer over ssh, so it could not be checked that it is back on slot ${old.slot ?? oldLabel}`;
  }
  const health = report ?? trialHealth;
  let saw: string;
  let cause: TrialCause;
  if (health && health.status !== "healthy" && (health.status === "unhealthy" || !fellBack)) {
    cause = health.status === "unhealthy" ? "unhealthy" : "timeout";
    saw = `image ${short(expected)} booted but was not healthy (${health.status}${health.uptimeSeconds !== undefined ? ` at ${health.uptimeSeconds} s after boot` : ""}):\n${describeFailedChecks(health)}`;
  } else if (health && fellBack) {
    // It answered, reported, then went away and came back on DEFAULT without a verdict: its watchdog reset it.
    cause = "hung";
    saw = `image ${short(expected)} booted but was not healthy (${health.status}${health.uptimeSeconds !== undefined ? ` at ${health.uptimeSeconds} s after boot` : ""}), then stopped answering and came back on DEFAULT (a hang its watchdog reset):\n${describeFailedChecks(health)}`;
  } else if (trialAnswered) {
    cause = fellBack ? "hung" : "timeout";
    saw = `image ${short(expected)} answered but did not report healthy${fellBack ? ", then came back on DEFAULT (a hang its watchdog reset)" : ""}`;
  } else if (fellBack) {
    cause = "panic";
    saw = `image ${short(expected)} never answered: the machine came back with image ${short(fellBack.imageId)} (a panic, a hang or a watchdog ended the trial boot)`;
  } else if (lastSeen && opts.reboot && lastSeen.bootId === bootBefore) {
    cause = "timeout";
    saw = `the machine did not reboot into the trial (it still answers from the boot before, image ${short(lastSeen.imageId)})`;
  } else if (lastSeen) {
    cause = "timeout";
    saw = `the machine answered with image ${short(lastSeen.imageId)}, not ${short(expected)}`;
  } else {
    cause = "timeout";
    saw = "no answer over ssh";
  }
  const trial: FailedTrial = {
    when: new Date().toISOString(),
    slot: newSlot ?? newLabel,
    imageId: expected,
    cause,
    seconds,
    detail: saw,
  };
  // Recorded where the machine's history lives, so `ramroot status` lists it and the next preview does not retry it.
  const record = cleanup ? await openTarget(targetSpec).catch(() => undefined) : undefined;
  if (record)
    await recordFailedTrial(record, trial)
      .catch((err: unknown) => log(`trial: could not record the failed trial on the target: ${(err as Error).message}`))
      .finally(() => record.close().catch(() => undefined));
  throw new TrialFailedError(
    `trial of ${newLabel} (slot ${newSlot ?? "?"}, image ${short(expected)}) failed after ${seconds} s (${cause}): ${saw}\n${where}; DEFAULT stays ${oldLabel}`,
    trial,
    config,
  );
}
