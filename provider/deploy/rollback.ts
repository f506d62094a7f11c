/**
 * Rollback and its pin. `ramroot rollback [--to N]` finds the image update N left running (the
 * target's journal), writes a pin to the stack config (`ramroot:pin`: the update, the plan and
 * the image), and runs `pulumi up`, so the rollback is an update in the history too. The pin is
 * in the stack file (in git, in every preview): the AbSystem component keeps the pinned image
 * as DEFAULT on every later preview and up until `ramroot release` removes it.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import { inspectTarget, type TargetState } from "../boot/inspect";
import type { JournalEntry } from "../boot/journal";
import type { TargetSpec } from "../boot/target-spec";
import { cachedImage } from "../image/build";
import { DEFAULT_SLOTS, slotHolding } from "./ab-decision";
import { parsePin, PIN_CONFIG_KEY, type Pin } from "./ab-system-inputs";
import { deployedBy, stackHistory, type StackUpdate } from "./history";

const short = (id: string | undefined) => (id ? id.slice(0, 12) : "-");

export interface RollbackTarget {
  update: StackUpdate & { number: number };
  deployed: JournalEntry & { planId: string };
}

/**
 * Which update to go back to: `to`, or the newest earlier successful update that left a different
 * image running than DEFAULT boots now. Pure, so every rule is unit-tested.
 */
export function chooseRollback(
  history: readonly StackUpdate[],
  journal: readonly JournalEntry[],
  currentPlanId: string | undefined,
  to?: number,
): RollbackTarget {
  const updates = history.filter(
    (h): h is StackUpdate & { number: number } => h.number !== undefined && h.kind === "update",
  );
  if (to !== undefined) {
    const update = updates.find((u) => u.number === to);
    if (!update) {
      const range =
        updates.length > 0
          ? `its updates are numbered ${updates[0]!.number} to ${updates[updates.length - 1]!.number}`
          : "it has no updates yet";
      throw new Error(`--to: no update ${to} in this stack (${range}; see \`ramroot history\`)`);
    }
    if (update.result !== "succeeded")
      throw new Error(
        `--to: update ${to} ${update.result === "failed" ? "failed" : `ended ${update.result}`}; pick a succeeded update (see \`ramroot history\`)`,
      );
    const deployed = deployedBy(update, journal);
    if (!deployed?.planId) throw new Error(`--to: update ${to} left nothing running that the target's journal records`);
    return { update, deployed: { ...deployed, planId: deployed.planId } };
  }
  for (const update of [...updates].reverse()) {
    if (update.result !== "succeeded") continue;
    const deployed = deployedBy(update, journal);
    if (deployed?.planId && deployed.planId !== currentPlanId)
      return { update, deployed: { ...deployed, planId: deployed.planId } };
  }
  throw new Error(
    "rollback: no earlier successful update left another image running than the one DEFAULT boots now; see `ramroot history`",
  );
}

/** The plan DEFAULT boots now, from the slot's manifest. */
export function currentPlanId(state: TargetState): string | undefined {
  return state.defaultSlot ? state.slots[state.defaultSlot]?.manifest?.planId : undefined;
}

export interface RollbackOptions {
  /** the update number to go back to (default: the newest earlier update that left another image running) */
  to?: number;
  log?: (message: string) => void;
  onOutput?: (out: string) => void;
}

export interface RollbackResult {
  update: number;
  planId: string;
  imageId?: string;
  /** the slot that already held the image (nothing copied) */
  inSlot?: string;
  pin: Pin;
}

/** The stack's pin, if a rollback holds it. */
export async function stackPin(stack: Stack): Promise<Pin | undefined> {
  return parsePin((await stack.getAllConfig())[PIN_CONFIG_KEY]?.value);
}

/** Goes back to what update `to` left running, pins it, and runs `pulumi up`; on failure the previous pin is restored. */
export async function rollback(stack: Stack, target: TargetSpec, opts: RollbackOptions = {}): Promise<RollbackResult> {
  const log = opts.log ?? (() => undefined);
  if (opts.to !== undefined && !(Number.isInteger(opts.to) && opts.to >= 1))
    throw new Error(
      `--to: got ${JSON.stringify(opts.to)}; expected an update number (1 or more; see \`ramroot history\`)`,
    );
  const history = await stackHistory(stack);
  const state = await inspectTarget(target, [...DEFAULT_SLOTS]);
  const chosen = chooseRollback(history, state.journal, currentPlanId(state), opts.to);
  const { deployed } = chosen;
  const inSlot = slotHolding(state, DEFAULT_SLOTS, deployed.planId);
  if (!inSlot && !(await cachedImage({ planId: deployed.planId }))) {
    const commit = chosen.update.commit;
    throw new Error(
      `image ${short(deployed.imageId)} (plan ${short(deployed.planId)}) that update ${chosen.update.number} left running is in no slot of ${state.description} and not in the local image cache: ` +
        (commit
          ? `check out commit ${commit.replace(/\+dirty$/, "")} and run \`pulumi up\` to rebuild it (same plan, same bytes)`
          : "check out the commit of that update and run `pulumi up` to rebuild it"),
    );
  }
  log(
    `rolling back to update ${chosen.update.number}: image ${short(deployed.imageId)}, ${inSlot ? `already in slot ${inSlot}: switching only` : "in the local cache: writing the idle slot, then switching"}; the stack stays pinned to it until \`ramroot release\``,
  );
  const pin: Pin = {
    update: chosen.update.number,
    planId: deployed.planId,
    ...(deployed.imageId ? { imageId: deployed.imageId } : {}),
  };
  const previous = (await stack.getAllConfig())[PIN_CONFIG_KEY]?.value;
  await stack.setConfig(PIN_CONFIG_KEY, { value: JSON.stringify(pin) });
  try {
    const result = await stack.up({
      message: `ramroot rollback to update ${pin.update} (image ${short(deployed.imageId)})`,
      ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
    });
    if (result.summary.result !== "succeeded") throw new Error(`rollback: pulumi up ended ${result.summary.result}`);
  } catch (err) {
    if (previous === undefined) await stack.removeConfig(PIN_CONFIG_KEY);
    else await stack.setConfig(PIN_CONFIG_KEY, { value: previous });
    throw err;
  }
  return {
    update: pin.update,
    planId: pin.planId,
    ...(pin.imageId ? { imageId: pin.imageId } : {}),
    ...(inSlot ? { inSlot } : {}),
    pin,
  };
}

/** Removes the pin; the next preview shows the way back to the config's image. Returns the pin released, if any. */
export async function release(stack: Stack): Promise<Pin | undefined> {
  const pin = await stackPin(stack);
  if (pin) await stack.removeConfig(PIN_CONFIG_KEY);
  return pin;
}
