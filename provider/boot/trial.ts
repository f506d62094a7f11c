/**
 * The trial strategy: boot the new label once, wait until the machine answers with the new
 * image's id, then promote it to DEFAULT. If it does not answer in time, DEFAULT is left alone
 * (and the one-time boot is cleared, so a machine that never rebooted stays on what it runs);
 * a machine that did reboot into a broken image comes back on DEFAULT by itself.
 */
import { openTarget, type BootTarget, type TargetSpec } from "./target";
import { shellQuote } from "./shell-quote";
import { clearBootOnce, promote, setBootOnce } from "./once";
import { readSlot, slotOfLabel } from "./slot";
import { entryByLabel, readSyslinuxConfig, writeSyslinuxConfig, type SyslinuxConfigSpec } from "./syslinux-config";

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
): Promise<string> {
  const slot = slotOfLabel({ path: configPath, spec }, label);
  const state = slot ? await readSlot(target, slot) : undefined;
  if (!state?.manifest)
    throw new Error(`trial: label ${label} boots slot ${slot ?? "?"}, which holds no ramroot image`);
  return state.manifest.imageId;
}

async function probe(spec: TargetSpec, path: string): Promise<string | undefined> {
  let target: BootTarget | undefined;
  try {
    target = await openTarget(spec);
    if (!target.machine) return undefined;
    const r = await target.machine.run(`cat ${shellQuote(path)} 2>/dev/null`);
    return r.exitCode === 0 ? r.stdout.toString("utf8").trim() : undefined;
  } catch {
    return undefined; // rebooting: not answering yet
  } finally {
    await target?.close().catch(() => undefined);
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
    throw new Error(
      'strategy: "trial" needs a target with a shell on the machine, an ssh target (it waits for the booted machine to answer); use "switch" for this target',
    );
  }
  const newLabel = spec.defaultLabel;
  let expected: string;
  try {
    const current = await readSyslinuxConfig(target);
    const oldLabel = current?.spec.defaultLabel;
    if (!current || !oldLabel || !entryByLabel(current.spec, oldLabel)) {
      // Nothing to fall back to: a plain switch is the only honest choice.
      return await writeSyslinuxConfig(target, spec);
    }
    // The new entries go in with the old DEFAULT, then the new label is set to boot once.
    const staged = await writeSyslinuxConfig(target, { ...spec, defaultLabel: oldLabel });
    expected = await imageOfLabel(target, spec, newLabel, staged.path);
    await setBootOnce(target, newLabel);
    log(
      `trial: ${newLabel} set to boot once (DEFAULT stays ${oldLabel}); waiting up to ${opts.timeoutSeconds} s for image ${expected.slice(0, 12)} to answer`,
    );
    if (opts.reboot) await machine.run("(sleep 1; reboot) >/dev/null 2>&1 &").catch(() => undefined);
  } finally {
    await target.close().catch(() => undefined);
  }
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  const poll = (opts.pollSeconds ?? 5) * 1000;
  await new Promise((r) => setTimeout(r, Math.min(poll, opts.timeoutSeconds * 1000)));
  while (Date.now() < deadline) {
    const answer = await probe(targetSpec, opts.probePath);
    if (answer === expected) {
      const again = await openTarget(targetSpec);
      try {
        log(`trial: image ${expected.slice(0, 12)} answered; promoting ${newLabel}`);
        return await promote(again, newLabel);
      } finally {
        await again.close();
      }
    }
    await new Promise((r) => setTimeout(r, poll));
  }
  const cleanup = await openTarget(targetSpec).catch(() => undefined);
  if (cleanup) {
    await clearBootOnce(cleanup).catch(() => undefined);
    await cleanup.close().catch(() => undefined);
  }
  throw new Error(
    `trial: the machine did not answer with image ${expected.slice(0, 12)} in ${opts.probePath} within ${opts.timeoutSeconds} s; DEFAULT was left alone`,
  );
}
