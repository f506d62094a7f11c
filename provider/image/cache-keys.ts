/**
 * The keys of the image cache's stores, each the hash of what shapes what it stores, from one
 * table (OPTION_SHAPES) that says, for every plan option, what it shapes. An option the plan
 * gains does not compile until it is entered there, and the installed tree's inputs are part of
 * the package layer's key by construction (the layer is packed from the tree), so the two keys
 * cannot disagree about what made them:
 *
 * - installed tree (installed-tree.ts): the "tree" options, and how this build installs
 *   (allowScriptFailures; whether it can give files their owners, as root). Not the lock: a
 *   tree is brought up to the next lock.
 * - package layer: the same, the lock and world installed, and the "archive" options.
 * - overlay layer: the package layer under it, the overlay digest, the "overlay" and "archive" options.
 * - folded layer: the plan id (every option but the boot entry's command line) and how this build installs.
 */
import { sha256Hex } from "../file-hash";
import { canApplyOwnership } from "../apk/root-ownership";
import { BUILDER_FORMAT, canonicalJson, type ImagePlan, type ResolvedPlan } from "./plan";

type PlanOptions = ImagePlan["options"];

/**
 * The files a package layer keeps beside its archive (layers.ts): part of its key, so a layer
 * packed before a file joined the list (the EFI stub and os-release a UKI is made from) is
 * packed again instead of served without it.
 */
export const BESIDE_LAYER = ["vmlinuz", "microcode", "efistub", "os-release"] as const;

/**
 * What a plan option shapes: "tree" the installed packages (and so every layer), "archive" how
 * every layer is packed, "overlay" what the overlay layer adds, "none" nothing a layer holds.
 */
type Shapes = "tree" | "archive" | "overlay" | "none";

export const OPTION_SHAPES = {
  arch: "tree",
  /** written into /etc/apk/repositories */
  repositories: "tree",
  /** written into /etc/apk/keys */
  keys: "tree",
  kernel: "tree",
  microcode: "tree",
  firmware: "tree",
  epoch: "archive",
  compression: "archive",
  compressionLevel: "archive",
  hostname: "overlay",
  services: "overlay",
  /** what the release changes comes in through the repositories (the default ones are the release's) */
  release: "none",
  /** the boot entry's, not the image's */
  cmdline: "none",
  /** the UKI is made from a layer's kept files (BESIDE_LAYER), after the layers */
  uki: "none",
  /** the UKI's signature, made after the layers; only the certificate's hash is here, never the key */
  secureBoot: "none",
} as const satisfies Record<keyof PlanOptions, Shapes>;

/** The options of `shape`, by name. */
function optionsShaping(options: PlanOptions, shape: Shapes): Partial<PlanOptions> {
  const names = (Object.keys(OPTION_SHAPES) as (keyof PlanOptions)[]).filter((k) => OPTION_SHAPES[k] === shape);
  return Object.fromEntries(names.map((k) => [k, options[k]]));
}

/** How this build installs packages, beyond the plan. */
function installSettings(resolved: ResolvedPlan) {
  return { allowScriptFailures: resolved.config.allowScriptFailures ?? false, owners: canApplyOwnership() };
}

/** What an installed tree is made of besides the lock: the package layer's key holds all of it. */
function treeInputs(resolved: ResolvedPlan) {
  return { format: BUILDER_FORMAT, ...optionsShaping(resolved.plan.options, "tree"), ...installSettings(resolved) };
}

export function installedTreeKey(resolved: ResolvedPlan): string {
  return sha256Hex(canonicalJson({ tree: "installed", ...treeInputs(resolved) }));
}

export function packageLayerKey(resolved: ResolvedPlan): string {
  const { plan } = resolved;
  return sha256Hex(
    canonicalJson({
      layer: "packages",
      ...treeInputs(resolved),
      beside: BESIDE_LAYER,
      lock: plan.lock.map((p) => ({ name: p.name, version: p.version, checksum: p.checksum })),
      world: plan.world,
      ...optionsShaping(plan.options, "archive"),
    }),
  );
}

export function overlayLayerKey(resolved: ResolvedPlan, packagesKey: string): string {
  const { plan } = resolved;
  return sha256Hex(
    canonicalJson({
      layer: "overlay",
      format: BUILDER_FORMAT,
      packages: packagesKey,
      overlay: plan.overlayDigest,
      ...optionsShaping(plan.options, "overlay"),
      ...optionsShaping(plan.options, "archive"),
    }),
  );
}

export function foldedLayerKey(resolved: ResolvedPlan): string {
  return sha256Hex(
    canonicalJson({
      layer: "folded",
      format: BUILDER_FORMAT,
      plan: resolved.plan.planId,
      ...installSettings(resolved),
    }),
  );
}
