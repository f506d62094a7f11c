import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { imageConfigSchema, type ImageConfig } from "../image/image-config";
import type { ImagePlan, ResolvedPlan } from "../image/plan";
import { planImageOnce } from "../image/plan-memo";
import { buildImage, cachedImage, defaultImageCacheDir, type Artifact } from "../image/build";
import { forgetStateReference } from "../image/cache-prune";
import { archiveCheckEnabled } from "../image/archive-check";
import { imageChangeSummary } from "../image/image-summary";
import { checkInputs } from "./check-inputs";
import { ConflictError, FieldError, InputError } from "../ramroot-error";
import { diffProperties } from "./property-diff";
import type { CheckOutcome, OperationContext, ResourceHandler } from "./resource-handler";

import { ALPINE_IMAGE_TOKEN } from "./tokens";
import { RamrootError } from "../ramroot-error";

const summary = z.record(z.string(), z.string());

/** Inputs for the package schema: the image config plus the plan `check` adds. */
export const alpineImageInputsSchema = imageConfigSchema.in.extend({
  planId: z.string().optional().describe("computed by check: the plan's hash, naming the image before it is built"),
  lock: summary.optional().describe("computed by check: package -> locked version"),
  overlayFiles: summary.optional().describe("computed by check: overlay path -> type, mode, sha256 prefix"),
  trustedKeys: summary.optional().describe("computed by check: trusted key file -> sha256 prefix"),
});

const artifactSchema = z.object({
  path: z.string().describe("the file in the local image cache"),
  sha256: z.string(),
  size: z.number(),
});

export const alpineImageOutputsSchema = z.object({
  imageId: z.string().optional().describe("sha256 over the artifacts"),
  artifacts: z
    .object({
      kernel: artifactSchema.optional(),
      initramfs: artifactSchema,
      microcode: artifactSchema.optional(),
      uki: artifactSchema.optional(),
    })
    .optional()
    .describe("kernel, initramfs, microcode and (uki: true) the Unified Kernel Image in the local image cache"),
  sbomPath: z.string().optional().describe("SPDX 2.3 JSON of every package"),
  archiveSize: z.number().optional().describe("uncompressed archive bytes"),
});

/**
 * The inputs as checked: the image config, plus the plan computed from it during `check`, so
 * `pulumi preview` shows package versions and overlay files before anything is built.
 */
export type AlpineImageInputs = ImageConfig & {
  planId: string;
  /** package name -> locked version */
  lock: Record<string, string>;
  /** overlay path -> "file 644 <sha256 prefix>" */
  overlayFiles: Record<string, string>;
  /** trusted key file -> sha256 prefix (they land in /etc/apk/keys) */
  trustedKeys: Record<string, string>;
};

export interface ImageArtifactFiles {
  kernel?: Artifact;
  initramfs: Artifact;
  microcode?: Artifact;
  uki?: Artifact;
}

export type AlpineImageOutputs = AlpineImageInputs & {
  /** unknown in a preview that would build */
  imageId?: string;
  artifacts?: ImageArtifactFiles;
  sbomPath?: string;
  archiveSize?: number;
};

/**
 * Where a planning failure belongs, so the preview names the property to fix: the property the
 * error carries (a field's own error, a trust error's keys, a repository's), else the
 * repositories, which is what planning reads beyond the config's fields.
 */
export function propertyOf(err: unknown): string {
  return err instanceof RamrootError && err.property !== undefined ? err.property : "repositories";
}

function shortSummary(summary: Record<string, string>): Record<string, string> {
  // "file 644 <64 hex>" -> "file 644 <12 hex>": enough to see a change, short enough to read.
  return Object.fromEntries(
    Object.entries(summary).map(([p, s]) => [p, s.replace(/([0-9a-f]{12})[0-9a-f]{52}$/, "$1")]),
  );
}

async function plan(config: ImageConfig, ctx?: OperationContext): Promise<ResolvedPlan> {
  // Once per operation: the AbSystem component, check and create share one plan.
  return planImageOnce(config, { baseDir: process.cwd(), onProgress: ctx ? (m) => ctx.log(m) : undefined });
}

/** Checks the config, then plans it: an unknown package, a malformed version, a missing overlay or a wrong key stop the preview here. */
export async function checkAlpineImage(news: unknown): Promise<CheckOutcome<AlpineImageInputs>> {
  const { planId: _p, lock: _l, overlayFiles: _o, trustedKeys: _k, ...raw } = (news ?? {}) as Record<string, unknown>;
  const checked = checkInputs(imageConfigSchema, raw);
  if (!checked.ok) return checked;
  try {
    const resolved = await plan(checked.inputs);
    return {
      ok: true,
      inputs: {
        ...checked.inputs,
        planId: resolved.plan.planId,
        lock: resolved.plan.packages,
        overlayFiles: shortSummary(resolved.plan.overlay),
        trustedKeys: Object.fromEntries(
          Object.entries(resolved.plan.options.keys).map(([k, v]) => [k, v.slice(0, 12)]),
        ),
      },
    };
  } catch (err) {
    // A field the plan checks (secureBoot's key and certificate): its own failures, by field.
    if (err instanceof InputError) return { ok: false, failures: [...err.failures] };
    const message = (err as Error).message;
    const property = propertyOf(err);
    return {
      ok: false,
      failures: [{ property, reason: message.startsWith(`${property}:`) ? message : `${property}: ${message}` }],
    };
  }
}

function inputsOf(outs: AlpineImageOutputs): Partial<AlpineImageInputs> {
  const { imageId: _i, artifacts: _f, sbomPath: _s, archiveSize: _a, ...inputs } = outs;
  return inputs;
}

/** The image config inside the checked inputs (without the plan check added). */
function configOf(inputs: AlpineImageInputs): ImageConfig {
  const { planId: _p, lock: _l, overlayFiles: _o, trustedKeys: _k, ...config } = inputs;
  return config;
}

/**
 * What the build changed inside the image, kept in the update's output (a note, not progress).
 * With RAMROOT_CHECK_ARCHIVES=1 (the test suite) an image that cannot be read back fails the
 * update, and the note says how many archives the build read back as packed.
 */
async function logImageChange(
  ctx: OperationContext,
  after: string,
  before: string | undefined,
  checkedArchives: number,
): Promise<void> {
  const checking = archiveCheckEnabled();
  let summary: string;
  try {
    summary = await imageChangeSummary(after, before);
  } catch (err) {
    if (checking) throw err;
    ctx.log(`the new image could not be read back to list what changed: ${(err as Error).message}`, "warning");
    return;
  }
  const checked =
    checking && checkedArchives > 0
      ? `\n${checkedArchives} archive${checkedArchives === 1 ? "" : "s"} read back through cpio-stream, as packed`
      : "";
  ctx.log(summary + checked, "note");
}

async function build(
  inputs: AlpineImageInputs,
  ctx: OperationContext,
  previous?: AlpineImageOutputs,
): Promise<AlpineImageOutputs> {
  if (ctx.preview) {
    // The plan is known; the image is not built in a preview, so imageId stays unknown.
    return { ...inputs };
  }
  const resolved = await plan(configOf(inputs), ctx);
  if (resolved.plan.planId !== inputs.planId) {
    throw new ConflictError(
      `the plan changed between preview and update (repositories moved on?): planned ${inputs.planId.slice(0, 12)}, now ${resolved.plan.planId.slice(0, 12)}; run the update again`,
    );
  }
  // The state will name this image: the cache's pruning keeps it while it does (cache-prune.ts).
  let packed = 0;
  const image = await buildImage(resolved, {
    onProgress: (m) => ctx.log(m),
    stateRef: ctx.urn,
    onPacked: () => void packed++,
  });
  for (const w of image.warnings) ctx.log(w, "warning");
  await logImageChange(ctx, image.initramfs.path, previous?.artifacts?.initramfs?.path, packed);
  return {
    ...inputs,
    imageId: image.imageId,
    artifacts: {
      ...(image.kernel ? { kernel: image.kernel } : {}),
      initramfs: image.initramfs,
      ...(image.microcode ? { microcode: image.microcode } : {}),
      ...(image.uki ? { uki: image.uki } : {}),
    },
    sbomPath: image.sbom.path,
    archiveSize: image.archiveSize,
  };
}

/** A built image in the local, content-addressed cache. */
export const alpineImageHandler: ResourceHandler<AlpineImageInputs, AlpineImageOutputs> = {
  token: ALPINE_IMAGE_TOKEN,

  check: checkAlpineImage,

  async diff(_id, olds, news) {
    // The plan id hashes everything the image is made of (lock, overlay digest, options): the
    // same plan is the same image, however its inputs are spelled (an overlay moved, an import).
    if (olds.planId !== undefined && olds.planId === news.planId && olds.imageId !== undefined) return { changes: {} };
    return { changes: diffProperties(inputsOf(olds), news) };
  },

  async create(inputs, ctx) {
    const outs = await build(inputs, ctx);
    return { id: inputs.planId, outs };
  },

  /**
   * Refresh: the image is still what the state says when its cached artifacts still hash as
   * recorded. Import (no state yet): the id is a planId whose build is in the local image cache.
   */
  async read(id, olds) {
    if (olds.planId === undefined) return importFromCache(id);
    if (!olds.artifacts) return undefined;
    const cached = await cachedImage({ planId: olds.planId }, cacheDirOf(olds));
    if (!cached || cached.imageId !== olds.imageId) return undefined;
    return { outs: olds, inputs: inputsOf(olds) as AlpineImageInputs };
  },

  async update(_id, olds, news, ctx) {
    return build(news, ctx, olds);
  },

  /**
   * The cache is shared by every stack and keyed by content: deleting the resource leaves the
   * image, no longer held for this resource (the cache's pruning may remove it in time).
   */
  async delete(_id, olds, ctx) {
    forgetStateReference(cacheDirOf(olds) ?? defaultImageCacheDir(), ctx.urn);
  },
};

/** An image built on this machine, adopted by its planId: inputs as far as its stored plan tells them. */
async function importFromCache(planId: string): Promise<{ outs: AlpineImageOutputs; inputs: AlpineImageInputs }> {
  const cacheDir = defaultImageCacheDir();
  if (!/^[0-9a-f]{64}$/.test(planId)) {
    throw new FieldError(
      "id",
      `got ${JSON.stringify(planId)}; an AlpineImage is imported by its planId (64 hex digits), as \`ramroot build --plan-only\` or the stack's planId output prints it`,
    );
  }
  const cached = await cachedImage({ planId }, cacheDir);
  const planFile = path.join(cacheDir, planId, "plan.json");
  if (!cached || !fs.existsSync(planFile)) {
    throw new FieldError(
      "id",
      `image plan ${planId.slice(0, 12)} is not in the local image cache (${cacheDir}), or its files no longer hash as built; build it with \`pulumi up\` (same config, same plan) instead of importing it`,
    );
  }
  const plan = JSON.parse(fs.readFileSync(planFile, "utf8")) as ImagePlan;
  const o = plan.options;
  if (o.secureBoot)
    throw new FieldError(
      "id",
      `image plan ${planId.slice(0, 12)} signs its UKI for Secure Boot (certificate ${o.secureBoot.certificate.slice(0, 12)}), and an import cannot restore the key (it is never stored); declare the image with its secureBoot inputs and run \`pulumi up\`: the same plan comes from the cache`,
    );
  const inputs: AlpineImageInputs = {
    release: o.release,
    arch: o.arch as AlpineImageInputs["arch"],
    repositories: o.repositories,
    keys: Object.keys(o.keys),
    allowUntrusted: false,
    allowScriptFailures: false,
    allowDowngrade: false,
    packages: plan.world,
    files: [],
    kernel: o.kernel as AlpineImageInputs["kernel"],
    ...(o.firmware !== null ? { firmware: o.firmware } : {}),
    microcode: o.microcode as AlpineImageInputs["microcode"],
    services: o.services,
    ...(o.hostname !== null ? { hostname: o.hostname } : {}),
    cmdline: o.cmdline,
    uki: o.uki === true,
    compression: o.compression as AlpineImageInputs["compression"],
    epoch: o.epoch,
    planId,
    lock: plan.packages,
    overlayFiles: shortSummary(plan.overlay),
    trustedKeys: Object.fromEntries(Object.entries(o.keys).map(([k, v]) => [k, v.slice(0, 12)])),
  };
  return {
    inputs,
    outs: {
      ...inputs,
      imageId: cached.imageId,
      artifacts: {
        ...(cached.kernel ? { kernel: cached.kernel } : {}),
        initramfs: cached.initramfs,
        ...(cached.microcode ? { microcode: cached.microcode } : {}),
        ...(cached.uki ? { uki: cached.uki } : {}),
      },
      sbomPath: cached.sbom.path,
      archiveSize: cached.archiveSize,
    },
  };
}

function cacheDirOf(outs: AlpineImageOutputs): string | undefined {
  // <cache>/<planId>/initramfs.gz -> <cache>
  const dir = (outs.artifacts?.initramfs.path ?? "").split("/").slice(0, -2).join("/");
  return fs.existsSync(dir) ? dir : undefined;
}
