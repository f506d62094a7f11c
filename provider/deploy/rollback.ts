/**
 * Rollback and its pin, per machine. `ramroot rollback [machine] [--to N]` finds the image update
 * N left running on that machine (its target's journal), writes the machine's pin to the stack
 * config (`ramroot:pins`, machine-pins.ts: the update, the plan and the image), and runs `pulumi
 * up`, so the rollback is an update in the history too. The pin is in the stack file (in git, in
 * every preview): that machine's AbSystem keeps the pinned image as DEFAULT on every later
 * preview and up until `ramroot release` removes it; the stack's other machines deploy as before.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import { inspectTarget, type TargetState } from "../boot/inspect";
import type { JournalEntry } from "../boot/journal";
import type { TargetSpec } from "../boot/target-spec";
import { cachedImage } from "../image/build";
import { DEFAULT_SLOTS, slotHolding } from "./ab-decision";
import { parsePin, PIN_CONFIG_KEY, type Pin } from "./ab-system-inputs";
import { deployedBy, stackHistory, type StackUpdate } from "./history";
import { machinePin, parsePins, PINS_CONFIG_KEY, type Pins } from "./machine-pins";
import { machineNames, STACK_MACHINE_NAME } from "./stack-machines";
import { ConflictError, FieldError } from "../ramroot-error";

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
      throw new FieldError("--to", `no update ${to} in this stack (${range}; see \`ramroot history\`)`);
    }
    if (update.result !== "succeeded")
      throw new FieldError(
        "--to",
        `update ${to} ${update.result === "failed" ? "failed" : `ended ${update.result}`}`,
        "pick a succeeded update (see `ramroot history`)",
      );
    const deployed = deployedBy(update, journal);
    if (!deployed?.planId)
      throw new FieldError(
        "--to",
        `update ${to} left nothing running that the target's journal records`,
        "pick another update (see `ramroot history`)",
      );
    return { update, deployed: { ...deployed, planId: deployed.planId } };
  }
  for (const update of [...updates].reverse()) {
    if (update.result !== "succeeded") continue;
    const deployed = deployedBy(update, journal);
    if (deployed?.planId && deployed.planId !== currentPlanId)
      return { update, deployed: { ...deployed, planId: deployed.planId } };
  }
  throw new ConflictError(
    "rollback: no earlier successful update left another image running than the one DEFAULT boots now",
    "see `ramroot history`",
  );
}

/** The plan DEFAULT boots now, from the slot's manifest. */
export function currentPlanId(state: TargetState): string | undefined {
  return state.defaultSlot ? state.slots[state.defaultSlot]?.manifest?.planId : undefined;
}

export interface RollbackOptions {
  /** the machine (AbSystem name) to roll back; default: the stack program's own */
  machine?: string;
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

type StackConfig = Awaited<ReturnType<Stack["getAllConfig"]>>;

const configReader = (config: StackConfig) => ({ get: (key: string) => config[key]?.value });

/** The machine's pin, if a rollback holds it (its own, or the stack's from before machines had names). */
export async function stackPin(stack: Stack, machine = STACK_MACHINE_NAME): Promise<Pin | undefined> {
  return machinePin(configReader(await stack.getAllConfig()), machine);
}

async function writePins(stack: Stack, pins: Pins): Promise<void> {
  if (Object.keys(pins).length === 0) await stack.removeConfig(PINS_CONFIG_KEY);
  else await stack.setConfig(PINS_CONFIG_KEY, { value: JSON.stringify(pins) });
}

/** Goes back to what update `to` left running on the machine, pins it, and runs `pulumi up`; on failure the previous pins are restored. */
export async function rollback(stack: Stack, target: TargetSpec, opts: RollbackOptions = {}): Promise<RollbackResult> {
  const log = opts.log ?? (() => undefined);
  if (opts.to !== undefined && !(Number.isInteger(opts.to) && opts.to >= 1))
    throw new FieldError(
      "--to",
      `got ${JSON.stringify(opts.to)}; expected an update number (1 or more; see \`ramroot history\`)`,
    );
  const history = await stackHistory(stack);
  const state = await inspectTarget(target, [...DEFAULT_SLOTS]);
  const chosen = chooseRollback(history, state.journal, currentPlanId(state), opts.to);
  const { deployed } = chosen;
  const inSlot = slotHolding(state, DEFAULT_SLOTS, deployed.planId);
  if (!inSlot && !(await cachedImage({ planId: deployed.planId }))) {
    const commit = chosen.update.commit;
    throw new ConflictError(
      `image ${short(deployed.imageId)} (plan ${short(deployed.planId)}) that update ${chosen.update.number} left running is in no slot of ${state.description} and not in the local image cache`,
      commit
        ? `check out commit ${commit.replace(/\+dirty$/, "")} and run \`pulumi up\` to rebuild it (same plan, same bytes)`
        : "check out the commit of that update and run `pulumi up` to rebuild it",
    );
  }
  const machine = opts.machine ?? STACK_MACHINE_NAME;
  log(
    `rolling back ${machine} to update ${chosen.update.number}: image ${short(deployed.imageId)}, ${inSlot ? `already in slot ${inSlot}: switching only` : "in the local cache: writing the idle slot, then switching"}; ${machine} stays pinned to it until \`ramroot release ${machine}\``,
  );
  const pin: Pin = {
    update: chosen.update.number,
    planId: deployed.planId,
    ...(deployed.imageId ? { imageId: deployed.imageId } : {}),
  };
  const previous = (await stack.getAllConfig())[PINS_CONFIG_KEY]?.value;
  await writePins(stack, { ...parsePins(previous), [machine]: pin });
  try {
    const result = await stack.up({
      message: `ramroot rollback to update ${pin.update} (${machine}: image ${short(deployed.imageId)})`,
      ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
    });
    if (result.summary.result !== "succeeded")
      throw new ConflictError(`rollback: pulumi up ended ${result.summary.result}`);
  } catch (err) {
    await writePins(stack, parsePins(previous));
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

/**
 * Removes the machine's pin; its next preview shows the way back to the config's image. A pin from
 * before machines had names (`ramroot:pin`) is handed on to the stack's other machines, which it
 * held too. Returns the pin released, if any.
 */
export async function release(stack: Stack, machine = STACK_MACHINE_NAME): Promise<Pin | undefined> {
  const config = await stack.getAllConfig();
  const pin = machinePin(configReader(config), machine);
  const pins = parsePins(config[PINS_CONFIG_KEY]?.value);
  const legacy = parsePin(config[PIN_CONFIG_KEY]?.value);
  delete pins[machine];
  if (legacy) for (const other of await machineNames(stack)) if (other !== machine) pins[other] ??= legacy;
  await writePins(stack, pins);
  if (legacy) await stack.removeConfig(PIN_CONFIG_KEY);
  return pin;
}
