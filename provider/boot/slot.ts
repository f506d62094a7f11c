import * as fs from "node:fs";
import { bootedSlotOf } from "./booted-slot";
import { SLOT_PARAMETER } from "../machine/image-id";
import * as path from "node:path";
import { z } from "zod";
import { isTempName } from "../atomic-file";
import { parseInput } from "../input-error";
import { openScratchDir } from "../scratch-dir";
import { sha256File } from "../file-hash";
import { hashFiles, type BootTarget } from "./boot-target";
import {
  collectLayers,
  LAYER_DIR,
  layerPath,
  hashWithLayers,
  layerHashesProblem,
  putLayers,
  type LayerRecord,
  type LayerSpec,
} from "./layer-store";
import { entryByLabel, type SyslinuxConfigSpec, type SyslinuxEntry } from "./schemes/syslinux/config";
import { FieldError, TargetError } from "../ramroot-error";

/**
 * A/B slots as storage: a directory per slot on the boot partition (`<slot>/vmlinuz`,
 * `initramfs`, optional `microcode`) and a `manifest.json` saying what it holds, and where a
 * syslinux entry's files are. A layered slot (docs/layer-store.md) holds no `initramfs`: its
 * manifest names the image's layers in the partition's layer store (layer-store.ts), and its
 * entry loads them in order. A write puts the layers first, then stages every file under a
 * temporary name (each verified by hash), then renames them in, then writes the manifest, then
 * collects the layers no slot's manifest names. Which slot may be written is not decided
 * here: the A/B rule (provider/deploy/ab-decision.ts) decides, and provider/deploy/slot-guard.ts
 * checks it before every write.
 */
export const SLOT_FILES = {
  kernel: "vmlinuz",
  initramfs: "initramfs",
  microcode: "microcode",
  // Secure Boot (provider/image/uki-slot.ts): the signed UKI the entry boots, and the trial's
  uki: "ramroot.efi",
  trialUki: "ramroot-trial.efi",
} as const;
export const SLOT_MANIFEST = "manifest.json";
const STAGED = ".new";

export type SlotFileRole = keyof typeof SLOT_FILES;

export interface SlotFilesInput {
  /** local paths of the artifacts to copy in */
  kernel: string;
  initramfs: string;
  microcode?: string;
  /** Secure Boot: the slot's signed UKIs (the entry's, the trial's) */
  uki?: string;
  trialUki?: string;
}

export interface SlotManifestInput {
  imageId: string;
  planId: string;
  /** what the image holds, e.g. { "linux-lts": "6.12.41-r0", ... } */
  lockSummary?: Record<string, string>;
  /** ISO time of the write; default now */
  when?: string;
}

export interface SlotFileRecord {
  /** path on the target, e.g. "a/vmlinuz" */
  path: string;
  sha256: string;
  size: number;
}

export interface SlotManifest {
  slot: string;
  imageId: string;
  planId: string;
  lockSummary?: Record<string, string>;
  when: string;
  /**
   * files.initramfs records the whole initramfs (sha256 and size, what the image id is made of);
   * in a layered slot its path lists the layers, and these are its bytes, in order, in the store.
   */
  files: Partial<Record<SlotFileRole, SlotFileRecord>>;
  /** a layered slot: the layers its initramfs is the concatenation of (absent in a whole-file slot) */
  layers?: LayerRecord[];
}

export interface SlotState {
  slot: string;
  /** the manifest as stored, undefined when the slot has none */
  manifest?: SlotManifest;
  /** the files as they are now, re-hashed */
  files: Partial<Record<SlotFileRole, { path: string; sha256: string }>>;
  /** true when a manifest exists and every file it lists hashes as recorded (and no unlisted file is present) */
  consistent: boolean;
  /** a layered slot whose layers do not all hash as recorded: why (its initramfs is then not in `files`) */
  layersProblem?: string;
}

const slotName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,7}$/, "expected a slot name of 1-8 lower-case letters, digits, _ or -");

const writeSchema = z.strictObject({
  slot: slotName.refine((s) => s !== LAYER_DIR, `expected a slot name other than ${LAYER_DIR} (the layer store)`),
  files: z.strictObject({
    kernel: z.string().min(1, "expected a local file path"),
    initramfs: z.string().min(1, "expected a local file path"),
    microcode: z.string().min(1).optional(),
    uki: z.string().min(1).optional(),
    trialUki: z.string().min(1).optional(),
  }),
  layers: z
    .array(
      z.strictObject({
        sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 in hex"),
        size: z.number().int().nonnegative(),
      }),
    )
    .min(1, "expected the image's layers, in order")
    .optional(),
  manifest: z.strictObject({
    imageId: z.string().min(1, "expected the image id"),
    planId: z.string().min(1, "expected the plan id"),
    lockSummary: z.record(z.string(), z.string()).optional(),
    when: z.string().optional(),
  }),
});

export interface WriteSlotOptions {
  slot: string;
  files: SlotFilesInput;
  /** the layers `files.initramfs` is the concatenation of: a layered slot (none: the whole file in `<slot>/initramfs`) */
  layers?: readonly LayerSpec[];
  manifest: SlotManifestInput;
  onProgress?: (file: SlotFileRole, done: number, total: number) => void;
  /** runs after every file is staged and verified, before the first rename: a lease check */
  beforeCommit?: () => Promise<void>;
}

/**
 * The syslinux entry that boots a slot: absolute paths from the partition root. `layers`: a
 * layered slot's (from the image it receives, or a kept slot's manifest); its initrds are the
 * microcode, then each layer in order, instead of `<slot>/initramfs`, and its command line names
 * the slot (`ramroot.slot=`): the layers' paths name the shared store, and systemd-boot tells the
 * kernel its entry only through those paths (booted-slot.ts). A UKI's entry (Secure Boot) names it
 * too: the command line baked into the UKI is the only one its kernel gets.
 */
export function slotEntry(
  slot: string,
  opts: {
    microcode: boolean;
    append: string;
    menuLabel?: string;
    label?: string;
    uki?: boolean;
    layers?: readonly { sha256: string }[] | undefined;
  },
): SyslinuxEntry {
  if (opts.uki)
    // Secure Boot: the signed UKI holds kernel, initrds and this command line (baked in).
    return {
      label: opts.label ?? slot,
      ...(opts.menuLabel !== undefined ? { menuLabel: opts.menuLabel } : {}),
      kernel: `/${slot}/${SLOT_FILES.uki}`,
      initrd: [],
      append: namingSlot(slot, opts.append),
    };
  const layered = opts.layers !== undefined && opts.layers.length > 0;
  const initramfs = layered ? opts.layers!.map((l) => `/${layerPath(l.sha256)}`) : [`/${slot}/${SLOT_FILES.initramfs}`];
  return {
    label: opts.label ?? slot,
    ...(opts.menuLabel !== undefined ? { menuLabel: opts.menuLabel } : {}),
    kernel: `/${slot}/${SLOT_FILES.kernel}`,
    initrd: [...(opts.microcode ? [`/${slot}/${SLOT_FILES.microcode}`] : []), ...initramfs],
    append: layered ? namingSlot(slot, opts.append) : opts.append,
  };
}

/**
 * A command line that names the slot it boots (`ramroot.slot=`), for an entry no boot loader mark
 * names it in: a layered slot's, a UKI's. The UKIs signed for a slot bake in this same line.
 */
export function namingSlot(slot: string, append: string): string {
  return `${append} ${SLOT_PARAMETER}=${slot}`.trim();
}

/** The slot directory a boot path points into ("/a/vmlinuz" -> "a"), resolved against the config's directory. */
export function slotOfBootPath(bootPath: string, configPath: string): string | undefined {
  const configDir = path.posix.dirname(configPath);
  const abs = bootPath.startsWith("/") ? bootPath : path.posix.join("/", configDir === "." ? "" : configDir, bootPath);
  const parts = path.posix
    .normalize(abs)
    .split("/")
    .filter((p) => p !== "");
  return parts.length >= 2 ? parts[0]?.toLowerCase() : undefined;
}

/** The slot the entry `label` boots (its kernel's directory), or undefined when no entry has that label. */
export function slotOfLabel(config: { path: string; spec: SyslinuxConfigSpec }, label: string): string | undefined {
  const entry = entryByLabel(config.spec, label);
  return entry ? slotOfBootPath(entry.kernel, config.path) : undefined;
}

/** The slot syslinux boots by DEFAULT. */
export function defaultSlotOf(config: { path: string; spec: SyslinuxConfigSpec }): string | undefined {
  return slotOfLabel(config, config.spec.defaultLabel);
}

/** The slot the machine running from the target booted, from its kernel command line (ssh targets; booted-slot.ts). */
export async function runningSlotOf(target: BootTarget): Promise<string | undefined> {
  const cmdline = await target.runningCmdline();
  if (cmdline === undefined) return undefined;
  return bootedSlotOf(cmdline);
}

/** The path on the target (from the partition root) of a path in a boot entry. */
function targetPathOfBootPath(bootPath: string, configPath: string): string {
  const configDir = path.posix.dirname(configPath);
  const abs = bootPath.startsWith("/") ? bootPath : path.posix.join("/", configDir === "." ? "" : configDir, bootPath);
  return path.posix.normalize(abs).replace(/^\/+/, "");
}

/**
 * Why the entry `label` would not boot what its slot holds, or undefined when it would: every
 * kernel and initrd file must exist, a file in a slot with a manifest must hash as the manifest
 * records, and an entry whose command line names `ramroot.image=` must point at a slot holding
 * that image (another deploy may have rewritten the slot since this one planned). Checked before
 * a config that boots the label (DEFAULT or once) is written, so a boot partition never gets a
 * DEFAULT it cannot boot.
 */
export async function labelBootProblem(
  target: BootTarget,
  spec: SyslinuxConfigSpec,
  label: string,
  configPath: string,
): Promise<string | undefined> {
  const entry = entryByLabel(spec, label);
  if (!entry) return `no entry is labelled ${JSON.stringify(label)}`;
  const slots = new Map<string, SlotState | undefined>();
  const slotState = async (slot: string) => {
    if (!slots.has(slot)) slots.set(slot, await readSlot(target, slot).catch(() => undefined));
    return slots.get(slot);
  };
  const kernelSlot = slotOfBootPath(entry.kernel, configPath);
  for (const bootPath of [entry.kernel, ...entry.initrd]) {
    const rel = targetPathOfBootPath(bootPath, configPath);
    const slot = slotOfBootPath(bootPath, configPath);
    if (slot === LAYER_DIR) {
      // A layer is the kernel's slot's: named by its manifest, and every layer of it hashing as recorded.
      const state = kernelSlot !== undefined ? await slotState(kernelSlot) : undefined;
      const layers = state?.manifest?.layers;
      if (layers === undefined) {
        if ((await target.sha256(rel)) === undefined)
          return `entry ${entry.label}: ${bootPath} does not exist on ${target.describe()}`;
        continue;
      }
      if (!layers.some((l) => l.path.toLowerCase() === rel.toLowerCase()))
        return `entry ${entry.label}: ${bootPath} is no layer of slot ${kernelSlot}'s manifest`;
      if (state?.layersProblem !== undefined) return `entry ${entry.label}: slot ${kernelSlot}: ${state.layersProblem}`;
      continue;
    }
    const state = slot !== undefined && slotName.safeParse(slot).success ? await slotState(slot) : undefined;
    const role = (Object.keys(SLOT_FILES) as SlotFileRole[]).find(
      (r) => state?.files[r]?.path === rel || state?.manifest?.files[r]?.path === rel,
    );
    if (state?.manifest && role !== undefined) {
      const recorded = state.manifest.files[role]?.sha256;
      const now = state.files[role]?.sha256;
      if (now === undefined) return `entry ${entry.label}: ${bootPath} does not exist on ${target.describe()}`;
      if (recorded !== now)
        return `entry ${entry.label}: ${bootPath} hashes to ${now.slice(0, 12)}, but slot ${slot}'s manifest records ${recorded?.slice(0, 12) ?? "nothing"}`;
      continue;
    }
    if ((await target.sha256(rel)) === undefined)
      return `entry ${entry.label}: ${bootPath} does not exist on ${target.describe()}`;
  }
  const wanted = /(?:^|\s)ramroot\.image=(\S+)/.exec(entry.append)?.[1];
  const slot = slotOfBootPath(entry.kernel, configPath);
  if (wanted !== undefined && slot !== undefined) {
    const held = (await slotState(slot))?.manifest?.imageId;
    if (held !== wanted) {
      return `entry ${entry.label} is for image ${wanted.slice(0, 12)}, but slot ${slot} holds ${held ? `image ${held.slice(0, 12)}` : "no ramroot image"} (written by another deploy since this one planned?)`;
    }
  }
  return undefined;
}

/** Throws unless `label` boots what its slot holds (see labelBootProblem). */
export async function assertLabelBootable(
  target: BootTarget,
  spec: SyslinuxConfigSpec,
  label: string,
  configPath: string,
): Promise<void> {
  const problem = await labelBootProblem(target, spec, label, configPath);
  if (problem)
    throw new TargetError(
      `${target.describe()}: refusing to make ${JSON.stringify(label)} bootable: ${problem}; nothing was written`,
    );
}

function slotPath(slot: string, name: string): string {
  return `${slot}/${name}`;
}

/**
 * Copies kernel, initramfs and microcode into `<slot>/` and writes the manifest. With `layers`,
 * the initramfs is not copied whole: its layers go into the layer store first (those the
 * partition lacks; each complete and hashed before the manifest names it), and the manifest
 * records them. Every file is staged under `<name>.new` (temp name, fsync, rename, read back and
 * compared by sha256), and only when all are staged are they renamed over the old ones; the
 * manifest goes last, then the layers no slot's manifest names are collected. A copy that fails
 * or is killed leaves the slot's previous files and layers as they were. It does not ask whether
 * the slot may be written: callers go through provider/deploy/slot-guard.ts.
 */
export async function writeSlot(target: BootTarget, input: WriteSlotOptions): Promise<SlotState> {
  const { onProgress, beforeCommit, ...rest } = input;
  const opts = parseInput(writeSchema, rest, "slot write");
  const all = (Object.keys(SLOT_FILES) as SlotFileRole[]).filter((role) => opts.files[role] !== undefined);
  for (const role of all) {
    const file = opts.files[role] as string;
    if (!fs.existsSync(file))
      throw new FieldError(`files.${role}`, `got ${JSON.stringify(file)}; the file does not exist`);
  }
  // Leftovers of an interrupted write are not part of the slot.
  const before = await target.list(opts.slot);
  for (const name of before) {
    if (name.endsWith(STAGED) || isTempName(name)) await target.remove(slotPath(opts.slot, name));
  }
  const records: Partial<Record<SlotFileRole, SlotFileRecord>> = {};
  let layers: LayerRecord[] | undefined;
  if (opts.layers !== undefined) {
    const put = await putLayersOf(target, opts.files.initramfs, opts.layers, (done, total) =>
      onProgress?.("initramfs", done, total),
    );
    layers = put.records;
    records.initramfs = {
      path: layers.map((l) => l.path).join(","),
      sha256: put.sha256,
      size: (await fs.promises.stat(opts.files.initramfs)).size,
    };
  }
  // The files copied into the slot directory: a layered slot's initramfs is in the store.
  const roles = all.filter((role) => !(role === "initramfs" && layers !== undefined));
  // A file the slot holds already (the kernel of the image it held before, say) is kept, not sent again.
  const held = await hashFiles(
    target,
    roles.map((role) => slotPath(opts.slot, SLOT_FILES[role])),
  );
  const staged: SlotFileRole[] = [];
  for (const [i, role] of roles.entries()) {
    const local = opts.files[role] as string;
    const finalPath = slotPath(opts.slot, SLOT_FILES[role]);
    const size = (await fs.promises.stat(local)).size;
    if (held[i] !== undefined && held[i] === (await sha256File(local))) {
      records[role] = { path: finalPath, sha256: held[i], size };
      continue;
    }
    const sha256 = await target.copyInAtomic(`${finalPath}${STAGED}`, local, (done, total) =>
      onProgress?.(role, done, total),
    );
    records[role] = { path: finalPath, sha256, size };
    staged.push(role);
  }
  // All staged and verified: move them in, then check each under its final name (one look).
  await beforeCommit?.();
  for (const role of staged) {
    const record = records[role] as SlotFileRecord;
    await target.rename(`${record.path}${STAGED}`, record.path);
  }
  // A kept file was hashed under its final name just above; what was renamed in is hashed again.
  const now = await hashFiles(
    target,
    staged.map((role) => (records[role] as SlotFileRecord).path),
  );
  for (const [i, role] of staged.entries()) {
    const record = records[role] as SlotFileRecord;
    if (now[i] !== record.sha256)
      throw new TargetError(
        `${target.describe()}: ${record.path} hashes to ${now[i] ?? "(missing)"} after the rename, expected ${record.sha256}`,
      );
  }
  // What the slot held and this write does not (a whole initramfs where layers go now): removed.
  const had = new Set(before.map((n) => n.toLowerCase()));
  for (const role of Object.keys(SLOT_FILES) as SlotFileRole[]) {
    if (!roles.includes(role) && had.has(SLOT_FILES[role])) await target.remove(slotPath(opts.slot, SLOT_FILES[role]));
  }
  const manifest: SlotManifest = {
    slot: opts.slot,
    imageId: opts.manifest.imageId,
    planId: opts.manifest.planId,
    ...(opts.manifest.lockSummary ? { lockSummary: opts.manifest.lockSummary } : {}),
    when: opts.manifest.when ?? new Date().toISOString(),
    files: records,
    ...(layers ? { layers } : {}),
  };
  await target.writeFileAtomic(slotPath(opts.slot, SLOT_MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  const state = await readSlot(target, opts.slot);
  if (!state?.consistent)
    throw new TargetError(`${target.describe()}: slot ${opts.slot} does not read back as written`);
  await collectUnnamedLayers(target);
  return state;
}

/** putLayers with a local scratch directory for the slices, removed after. */
async function putLayersOf(
  target: BootTarget,
  initramfs: string,
  layers: readonly LayerSpec[],
  onProgress: (done: number, total: number) => void,
): Promise<{ records: LayerRecord[]; sent: number; sha256: string }> {
  // Removed on every exit path; a killed process's is swept by the next open (scratch-dir.ts).
  const scratch = await openScratchDir("ramroot-layers-");
  try {
    return await putLayers(target, initramfs, layers, scratch.dir, onProgress);
  } finally {
    scratch.drop();
  }
}

/**
 * Removes the layers in the store that no slot's manifest on the partition names. A manifest
 * that cannot be read might name any layer: then nothing is removed. A pin or a journal entry
 * only ever needs an image that is in a slot, or that the image cache writes again.
 */
export async function collectUnnamedLayers(target: BootTarget): Promise<string[]> {
  const stored = await target.list(LAYER_DIR);
  if (stored.length === 0) return [];
  const needed: LayerRecord[] = [];
  for (const name of await target.list("")) {
    if (name === LAYER_DIR || !slotName.safeParse(name).success) continue;
    let raw: Buffer | undefined;
    try {
      raw = await target.readFile(slotPath(name, SLOT_MANIFEST));
    } catch {
      raw = undefined;
    }
    if (raw === undefined) continue;
    try {
      needed.push(...((JSON.parse(raw.toString("utf8")) as SlotManifest).layers ?? []));
    } catch {
      return [];
    }
  }
  return collectLayers(target, needed);
}

/** What a slot holds now: the stored manifest and every file re-hashed, so hand edits show. */
export async function readSlot(target: BootTarget, slot: string): Promise<SlotState | undefined> {
  parseInput(slotName, slot, "slot name");
  const names = await target.list(slot);
  if (names.length === 0) return undefined;
  let manifest: SlotManifest | undefined;
  const raw = await target.readFile(slotPath(slot, SLOT_MANIFEST));
  if (raw !== undefined) {
    try {
      manifest = JSON.parse(raw.toString("utf8")) as SlotManifest;
    } catch {
      manifest = undefined;
    }
  }
  const files: SlotState["files"] = {};
  const layered = manifest?.layers !== undefined && manifest.layers.length > 0;
  const present = (Object.keys(SLOT_FILES) as SlotFileRole[]).filter(
    (role) => names.includes(SLOT_FILES[role]) && !(layered && role === "initramfs"),
  );
  const layers = layered ? (manifest?.layers ?? []) : [];
  // The slot's files and the layers this operation has not hashed yet, in one look (one round trip over ssh).
  const { files: hashes, layers: layerNow } = await hashWithLayers(
    target,
    present.map((role) => slotPath(slot, SLOT_FILES[role])),
    layers.map((l) => l.path),
  );
  present.forEach((role, i) => {
    const sha256 = hashes[i];
    if (sha256 !== undefined) files[role] = { path: slotPath(slot, SLOT_FILES[role]), sha256 };
  });
  // A layered slot's initramfs is its layers: there when every one hashes as recorded.
  const problem = layered ? layerHashesProblem(target, layers, layerNow) : undefined;
  const whole = manifest?.files?.initramfs;
  if (layered && problem === undefined && whole !== undefined)
    files.initramfs = { path: whole.path, sha256: whole.sha256 };
  const consistent =
    manifest !== undefined &&
    (Object.keys(SLOT_FILES) as SlotFileRole[]).every(
      (role) => (manifest.files?.[role]?.sha256 ?? undefined) === files[role]?.sha256,
    );
  return {
    slot,
    ...(manifest ? { manifest } : {}),
    files,
    consistent,
    ...(problem !== undefined ? { layersProblem: problem } : {}),
  };
}
