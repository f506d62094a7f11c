/**
 * What one A/B deployment will do, computed on the provider's side before any resource is
 * declared: the target is read (DEFAULT, once, each slot's manifest re-hashed), the config's
 * image is planned (once per operation), a pin is honoured, and the decision is taken. The
 * AbSystem component declares its resources from this plan and nothing else.
 */
import { inspectTarget, type TargetState } from "../boot/inspect";
import type { JournalEntry } from "../boot/journal";
import type { LeaseRecord } from "../boot/lease";
import type { SlotState } from "../boot/slot";
import type { TargetSpec } from "../boot/target-spec";
import { cachedImage, recordedLayersOf, type Artifact, type ImageArtifacts } from "../image/build";
import type { ImageConfig } from "../image/image-config";
import { planImageOnce } from "../image/plan-memo";
import { decide, slotHolding, type AbDecision, type SlotPair } from "./ab-decision";
import type { Pin } from "./ab-system-inputs";
import { ConflictError } from "../ramroot-error";

export interface ImageFiles {
  kernel?: Artifact;
  initramfs: Artifact;
  microcode?: Artifact;
  /** the image as a UKI (image uki: true): what a Secure Boot slot's signed UKIs are made from */
  uki?: Artifact;
}

/** One image, described the same way wherever it comes from (a build, the cache, a slot). */
export interface DeployedImage {
  imageId: string;
  planId: string;
  /** package -> version */
  packages: Record<string, string>;
  /** the local files, when the image cache holds them */
  artifacts?: ImageFiles;
}

/** A slot declared as it is: its manifest's image and file hashes; `from` when it is rewritten from the cache. */
export interface KeptSlot {
  slot: string;
  imageId: string;
  planId: string;
  packages?: Record<string, string>;
  files: { kernel: string; initramfs: string; microcode?: string; uki?: string; trialUki?: string };
  microcode: boolean;
  /** a layered slot's layers, in order: its entry loads them (from the image it is rewritten from, or its manifest) */
  layers?: { sha256: string }[];
  /** damaged, not booted now, and its image is in the cache: rewrite it from there */
  from?: ImageFiles;
  /**
   * the slot boots signed UKIs (Secure Boot): `files` names them, or, with `from`, they are
   * made again from `from.uki` with the program's key, as for a written slot
   */
  signed: boolean;
}

export interface DeploymentPlan {
  slots: SlotPair;
  /** the target as `ramroot status` names it */
  target: string;
  /** the config's image before it is built: its plan id and package versions */
  config: { planId: string; packages: Record<string, string> };
  decision: AbDecision;
  /** the slots that keep what they hold */
  kept: KeptSlot[];
  /** the pin that holds the stack, and the image it keeps */
  pinned?: { pin: Pin; image: DeployedImage };
  /** what the written slot receives when it is not the config's build: a cached image (a pin) */
  writeFromCache?: DeployedImage & { artifacts: ImageFiles };
  /** DEFAULT will boot the config's image (so the boot test gates the switch) */
  activeIsConfig: boolean;
  /** the image DEFAULT will boot when it is not the config's: a pinned one, or the current one (a failed trial not retried) */
  activeImage?: DeployedImage;
  /** what DEFAULT boots before this update: what it still boots when a trial of the new slot fails */
  current?: { slot: string; image: DeployedImage };
  /** the last switch of DEFAULT the target's journal records (the gates it ran under) */
  lastSwitch?: JournalEntry;
  /** notes for the preview, e.g. a damaged slot that cannot be repaired */
  notes: string[];
  /** a live lease another deploy holds on the target: what was read may change under this plan */
  lease?: LeaseRecord;
}

export interface DeploymentInput {
  target: TargetSpec;
  slots: SlotPair;
  /** the image config, paths absolute */
  image: ImageConfig;
  pin?: Pin;
  /** the program gives a Secure Boot key (AbSystem secureBoot): a damaged signed slot can be signed again */
  signsSlots?: boolean;
  /** try an image again in a slot where its trial failed (RAMROOT_RETRY_TRIAL=1) */
  retryFailedTrial?: boolean;
  /** what relative paths are relative to (the project directory) */
  baseDir: string;
  onProgress?: (message: string) => void;
}

function filesOf(a: ImageArtifacts): ImageFiles {
  return {
    ...(a.kernel ? { kernel: a.kernel } : {}),
    initramfs: a.initramfs,
    ...(a.microcode ? { microcode: a.microcode } : {}),
    ...(a.uki ? { uki: a.uki } : {}),
  };
}

function imageFromCache(a: ImageArtifacts): DeployedImage & { artifacts: ImageFiles } {
  return { imageId: a.imageId, planId: a.planId, packages: a.packages, artifacts: filesOf(a) };
}

function shas(state: SlotState): KeptSlot["files"] {
  return {
    kernel: state.files.kernel?.sha256 ?? "",
    initramfs: state.files.initramfs?.sha256 ?? "",
    ...(state.files.microcode ? { microcode: state.files.microcode.sha256 } : {}),
    ...(state.files.uki ? { uki: state.files.uki.sha256 } : {}),
    ...(state.files.trialUki ? { trialUki: state.files.trialUki.sha256 } : {}),
  };
}

const short = (id: string) => id.slice(0, 12);

const layersOf = (layers: { sha256: string }[] | undefined) =>
  layers !== undefined && layers.length > 0 ? { layers: layers.map((l) => ({ sha256: l.sha256 })) } : {};

/** The pinned image: from the slot that holds it (artifacts too when cached), else from the image cache. */
async function pinnedImage(pin: Pin, state: TargetState, slots: SlotPair): Promise<DeployedImage> {
  const cached = await cachedImage({ planId: pin.planId });
  if (cached) return imageFromCache(cached);
  const holder = slotHolding(state, slots, pin.planId);
  const manifest = holder ? state.slots[holder]?.manifest : undefined;
  if (manifest) return { imageId: manifest.imageId, planId: manifest.planId, packages: manifest.lockSummary ?? {} };
  throw new ConflictError(
    `ramroot:pin: image ${short(pin.imageId ?? pin.planId)} (plan ${short(pin.planId)}) that update ${pin.update} deployed is in no slot of ${state.description} and not in the local image cache; ` +
      "check out that update's commit and run `pulumi up` without the pin to rebuild it (same plan, same bytes), or `ramroot release` to deploy the config's image",
  );
}

/** Reads the target, plans the config's image and decides; nothing is written. */
export async function planDeployment(input: DeploymentInput): Promise<DeploymentPlan> {
  const [state, resolved] = await Promise.all([
    inspectTarget(input.target, [...input.slots], { requireBootPartition: true }),
    planImageOnce(input.image, {
      baseDir: input.baseDir,
      ...(input.onProgress ? { onProgress: input.onProgress } : {}),
    }),
  ]);
  const config = { planId: resolved.plan.planId, packages: resolved.plan.packages };
  const pinned = input.pin ? { pin: input.pin, image: await pinnedImage(input.pin, state, input.slots) } : undefined;
  const wanted = pinned ? pinned.image.planId : config.planId;
  const decision = decide(state, input.slots, wanted, { retryFailedTrial: input.retryFailedTrial === true });
  const notes: string[] = [...decision.notes];

  const kept: KeptSlot[] = [];
  for (const slot of decision.keep) {
    const held = state.slots[slot]!;
    const manifest = held.manifest!;
    let from: ImageFiles | undefined;
    const signed = manifest.files.uki !== undefined;
    if (decision.repair.includes(slot) && signed && input.signsSlots !== true)
      // Its UKIs are signed with the key, which only the program gives: a copy without them
      // would leave an entry Secure Boot refuses. Said, not done.
      notes.push(
        `slot ${slot}: its files no longer match its manifest, and it holds Secure Boot UKIs, which only the secureBoot key can sign again: it is not rewritten; give secureBoot to rewrite it from the image cache`,
      );
    else if (decision.repair.includes(slot)) {
      const cached = await cachedImage({ planId: manifest.planId });
      // A signed slot's UKIs are made from the image's UKI: a cached image without one cannot repair it.
      if (cached && cached.imageId === manifest.imageId && (!signed || cached.uki)) from = filesOf(cached);
      else
        notes.push(
          `slot ${slot}: its files no longer match its manifest and image ${short(manifest.imageId)} is not in the local image cache to rewrite it`,
        );
    }
    kept.push({
      slot,
      imageId: manifest.imageId,
      planId: manifest.planId,
      ...(manifest.lockSummary ? { packages: manifest.lockSummary } : {}),
      files: from
        ? {
            kernel: from.kernel?.sha256 ?? "",
            initramfs: from.initramfs.sha256,
            ...(from.microcode ? { microcode: from.microcode.sha256 } : {}),
          }
        : shas(held),
      microcode: from ? from.microcode !== undefined : held.files.microcode !== undefined,
      ...layersOf(from ? recordedLayersOf(from.initramfs.path) : manifest.layers),
      ...(from ? { from } : {}),
      signed,
    });
  }

  const currentSlot = state.defaultSlot && input.slots.includes(state.defaultSlot) ? state.defaultSlot : undefined;
  const currentManifest = currentSlot ? state.slots[currentSlot]?.manifest : undefined;
  let current: DeploymentPlan["current"];
  if (currentSlot && currentManifest) {
    const cached = await cachedImage({ planId: currentManifest.planId });
    current = {
      slot: currentSlot,
      image:
        cached && cached.imageId === currentManifest.imageId
          ? imageFromCache(cached)
          : {
              imageId: currentManifest.imageId,
              planId: currentManifest.planId,
              packages: currentManifest.lockSummary ?? {},
            },
    };
  }

  // The active slot gets the wanted image, or holds it, unless a failed trial keeps DEFAULT where it is.
  const activeGetsWanted = decision.write !== undefined || state.slots[decision.active]?.manifest?.planId === wanted;
  const activeIsConfig = activeGetsWanted && wanted === config.planId;
  const activeImage = activeIsConfig ? undefined : activeGetsWanted && pinned ? pinned.image : current?.image;

  let writeFromCache: DeploymentPlan["writeFromCache"];
  if (decision.write && pinned && pinned.image.planId !== config.planId) {
    if (!pinned.image.artifacts)
      throw new ConflictError(
        `ramroot:pin: image ${short(pinned.image.imageId)} must be written to slot ${decision.write} but is not in the local image cache`,
      );
    writeFromCache = { ...pinned.image, artifacts: pinned.image.artifacts };
  }
  return {
    slots: input.slots,
    target: state.description,
    config,
    decision,
    kept,
    ...(pinned ? { pinned } : {}),
    ...(writeFromCache ? { writeFromCache } : {}),
    activeIsConfig,
    ...(activeImage ? { activeImage } : {}),
    ...(current ? { current } : {}),
    ...(state.journal.length > 0 ? { lastSwitch: state.journal[state.journal.length - 1]! } : {}),
    notes,
    ...(state.lease ? { lease: state.lease } : {}),
  };
}
