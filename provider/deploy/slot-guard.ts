/**
 * The A/B rule (ab-decision.ts) applied to a target right before a slot is written: what the
 * target says now (DEFAULT, a pending once-boot, the slot the machine runs, the journal) is read
 * on the writer's own connection and the rule asked. Every slot write goes through here:
 * BootSlot's create and update (under the target's lease), its diff (whether a damaged slot can
 * be rewritten) and `ramroot slot write`. A signed UKI is checked against its certificate first.
 */
import { inspectOpenTarget } from "../boot/inspect";
import { recordDefault } from "../boot/journal";
import { assertLabelBootable, slotOfBootPath, writeSlot, type SlotState, type WriteSlotOptions } from "../boot/slot";
import { schemeOf } from "../boot/schemes/registry";
import type { BootTarget } from "../boot/target";
import { sha256Hex } from "../file-hash";
import { ConflictError } from "../ramroot-error";
import { assertUkiSignedBy } from "../secure-boot-signing";
import { slotWriteRefusal } from "./ab-decision";

/** Why `slot` on the open target must not be written now, or undefined when it may be. */
export async function slotWriteRefusalOn(target: BootTarget, slot: string): Promise<string | undefined> {
  return slotWriteRefusal(await inspectOpenTarget(target, []), slot);
}

/**
 * Throws a ConflictError (nothing written) unless `slot` may be written now. When the slot is
 * DEFAULT but never booted (the machine runs the other slot), DEFAULT first goes back to the
 * slot the machine runs, so no moment of the write leaves DEFAULT on a half-written slot.
 */
export async function prepareSlotWrite(target: BootTarget, slot: string, log: (m: string) => void): Promise<void> {
  const state = await inspectOpenTarget(target, []);
  const refusal = slotWriteRefusal(state, slot);
  if (refusal)
    throw new ConflictError(`${target.describe()}: refusing to write: ${refusal}`, "nothing was written to the slot");
  const running = state.runningSlot;
  if (state.defaultSlot?.toLowerCase() !== slot.toLowerCase() || running === undefined) return;
  const scheme = await schemeOf(target);
  const config = await scheme.readConfig(target);
  if (!config) return;
  const entries = config.spec.entries.filter((e) => slotOfBootPath(e.kernel, config.path) === running.toLowerCase());
  const label = (entries.find((e) => e.label.toLowerCase() === running.toLowerCase()) ?? entries[0])?.label;
  if (label === undefined)
    throw new ConflictError(
      `${target.describe()}: refusing to write: slot "${slot}" is DEFAULT and the machine runs slot ${running}, which no entry of ${config.path} boots`,
      "nothing was written; reboot the machine into DEFAULT, or add an entry for the running slot",
    );
  const spec = { ...config.spec, defaultLabel: label };
  await assertLabelBootable(target, spec, label, config.path);
  await scheme.writeConfig(target, spec, { expectedSha256: sha256Hex(config.text) });
  // The gates of the switch before stay on record: the next deploy still drops them only explicitly.
  await recordDefault(target, "back to the running slot", undefined, undefined, state.journal.at(-1)?.gates);
  log(
    `DEFAULT ${config.spec.defaultLabel} -> ${label} on ${target.describe()}: slot ${slot} is DEFAULT but never booted (the machine runs slot ${running}), so DEFAULT boots the running slot while it is rewritten`,
  );
}

/** A Secure Boot UKI the write carries: the file and the certificate (PEM) whose key must have signed it. */
export interface SignedUki {
  uki: string;
  certificate: string;
}

/**
 * writeSlot, after the A/B rule allowed it (prepareSlotWrite). With `secureBoot`, the UKI is
 * first checked against the certificate (sbverify): one not signed by its key is refused with
 * an error naming secureBoot.certificate before anything on the target changes.
 */
export async function writeSlotChecked(
  target: BootTarget,
  input: WriteSlotOptions & { secureBoot?: SignedUki | SignedUki[] },
  log: (m: string) => void,
): Promise<SlotState> {
  const { secureBoot, ...write } = input;
  for (const signed of secureBoot === undefined ? [] : [secureBoot].flat())
    await assertUkiSignedBy(signed.uki, signed.certificate);
  await prepareSlotWrite(target, write.slot, log);
  return writeSlot(target, write);
}
