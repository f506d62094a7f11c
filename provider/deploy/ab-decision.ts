/**
 * The A/B decision: from what a boot target holds now and the image wanted, which slot DEFAULT
 * names, which slot (if any) receives the image, and what happens to the other slot. Pure: the
 * target is inspected elsewhere (provider/boot/inspect.ts), so every rule here is unit-tested.
 *
 * - a slot that holds the wanted image intact is only selected (nothing is copied);
 * - otherwise the image goes to the slot that is not DEFAULT (nor set to boot once), so the
 *   running slot is never written;
 * - the slot not written keeps what it holds; when its files no longer match its manifest and it
 *   is not the slot syslinux boots now, it is repaired (rewritten from the image cache).
 */
import type { TargetState } from "../boot/inspect";

export type SlotPair = readonly [string, string];

export const DEFAULT_SLOTS: SlotPair = ["a", "b"];

export interface AbDecision {
  /** the slot DEFAULT names after the update */
  active: string;
  /** the slot that receives the wanted image; absent when a slot already holds it */
  write?: string;
  /** slots declared as they are (their manifest exists): nothing is copied to them */
  keep: string[];
  /** kept slots whose files no longer match their manifest, not booted now: rewrite them from the cache */
  repair: string[];
  /** DEFAULT names another slot than it does now (a first deployment counts) */
  switches: boolean;
}

function otherSlot(slots: SlotPair, slot: string): string {
  return slot === slots[0] ? slots[1] : slots[0];
}

/** The slot that holds a plan's image with every file intact. */
export function slotHolding(state: TargetState, slots: SlotPair, planId: string): string | undefined {
  return slots.find((slot) => {
    const s = state.slots[slot];
    return s?.consistent === true && s.manifest?.planId === planId;
  });
}

/** The slot syslinux boots now, by DEFAULT or once, when it is one of ours. */
function bootingSlot(state: TargetState, slots: SlotPair): string | undefined {
  if (state.defaultSlot && slots.includes(state.defaultSlot)) return state.defaultSlot;
  if (state.once && slots.includes(state.once)) return state.once;
  return undefined;
}

/** Which slot to write and which to select, from what the target holds now and the wanted plan. */
export function decide(state: TargetState, slots: SlotPair, wantedPlanId: string): AbDecision {
  if (slots[0] === slots[1]) throw new Error(`slots: got ${JSON.stringify(slots)}; expected two different slot names`);
  const booting = bootingSlot(state, slots);
  const holder = slotHolding(state, slots, wantedPlanId);
  const write = holder ? undefined : booting ? otherSlot(slots, booting) : slots[0];
  const active = holder ?? write!;
  const keep = slots.filter((slot) => slot !== write && state.slots[slot]?.manifest !== undefined);
  const repair = keep.filter(
    (slot) => state.slots[slot]?.consistent === false && slot !== state.defaultSlot && slot !== state.once,
  );
  return {
    active,
    ...(write ? { write } : {}),
    keep,
    repair,
    switches: state.defaultSlot !== active,
  };
}
