/**
 * The A/B rule, in one place: whether a slot may be written now, and for a deployment which slot
 * receives the wanted image and which slot DEFAULT names after it. The preview (the AbSystem
 * component's plan), `pulumi up` (BootSlot's write, checked again under the target's lease) and
 * the CLI (`ramroot slot write`) all ask these two functions. Pure: the target is read elsewhere
 * (provider/boot/inspect.ts), so every case is unit-tested (test/unit/deploy/ab-decision.test.ts).
 *
 * A slot must not be written when
 * - the machine runs it (an ssh target reads BOOT_IMAGE in /proc/cmdline);
 * - a pending once-boot boots it (the next boot would load what is being written);
 * - DEFAULT boots it and the machine may be running it (the running slot is unknown, or it).
 * DEFAULT boots a slot the machine does not run only when DEFAULT moved without a reboot since:
 * that slot never booted, so it is overwritten (DEFAULT first goes back to the running slot,
 * provider/deploy/slot-guard.ts) rather than refused.
 *
 * For a deployment: a slot that holds the wanted image intact is only selected (nothing is
 * copied), unless that image failed its trial there (it is not tried again by itself); otherwise
 * the image goes to a writable slot, the one DEFAULT does not boot first. The slot not written
 * keeps what it holds; when its files no longer match its manifest and it may be written, it is
 * repaired (rewritten from the image cache).
 */
import type { TargetState } from "../boot/inspect";
import { ConflictError, FieldError } from "../ramroot-error";

export type SlotPair = readonly [string, string];

export const DEFAULT_SLOTS: SlotPair = ["a", "b"];

/** What the rule decides from: the parts of a target's state that say what boots and what runs. */
export type SlotSituation = Pick<
  TargetState,
  "description" | "config" | "defaultLabel" | "defaultSlot" | "once" | "onceSlot" | "runningSlot" | "slots" | "journal"
> &
  Partial<Pick<TargetState, "failedTrials">>;

export interface AbDecision {
  /** the slot DEFAULT names after the update */
  active: string;
  /** the slot that receives the wanted image; absent when a slot already holds it */
  write?: string;
  /** slots declared as they are (their manifest exists): nothing is copied to them */
  keep: string[];
  /** kept slots whose files no longer match their manifest and that may be written: rewrite them from the cache */
  repair: string[];
  /** DEFAULT names another slot than it does now (a first deployment counts) */
  switches: boolean;
  /** what the preview should say about the decision (a never-booted DEFAULT rewritten, a failed trial not retried) */
  notes: string[];
}

const lower = (s: string | undefined) => s?.toLowerCase();

/** The journal's newest switch to the DEFAULT label, quoted when a write of its slot is refused. */
function since(state: SlotSituation): string {
  const label = lower(state.defaultLabel);
  const last = [...state.journal].reverse().find((e) => lower(e.label) === label);
  return last ? `, since ${last.when}${last.by ? ` by ${last.by}` : ""}` : "";
}

/** Why `slot` must not be written now, or undefined when it may be. */
export function slotWriteRefusal(state: SlotSituation, slot: string): string | undefined {
  const want = slot.toLowerCase();
  if (lower(state.runningSlot) === want)
    return `slot "${slot}" is the one the machine is running (BOOT_IMAGE in /proc/cmdline); write the other slot`;
  if (lower(state.onceSlot) === want)
    return `slot "${slot}" is set to boot once (label ${state.once}): the next boot loads it; clear the one-time boot first (\`ramroot syslinux clear-once\`)`;
  if (lower(state.defaultSlot) === want && state.runningSlot === undefined)
    return `slot "${slot}" holds what syslinux boots by default (DEFAULT ${state.defaultLabel} in ${state.config?.path ?? "syslinux.cfg"}${since(state)}); write the other slot, or change DEFAULT first`;
  return undefined;
}

/** The slot that holds a plan's image with every file intact. */
export function slotHolding(state: Pick<SlotSituation, "slots">, slots: SlotPair, planId: string): string | undefined {
  return slots.find((slot) => {
    const s = state.slots[slot];
    return s?.consistent === true && s.manifest?.planId === planId;
  });
}

/** The failed trial of what `slot` holds now, when its last trial failed (and it was not written since). */
export function failedTrialOf(state: SlotSituation, slot: string) {
  const held = state.slots[slot]?.manifest;
  if (!held) return undefined;
  const last = [...(state.failedTrials ?? [])].reverse().find((t) => lower(t.slot) === slot.toLowerCase());
  return last && last.imageId === held.imageId && Date.parse(last.when) >= Date.parse(held.when) ? last : undefined;
}

const short = (id: string) => id.slice(0, 12);

/**
 * Which slot to write and which to select, from what the target holds now and the wanted plan.
 * Throws a ConflictError (nothing is written) when no slot may receive it.
 */
export function decide(
  state: SlotSituation,
  slots: SlotPair,
  wantedPlanId: string,
  opts: { retryFailedTrial?: boolean } = {},
): AbDecision {
  if (slots[0] === slots[1])
    throw new FieldError("slots", `got ${JSON.stringify(slots)}; expected two different slot names`);
  const notes: string[] = [];
  const current = state.defaultSlot && slots.includes(state.defaultSlot) ? state.defaultSlot : undefined;
  let holder = slotHolding(state, slots, wantedPlanId);
  let write: string | undefined;
  let active: string;
  const failed = holder !== undefined && holder !== current ? failedTrialOf(state, holder) : undefined;
  if (holder !== undefined && failed && current !== undefined && !opts.retryFailedTrial) {
    // Tried and failed: the machine stays where it is until the image changes or a retry is asked for.
    notes.push(
      `image ${short(failed.imageId)} in slot ${holder} failed its trial at ${failed.when} (${failed.cause}): DEFAULT stays ${state.defaultLabel}; ` +
        "change the config to deploy another image, or run `RAMROOT_RETRY_TRIAL=1 pulumi up` to try this one again",
    );
    holder = undefined;
    active = current;
  } else if (holder !== undefined) {
    active = holder;
  } else {
    const writable = slots.filter((slot) => slotWriteRefusal(state, slot) === undefined);
    write = writable.find((slot) => slot !== current) ?? writable[0];
    if (write === undefined) {
      const why = slots.map((slot) => slotWriteRefusal(state, slot)!).join("; ");
      throw new ConflictError(
        `${state.description}: no slot may receive the new image: ${why}`,
        "nothing was written; clear the pending one-time boot (`ramroot syslinux clear-once`) or reboot the machine, then run `pulumi up` again",
      );
    }
    if (write === current)
      notes.push(
        `slot ${write} is DEFAULT but never booted (the machine runs slot ${state.runningSlot}): it is rewritten, and DEFAULT goes back to slot ${state.runningSlot} while it is`,
      );
    active = write;
  }
  const keep = slots.filter((slot) => slot !== write && state.slots[slot]?.manifest !== undefined);
  const repair = keep.filter(
    (slot) =>
      state.slots[slot]?.consistent === false && slot !== current && slotWriteRefusal(state, slot) === undefined,
  );
  return {
    active,
    ...(write ? { write } : {}),
    keep,
    repair,
    switches: state.defaultSlot !== active,
    notes,
  };
}
