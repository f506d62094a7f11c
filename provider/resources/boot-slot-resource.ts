import * as fs from "node:fs";
import { z } from "zod";
import { targetSpecSchema, withTarget, type TargetSpec } from "../boot/target";
import { readSlot, slotRefusal, writeSlot, SLOT_FILES, type SlotFileRole, type SlotState } from "../boot/slot";
import { checkInputs } from "./check-inputs";
import type { OperationContext, ResourceHandler } from "./resource-handler";

export const BOOT_SLOT_TOKEN = "ramroot:index:BootSlot";

const sha = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 in hex");

const inputsSchema = z.strictObject({
  target: targetSpecSchema,
  slot: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,7}$/, "expected a slot name of 1-8 lower-case letters, digits, _ or -"),
  /** what the slot must hold */
  imageId: z.string().min(1, "expected the image id"),
  planId: z.string().min(1, "expected the plan id"),
  /** sha256 of each file the slot must hold */
  files: z.strictObject({ kernel: sha, initramfs: sha, microcode: sha.optional() }),
  /** local copies to send when the slot does not hold them yet (paths in the image cache) */
  sources: z.strictObject({ kernel: z.string(), initramfs: z.string(), microcode: z.string().optional() }).optional(),
  /** package -> version, written to the slot's manifest */
  packages: z.record(z.string(), z.string()).optional(),
});

export type BootSlotInputs = z.output<typeof inputsSchema>;

export interface BootSlotOutputs extends BootSlotInputs {
  /** when the slot was written (its manifest) */
  written?: string;
  /** every file re-hashed and matching the manifest */
  consistent: boolean;
}

function holds(state: SlotState | undefined, inputs: BootSlotInputs): boolean {
  if (!state?.consistent || state.manifest?.imageId !== inputs.imageId) return false;
  return (Object.keys(SLOT_FILES) as SlotFileRole[]).every((role) => state.files[role]?.sha256 === inputs.files[role]);
}

function outputsFrom(inputs: BootSlotInputs, state: SlotState): BootSlotOutputs {
  const files: Record<string, string> = {};
  for (const role of Object.keys(SLOT_FILES) as SlotFileRole[]) {
    const f = state.files[role];
    if (f) files[role] = f.sha256;
  }
  return {
    ...inputs,
    imageId: state.manifest?.imageId ?? "",
    planId: state.manifest?.planId ?? "",
    files: files as BootSlotInputs["files"],
    ...(state.manifest?.when ? { written: state.manifest.when } : {}),
    consistent: state.consistent,
  };
}

/** Writes the image into the slot unless it holds it already; refuses the default, once and running slots. */
async function place(inputs: BootSlotInputs, ctx: OperationContext): Promise<BootSlotOutputs> {
  return withTarget(inputs.target, async (target) => {
    const current = await readSlot(target, inputs.slot);
    if (holds(current, inputs)) {
      ctx.log(`slot ${inputs.slot} on ${target.describe()} already holds image ${inputs.imageId.slice(0, 12)}: nothing to copy`);
      return outputsFrom(inputs, current!);
    }
    const refusal = await slotRefusal(target, inputs.slot);
    if (refusal) throw new Error(`slot: ${target.describe()}: refusing to write: ${refusal}`);
    if (ctx.preview) return { ...inputs, consistent: true };
    const sources = inputs.sources;
    if (!sources) throw new Error(`sources: slot ${inputs.slot} must receive image ${inputs.imageId.slice(0, 12)}, but no local copy was given`);
    for (const [role, file] of Object.entries(sources)) {
      if (file && !fs.existsSync(file)) throw new Error(`sources.${role}: ${file} is not in the local image cache any more; run \`pulumi up --refresh\` to rebuild it`);
    }
    ctx.log(`writing image ${inputs.imageId.slice(0, 12)} into slot ${inputs.slot} on ${target.describe()}`);
    let lastTenth = -1;
    const state = await writeSlot(target, {
      slot: inputs.slot,
      files: { kernel: sources.kernel, initramfs: sources.initramfs, ...(sources.microcode ? { microcode: sources.microcode } : {}) },
      manifest: { imageId: inputs.imageId, planId: inputs.planId, ...(inputs.packages ? { lockSummary: inputs.packages } : {}) },
      onProgress: (role, done, total) => {
        const tenth = Math.floor((done / Math.max(total, 1)) * 10);
        if (role === "initramfs" && tenth !== lastTenth) {
          lastTenth = tenth;
          ctx.log(`slot ${inputs.slot}: initramfs ${(done / (1 << 20)).toFixed(1)} of ${(total / (1 << 20)).toFixed(1)} MiB`);
        }
      },
    });
    if (!holds(state, inputs)) throw new Error(`slot ${inputs.slot}: after the copy the slot does not hold image ${inputs.imageId.slice(0, 12)} (hash mismatch)`);
    return outputsFrom(inputs, state);
  });
}

/** One slot directory on a boot target: kernel, initramfs, microcode and a manifest. */
export const bootSlotHandler: ResourceHandler<BootSlotInputs, BootSlotOutputs> = {
  token: BOOT_SLOT_TOKEN,

  check(news) {
    return checkInputs(inputsSchema, news);
  },

  async diff(_id, olds, news) {
    const changes: Record<string, "update"> = {};
    if (JSON.stringify(olds.target) !== JSON.stringify(news.target)) changes["target"] = "update";
    if (olds.slot !== news.slot) changes["slot"] = "update";
    // What the slot holds is what counts; where the local copies sit does not.
    if (olds.imageId !== news.imageId) changes["imageId"] = "update";
    if (olds.planId !== news.planId) changes["planId"] = "update";
    for (const role of Object.keys(SLOT_FILES) as SlotFileRole[]) {
      if (olds.files?.[role] !== news.files[role]) changes[`files.${role}`] = "update";
    }
    if (olds.consistent === false) changes["files"] = "update";
    const replaces = changes["target"] || changes["slot"] ? ["target", "slot"].filter((k) => changes[k]) : [];
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(inputs, ctx) {
    const outs = await place(inputs, ctx);
    return { id: ctx.preview ? "" : `${inputs.target.kind}:${inputs.target.path}#${inputs.slot}`, outs };
  },

  async read(_id, olds) {
    return withTarget(olds.target, async (target) => {
      const state = await readSlot(target, olds.slot);
      if (!state) return undefined;
      const { written: _w, consistent: _c, ...inputs } = olds;
      return { outs: outputsFrom(inputs, state), inputs };
    });
  },

  async update(_id, _olds, news, ctx) {
    return place(news, ctx);
  },

  /** Removes the slot's files, unless syslinux boots it by default (then it stays, with a warning). */
  async delete(_id, olds, ctx) {
    await withTarget(olds.target, async (target) => {
      const refusal = await slotRefusal(target, olds.slot);
      if (refusal) {
        ctx.log(`leaving slot ${olds.slot} on ${target.describe()} in place: ${refusal}`, "warning");
        return;
      }
      await target.remove(olds.slot);
      ctx.log(`removed slot ${olds.slot} from ${target.describe()}`);
    });
  },
};
