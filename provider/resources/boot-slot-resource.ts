import * as fs from "node:fs";
import { z } from "zod";
import { withLease, type Lease } from "../boot/lease";
import type { PartitionVolume } from "../boot/fat-volume-id";
import { assertBootPartition } from "../boot/schemes/registry";
import { LAYER_DIR } from "../boot/layer-store";
import { sameTarget } from "../boot/target-identity";
import { targetSpecSchema, withTarget, type BootTarget } from "../boot/target";
import { collectUnnamedLayers, readSlot, SLOT_FILES, type SlotFileRole, type SlotState } from "../boot/slot";
import { slotWriteRefusalOn, writeSlotChecked } from "../deploy/slot-guard";
import { imageIdOf, recordedLayersOf } from "../image/build";
import { sha256File } from "../file-hash";
import { checkInputs } from "./check-inputs";
import { noteWritten, wasWrittenThisRun, wipeOnDeleteSchema } from "./delete-policy";
import { formatTargetId, parseTargetId } from "./target-id";
import { diffTarget, partitionVolumeSchema } from "./target-diff";
import type { OperationContext, ResourceHandler } from "./resource-handler";

import { BOOT_SLOT_TOKEN } from "./tokens";
import { ConflictError, FieldError, InternalError, TargetError } from "../ramroot-error";

/** The files an image id is made of (a slot's signed UKIs are made from them, per entry). */
const IMAGE_ROLES: readonly SlotFileRole[] = ["kernel", "initramfs", "microcode"];

const sha = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 in hex");

export const bootSlotInputsSchema = z.strictObject({
  target: targetSpecSchema,
  slot: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,7}$/, "expected a slot name of 1-8 lower-case letters, digits, _ or -")
    .describe("the slot's directory on the partition, e.g. a"),
  imageId: z.string().min(1, "expected the image id").describe("the image the slot must hold"),
  planId: z.string().min(1, "expected the plan id").describe("the plan of that image"),
  files: z
    .strictObject({
      kernel: sha.describe("sha256 of vmlinuz"),
      initramfs: sha.describe("sha256 of initramfs"),
      microcode: sha.optional().describe("sha256 of microcode"),
      uki: sha.optional().describe("Secure Boot: sha256 of the signed UKI the entry boots (ramroot.efi)"),
      trialUki: sha.optional().describe("Secure Boot: sha256 of the signed UKI a trial boots (ramroot-trial.efi)"),
    })
    .describe("sha256 of each file the slot must hold"),
  sources: z
    .strictObject({
      kernel: z.string(),
      initramfs: z.string(),
      microcode: z.string().optional(),
      uki: z.string().optional(),
      trialUki: z.string().optional(),
    })
    .optional()
    .describe("local copies to send when the slot does not hold them yet (paths in the image cache)"),
  certificate: z
    .string()
    .optional()
    .describe(
      "Secure Boot: the certificate (PEM) whose key signed the slot's UKIs; sbverify checks them against it before the slot is written",
    ),
  packages: z.record(z.string(), z.string()).optional().describe("package -> version, written to the slot's manifest"),
  wipeOnDelete: wipeOnDeleteSchema,
});

export const bootSlotOutputsSchema = z.object({
  written: z.string().optional().describe("when the slot was written (its manifest)"),
  consistent: z.boolean().describe("every file re-hashed and matching the manifest"),
  onDelete: z.string().describe("what deleting this resource will do to the slot's files"),
  volume: partitionVolumeSchema,
});

export type BootSlotInputs = z.output<typeof bootSlotInputsSchema>;
export type BootSlotOutputs = BootSlotInputs & z.output<typeof bootSlotOutputsSchema>;

function holds(state: SlotState | undefined, inputs: BootSlotInputs): boolean {
  if (!state) return false;
  const filesMatch = (Object.keys(SLOT_FILES) as SlotFileRole[]).every(
    (role) => state.files[role]?.sha256 === inputs.files[role],
  );
  // A slot made by hand has no manifest: its files are what it holds.
  if (!state.manifest) return filesMatch;
  return state.consistent && state.manifest.imageId === inputs.imageId && filesMatch;
}

function onDelete(inputs: BootSlotInputs): string {
  return inputs.wipeOnDelete === true
    ? `removes slot ${inputs.slot} (wipeOnDelete), unless a replacement wrote it in the same run`
    : `keeps slot ${inputs.slot} and its files on the partition (set wipeOnDelete: true and run up to remove them on delete)`;
}

function outputsFrom(inputs: BootSlotInputs, state: SlotState, volume: PartitionVolume | null): BootSlotOutputs {
  const files: Record<string, string> = {};
  for (const role of Object.keys(SLOT_FILES) as SlotFileRole[]) {
    const f = state.files[role];
    if (f) files[role] = f.sha256;
  }
  return {
    ...inputs,
    imageId: state.manifest?.imageId ?? inputs.imageId,
    planId: state.manifest?.planId ?? inputs.planId,
    files: files as BootSlotInputs["files"],
    ...(state.manifest?.when ? { written: state.manifest.when } : {}),
    consistent: state.consistent,
    onDelete: onDelete(inputs),
    volume,
  };
}

/** The inputs that describe what a slot holds now: what `pulumi import` adopts and `refresh` records. */
function inputsFrom(
  target: BootSlotInputs["target"],
  slot: string,
  state: SlotState,
  olds?: Partial<BootSlotInputs>,
): BootSlotInputs {
  const files: Record<string, string> = {};
  for (const role of Object.keys(SLOT_FILES) as SlotFileRole[]) {
    const f = state.files[role];
    if (f) files[role] = f.sha256;
  }
  const lock = state.manifest?.lockSummary ?? olds?.packages;
  return {
    target,
    slot,
    // A slot made by hand has no manifest: its image id is computed from its files as ramroot does.
    imageId:
      state.manifest?.imageId ??
      imageIdOf(
        Object.fromEntries(
          Object.entries(files)
            .filter(([r]) => IMAGE_ROLES.includes(r as SlotFileRole))
            .map(([r, sha256]) => [r, { sha256 }]),
        ),
      ),
    planId: state.manifest?.planId ?? "unknown",
    files: files as BootSlotInputs["files"],
    ...(olds?.sources ? { sources: olds.sources } : {}),
    ...(olds?.certificate ? { certificate: olds.certificate } : {}),
    ...(lock ? { packages: lock } : {}),
    ...(olds?.wipeOnDelete !== undefined ? { wipeOnDelete: olds.wipeOnDelete } : {}),
  };
}

/**
 * Writes the image into the slot unless it holds it already; refuses the default, once and
 * running slots. `keepLease`: a write keeps the target's lease for this deploy's switch of
 * DEFAULT (SyslinuxConfig releases it); a repair (the image the slot held, rewritten) is
 * followed by no switch, so it gives the lease back.
 */
async function place(
  inputs: BootSlotInputs,
  ctx: OperationContext,
  keepLease = true,
  known?: PartitionVolume | null,
): Promise<BootSlotOutputs> {
  if (ctx.preview) return withTarget(inputs.target, (target) => placeUnder(target, inputs, ctx, undefined, known));
  return withTarget(inputs.target, async (target) => {
    await assertBootPartition(target);
    const volume = known !== undefined ? known : ((await target.bootVolume()) ?? null);
    // A slot that holds the image already is only read: no lease, nothing on the partition
    // changes (a connection-only update writes nothing). The switch checks it again under its lease.
    const current = await readSlot(target, inputs.slot);
    if (holds(current, inputs)) {
      ctx.log(
        `slot ${inputs.slot} on ${target.describe()} already holds image ${inputs.imageId.slice(0, 12)}: nothing to copy`,
      );
      return outputsFrom(inputs, current!, volume);
    }
    // A write: the lease is taken before the check that decides it and kept for this deploy's
    // switch of DEFAULT (SyslinuxConfig releases it), so no other deploy can switch or write in between.
    return withLease(
      target,
      {
        owner: `pulumi up: BootSlot ${inputs.slot} <- image ${inputs.imageId.slice(0, 12)}`,
        keep: keepLease,
        log: (m) => ctx.log(m),
      },
      (lease) => placeUnder(target, inputs, ctx, lease, volume),
    );
  });
}

async function placeUnder(
  target: BootTarget,
  inputs: BootSlotInputs,
  ctx: OperationContext,
  lease?: Lease,
  known?: PartitionVolume | null,
): Promise<BootSlotOutputs> {
  // A preview reads the target here first: a place that is no boot partition stops it.
  if (ctx.preview) await assertBootPartition(target);
  const volume = known !== undefined ? known : ((await target.bootVolume()) ?? null);
  const current = await readSlot(target, inputs.slot);
  if (holds(current, inputs)) {
    ctx.log(
      `slot ${inputs.slot} on ${target.describe()} already holds image ${inputs.imageId.slice(0, 12)}: nothing to copy`,
    );
    return outputsFrom(inputs, current!, volume);
  }
  if (ctx.preview) {
    const refusal = await slotWriteRefusalOn(target, inputs.slot);
    if (refusal) throw new TargetError(`slot: ${target.describe()}: refusing to write: ${refusal}`);
    return { ...inputs, consistent: true, onDelete: onDelete(inputs), volume };
  }
  const sources = inputs.sources;
  if (!sources)
    throw new InternalError(
      `sources: slot ${inputs.slot} must receive image ${inputs.imageId.slice(0, 12)}, but no local copy was given`,
    );
  for (const [role, file] of Object.entries(sources)) {
    if (file && !fs.existsSync(file))
      throw new ConflictError(
        `sources.${role}: ${file} is not in the local image cache any more; run \`pulumi up --refresh\` to rebuild it`,
      );
  }
  await assertSourcesAreImage(inputs, sources);
  ctx.log(`writing image ${inputs.imageId.slice(0, 12)} into slot ${inputs.slot} on ${target.describe()}`);
  noteWritten(inputs.target, inputs.slot);
  let lastTenth = -1;
  // An image the cache records the layers of goes into the partition's layer store (a layered slot),
  // unless the slot boots signed UKIs (Secure Boot): each holds the whole initramfs, so the slot keeps
  // it whole too.
  const layers = sources.uki ? undefined : recordedLayersOf(sources.initramfs);
  const state = await writeSlotChecked(
    target,
    {
      slot: inputs.slot,
      files: {
        kernel: sources.kernel,
        initramfs: sources.initramfs,
        ...(sources.microcode ? { microcode: sources.microcode } : {}),
        ...(sources.uki ? { uki: sources.uki } : {}),
        ...(sources.trialUki ? { trialUki: sources.trialUki } : {}),
      },
      ...(inputs.certificate && sources.uki && sources.trialUki
        ? {
            secureBoot: [
              { uki: sources.uki, certificate: inputs.certificate },
              { uki: sources.trialUki, certificate: inputs.certificate },
            ],
          }
        : {}),
      ...(layers ? { layers } : {}),
      manifest: {
        imageId: inputs.imageId,
        planId: inputs.planId,
        ...(inputs.packages ? { lockSummary: inputs.packages } : {}),
      },
      ...(lease ? { beforeCommit: () => lease.assertHeld(target) } : {}),
      onProgress: (role, done, total) => {
        const tenth = Math.floor((done / Math.max(total, 1)) * 10);
        if (role === "initramfs" && tenth !== lastTenth) {
          lastTenth = tenth;
          ctx.log(
            `slot ${inputs.slot}: initramfs ${(done / (1 << 20)).toFixed(1)} of ${(total / (1 << 20)).toFixed(1)} MiB`,
          );
        }
      },
    },
    (m) => ctx.log(m, "warning"),
  );
  if (!holds(state, inputs))
    throw new TargetError(
      `slot ${inputs.slot}: after the copy the slot does not hold image ${inputs.imageId.slice(0, 12)} (hash mismatch)`,
    );
  return outputsFrom(inputs, state, volume);
}

/**
 * The local copies must be the image the state names: each re-hashed against `files`, and a
 * ramroot image id (64 hex digits) must be the id of those hashes. Checked before anything is
 * sent, so a changed image cache never reaches a slot under a manifest that names another image.
 */
async function assertSourcesAreImage(inputs: BootSlotInputs, sources: NonNullable<BootSlotInputs["sources"]>) {
  const hashes: Record<string, { sha256: string }> = {};
  for (const role of Object.keys(SLOT_FILES) as SlotFileRole[]) {
    const file = sources[role];
    const wanted = inputs.files[role];
    if (file === undefined && wanted === undefined) continue;
    if (file === undefined || wanted === undefined)
      throw new ConflictError(
        `sources.${role}: image ${inputs.imageId.slice(0, 12)} ${wanted === undefined ? "has no" : "has a"} ${role}, but the local copy ${file === undefined ? "has none" : `names ${file}`}; nothing was written to slot ${inputs.slot}`,
      );
    const now = await sha256File(file);
    if (now !== wanted)
      throw new ConflictError(
        `sources.${role}: ${file} hashes to ${now?.slice(0, 12) ?? "(missing)"}, but image ${inputs.imageId.slice(0, 12)} in the stack's state has ${wanted.slice(0, 12)}: ` +
          `the image cache changed after the build; nothing was written to slot ${inputs.slot}. Remove that image from the cache and run \`pulumi up --refresh\` to rebuild it`,
      );
    if (IMAGE_ROLES.includes(role)) hashes[role] = { sha256: now };
  }
  if (/^[0-9a-f]{64}$/.test(inputs.imageId) && imageIdOf(hashes) !== inputs.imageId)
    throw new ConflictError(
      `imageId: the local copies make image ${imageIdOf(hashes).slice(0, 12)}, not ${inputs.imageId.slice(0, 12)} as the stack's state says; nothing was written to slot ${inputs.slot}`,
    );
}

/**
 * Whether the slot on the target still holds what the state says, when the program offers a
 * local copy to repair it from (`sources`): so a damaged slot is rewritten by the next `up`, not
 * only after a refresh. Undefined (and a warning) when the target cannot be read now.
 */
async function slotDrifted(inputs: BootSlotInputs, ctx: OperationContext): Promise<boolean> {
  try {
    return await withTarget(inputs.target, async (target) => {
      if (holds(await readSlot(target, inputs.slot), inputs)) return false;
      // The slot that boots now is never rewritten in place: say so rather than plan a write that is refused.
      const refusal = await slotWriteRefusalOn(target, inputs.slot);
      if (refusal === undefined) return true;
      ctx.log(
        `slot ${inputs.slot} on ${target.describe()} no longer holds image ${inputs.imageId.slice(0, 12)} but is not rewritten: ${refusal}`,
        "warning",
      );
      return false;
    });
  } catch (err) {
    ctx.log(
      `could not read slot ${inputs.slot} to check that it still holds image ${inputs.imageId.slice(0, 12)}: ${(err as Error).message}`,
      "warning",
    );
    return false;
  }
}

/** Removes the slot's files when asked to (wipeOnDelete) and it is still what this resource wrote. */
async function wipe(target: BootTarget, olds: BootSlotOutputs, ctx: OperationContext): Promise<void> {
  const where = `slot ${olds.slot} on ${target.describe()}`;
  if (wasWrittenThisRun(olds.target, olds.slot)) {
    ctx.log(`kept ${where}: its replacement wrote it in this update`, "warning");
    return;
  }
  const state = await readSlot(target, olds.slot);
  if (!state) return;
  if (
    state.manifest?.imageId !== olds.imageId ||
    (olds.written !== undefined && state.manifest?.when !== olds.written)
  ) {
    ctx.log(
      `kept ${where}: it holds image ${state.manifest?.imageId?.slice(0, 12) ?? "(no manifest)"} now, not what this resource wrote`,
      "warning",
    );
    return;
  }
  await target.remove(olds.slot);
  ctx.log(`removed ${where} (wipeOnDelete)`, "warning");
  // Its layers go too, unless another slot's manifest names them; an empty store goes with them.
  const layers = await collectUnnamedLayers(target);
  if (layers.length > 0) ctx.log(`removed ${layers.length} layer(s) no slot names from ${target.describe()}`);
  if (layers.length > 0 && (await target.list(LAYER_DIR)).length === 0) await target.remove(LAYER_DIR);
}

/** One slot directory on a boot target: kernel, initramfs, microcode and a manifest. */
export const bootSlotHandler: ResourceHandler<BootSlotInputs, BootSlotOutputs> = {
  token: BOOT_SLOT_TOKEN,

  check(news) {
    return checkInputs(bootSlotInputsSchema, news);
  },

  async diff(_id, olds, news, ctx) {
    const target = await diffTarget(olds.target, olds.volume, news.target);
    const changes: Record<string, "add" | "delete" | "update"> = { ...target.changes };
    if (olds.slot !== news.slot) changes["slot"] = "update";
    // What the slot holds is what counts; where the local copies sit does not.
    if (olds.imageId !== news.imageId) changes["imageId"] = "update";
    if (olds.planId !== news.planId) changes["planId"] = "update";
    for (const role of Object.keys(SLOT_FILES) as SlotFileRole[]) {
      if (olds.files?.[role] !== news.files[role]) changes[`files.${role}`] = "update";
    }
    // Files that no longer match their manifest are rewritten; a slot made by hand has none, its files are the truth.
    if (olds.consistent === false && olds.written !== undefined) changes["files"] = "update";
    if ((olds.wipeOnDelete ?? false) !== (news.wipeOnDelete ?? false)) changes["wipeOnDelete"] = "update";
    // The state says the slot holds the image; a damaged slot shows only on the target. With a
    // local copy to repair it from, look (only when nothing else says it is written anyway).
    const written =
      target.replace || Object.keys(changes).some((k) => k === "slot" || k === "imageId" || k.startsWith("files"));
    if (!written && news.sources !== undefined && (await slotDrifted(news, ctx))) changes["files"] = "update";
    // Another partition is another slot; a new way to reach the same one writes nothing.
    const replaces = [...(target.replace ? ["target"] : []), ...(changes["slot"] ? ["slot"] : [])];
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(inputs, ctx) {
    const outs = await place(inputs, ctx);
    return { id: ctx.preview ? "" : `${formatTargetId(inputs.target)}#${inputs.slot}`, outs };
  },

  /** Re-reads the slot: refresh records what it holds now; an import (no state yet) adopts it by its id. */
  async read(id, olds) {
    const known = olds.target !== undefined && olds.slot !== undefined;
    const { target: spec, slot } = known ? { target: olds.target, slot: olds.slot } : parseTargetId(id);
    if (slot === undefined)
      throw new FieldError(
        "id",
        `got ${JSON.stringify(id)}; a BootSlot id ends in #<slot>, e.g. image:/srv/disk.img#a`,
      );
    return withTarget(spec, async (target) => {
      const state = await readSlot(target, slot);
      if (!state) return undefined;
      const inputs = inputsFrom(spec, slot, state, known ? olds : undefined);
      return { outs: outputsFrom(inputs, state, (await target.bootVolume()) ?? null), inputs };
    });
  },

  async update(_id, olds, news, ctx) {
    // The same place is the same volume as recorded (a refresh re-reads it): no need to look again.
    return place(
      news,
      ctx,
      olds.imageId !== news.imageId,
      sameTarget(olds.target, news.target) ? olds.volume : undefined,
    );
  },

  /** Lets go of the slot (its files stay), unless wipeOnDelete asks for a removal. */
  async delete(_id, olds, ctx) {
    if (olds.wipeOnDelete !== true) {
      ctx.log(
        `left slot ${olds.slot} on ${formatTargetId(olds.target)} in place: deleting the resource lets go of it (wipeOnDelete is off)`,
        "warning",
      );
      return;
    }
    await withTarget(olds.target, (target) =>
      withLease(target, { owner: `pulumi destroy: BootSlot ${olds.slot}`, log: (m) => ctx.log(m) }, () =>
        wipe(target, olds, ctx),
      ),
    );
  },
};
