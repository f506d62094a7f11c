/**
 * The A/B system as a component resource, built on the provider's side (Construct): an image,
 * the two slots of a boot target, an optional boot test, and syslinux pointing at one slot. It
 * declares its children from a deployment plan (provider/deploy/deployment-plan.ts) and holds
 * no decision of its own. Its outputs describe one image: the one DEFAULT boots.
 */
import * as pulumi from "../../components/pulumi-sdk";
import { namingSlot, slotEntry } from "../boot/slot";
import { describeHolder, LeaseHeldError } from "../boot/lease";
import type { SyslinuxEntry } from "../boot/schemes/syslinux/config";
import { imageParameter } from "../machine/image-id";
import { parseAbSystemInputs, type AbSystemInputs } from "../deploy/ab-system-inputs";
import { machinePin } from "../deploy/machine-pins";
import { planDeployment, type DeployedImage, type DeploymentPlan, type ImageFiles } from "../deploy/deployment-plan";
import { planImageOnce } from "../image/plan-memo";
import { recordedLayersOf } from "../image/build";
import type { ComponentHandler, ConstructContext } from "./construct";
import { refuse } from "./component-refusal";
import { checkGates } from "../deploy/gates";
import { checkStackConfig, stackConfigFile } from "../deploy/stack-config";
import { FieldError, InputError } from "../ramroot-error";
import { withTarget } from "../boot/target";
import { assertSchemeOn, schemeOf } from "../boot/schemes/registry";
import { cachedSlotUkis } from "../image/uki-slot";
import { AlpineImage, BootSlot, BootTest, SyslinuxConfig } from "../../components/resources";
import { propertyOf } from "./alpine-image-resource";
import { AB_SYSTEM_TOKEN } from "./tokens";
import { projectDirOr } from "../project-dir";

/** What the component returns to the program (the stack outputs of index.ts). */
export interface AbSystemState {
  activeSlot: pulumi.Output<string>;
  writtenSlot: string | undefined;
  imageId: pulumi.Output<string>;
  planId: pulumi.Output<string>;
  packages: pulumi.Output<Record<string, string>>;
  artifacts: pulumi.Output<ImageFiles | undefined>;
  syslinuxDefault: pulumi.Output<string>;
  /** "update N (image …)" while a rollback pins the stack */
  pinned: string | undefined;
  /** set when this update's trial failed (DEFAULT stayed): what was seen */
  failedTrial: pulumi.Output<string | undefined>;
}

const short = (id: string) => id.slice(0, 12);

type SlotFiles = { kernel: string; initramfs: string; microcode?: string; uki?: string; trialUki?: string };
type SignedUkis = Awaited<ReturnType<typeof cachedSlotUkis>>;

function shasOf(files: ImageFiles | undefined): SlotFiles {
  return {
    kernel: files?.kernel?.sha256 ?? "",
    initramfs: files?.initramfs.sha256 ?? "",
    ...(files?.microcode ? { microcode: files.microcode.sha256 } : {}),
  };
}

function pathsOf(files: ImageFiles | undefined): SlotFiles {
  return {
    kernel: files?.kernel?.path ?? "",
    initramfs: files?.initramfs.path ?? "",
    ...(files?.microcode ? { microcode: files.microcode.path } : {}),
  };
}

/** A boot entry as SyslinuxConfig's input, field by field: only `append` may be a secret. */
interface EntryInputs {
  label: string;
  menuLabel: pulumi.Output<string | undefined>;
  kernel: pulumi.Output<string>;
  initrd: pulumi.Output<string[]>;
  append: pulumi.Output<string>;
}

function entryInputs(
  slot: string,
  entry: pulumi.Output<SyslinuxEntry>,
  keepSecret: (o: pulumi.Output<string>) => pulumi.Output<string>,
): EntryInputs {
  return {
    label: slot,
    menuLabel: entry.apply((e) => e.menuLabel),
    kernel: entry.apply((e) => e.kernel),
    initrd: entry.apply((e) => e.initrd),
    append: keepSecret(entry.apply((e) => e.append)),
  };
}

export class AbSystemComponent extends pulumi.ComponentResource {
  readonly state: AbSystemState;

  constructor(
    name: string,
    inputs: AbSystemInputs,
    plan: DeploymentPlan,
    opts?: pulumi.ComponentResourceOptions,
    secretInputs: ReadonlySet<string> = new Set(),
    warn?: (message: string) => void,
  ) {
    super(AB_SYSTEM_TOKEN, name, {}, opts);
    const parent = { parent: this };
    // A target the program marked secret (an ssh key in it) stays secret in every child.
    const target = secretInputs.has("target") ? pulumi.secret(inputs.target) : inputs.target;
    // So does a secret kernel command line (a token in append): each entry's append and the boot
    // test's carry it as one; labels, kernels and initrds stay plain, so a preview still shows them.
    const keepSecret = <T>(o: pulumi.Output<T>) => (secretInputs.has("append") ? pulumi.secret(o) : o);
    const wipe = inputs.wipeOnDelete !== undefined ? { wipeOnDelete: inputs.wipeOnDelete } : {};
    const { decision } = plan;
    // The Secure Boot key is a secret in the image's state whatever the program marked.
    const sb = inputs.image.secureBoot;
    const imageArgs = sb ? { ...inputs.image, secureBoot: pulumi.secret(sb) } : inputs.image;
    const image = new AlpineImage(`${name}-image`, imageArgs, parent);
    const appendFor = (imageId: string) =>
      [
        "rdinit=/sbin/init",
        inputs.image.cmdline,
        imageParameter(imageId),
        `panic=${inputs.panicSeconds}`,
        inputs.append,
      ]
        .filter((s) => s !== "")
        .join(" ");
    const menuLabel = (imageId: string) => `ramroot ${short(imageId)}`;

    if (plan.pinned) {
      const { pin, image: pinnedImage } = plan.pinned;
      warn?.(
        `pinned to update ${pin.update} (image ${short(pinnedImage.imageId)}) by \`ramroot rollback\`; \`ramroot release ${name}\` lets the config's image deploy again`,
      );
    }
    for (const note of plan.notes) warn?.(note);

    // The boot test follows the config's image (declared on every run, so an unchanged stack
    // previews no change); writing that image, or switching DEFAULT to it, waits for it to pass.
    let test: BootTest | undefined;
    if (inputs.bootTest) {
      const bootTest = inputs.bootTest;
      const a = image.artifacts;
      test = new BootTest(
        `${name}-boot-test`,
        {
          imageId: image.imageId,
          kernel: a.apply((x) => x?.kernel?.path ?? ""),
          initrd: a.apply((x) => [...(x?.microcode ? [x.microcode.path] : []), x?.initramfs.path ?? ""]),
          append: keepSecret(image.imageId.apply((id) => `${appendFor(id)} ${bootTest.append}`.trim())),
          marker: bootTest.marker,
          timeoutSeconds: bootTest.timeoutSeconds,
          ...(inputs.image.arch !== "x86_64" ? { arch: inputs.image.arch } : {}),
        },
        parent,
      );
    }

    const slots: Record<string, BootSlot> = {};
    const entries: EntryInputs[] = [];
    const written: pulumi.Resource[] = [];

    // Secure Boot: a slot's signed UKIs, the entry's command line baked in (made here, where the
    // key is; the slot gets their paths and hashes, and the certificate sbverify checks them with).
    const signer = inputs.secureBoot;
    const signedUkis = (slot: string, imageId: string, a: ImageFiles | undefined): Promise<SignedUkis | undefined> =>
      signer && a?.uki
        ? cachedSlotUkis(a.uki, {
            arch: inputs.image.arch,
            cmdline: namingSlot(slot, appendFor(imageId)),
            signer,
            epoch: inputs.image.epoch,
          })
        : Promise.resolve(undefined);
    const withUkis = (files: SlotFiles, u: SignedUkis | undefined, pick: "sha256" | "path"): SlotFiles =>
      u ? { ...files, uki: u.uki[pick], trialUki: u.trialUki[pick] } : files;
    const certificate = signer ? { certificate: signer.certificate } : {};

    // Slots that keep what they hold are declared as they are, so nothing is copied to them;
    // a damaged one that is not booted now is rewritten from the image cache (a signed one's
    // UKIs signed again with the program's key, as for a written slot).
    for (const kept of plan.kept) {
      const from = kept.from;
      const resigned = from && kept.signed ? pulumi.output(signedUkis(kept.slot, kept.imageId, from)) : undefined;
      slots[kept.slot] = new BootSlot(
        `${name}-slot-${kept.slot}`,
        {
          target,
          slot: kept.slot,
          imageId: kept.imageId,
          planId: kept.planId,
          files: resigned ? resigned.apply((u) => withUkis(kept.files, u, "sha256")) : kept.files,
          ...(from
            ? {
                sources: resigned ? resigned.apply((u) => withUkis(pathsOf(from), u, "path")) : pathsOf(from),
                ...(resigned ? certificate : {}),
              }
            : {}),
          ...(kept.packages ? { packages: kept.packages } : {}),
          ...wipe,
        },
        parent,
      );
      if (from) written.push(slots[kept.slot]!);
      entries.push(
        entryInputs(
          kept.slot,
          pulumi.output(
            slotEntry(kept.slot, {
              microcode: kept.microcode,
              uki: kept.signed,
              layers: kept.layers,
              append: appendFor(kept.imageId),
              menuLabel: menuLabel(kept.imageId),
            }),
          ),
          keepSecret,
        ),
      );
    }

    if (decision.write) {
      const slot = decision.write;
      // The image to send: the one this config builds, or a cached one a pin keeps. Each piece
      // separately, so what a preview already knows (planId, packages) shows as known.
      const c = plan.writeFromCache;
      const source = c
        ? {
            imageId: pulumi.output(c.imageId),
            planId: pulumi.output(c.planId),
            artifacts: pulumi.output<ImageFiles | undefined>(c.artifacts),
            packages: pulumi.output(c.packages),
          }
        : {
            imageId: image.imageId,
            planId: image.planId,
            artifacts: image.artifacts.apply((a): ImageFiles | undefined => a),
            packages: image.lock,
          };
      const ukis: pulumi.Output<SignedUkis | undefined> = pulumi
        .all([source.imageId, source.artifacts])
        .apply(([imageId, a]) => signedUkis(slot, imageId, a));
      slots[slot] = new BootSlot(
        `${name}-slot-${slot}`,
        {
          target,
          slot,
          imageId: source.imageId,
          planId: source.planId,
          files: pulumi.all([source.artifacts, ukis]).apply(([a, u]) => withUkis(shasOf(a), u as SignedUkis, "sha256")),
          sources: pulumi
            .all([source.artifacts, ukis])
            .apply(([a, u]) => withUkis(pathsOf(a), u as SignedUkis, "path")),
          ...certificate,
          packages: source.packages,
          ...wipe,
        },
        { parent: this, ...(test && !c ? { dependsOn: [test] } : {}) },
      );
      written.push(slots[slot]!);
      entries.push(
        entryInputs(
          slot,
          pulumi.all([source.imageId, source.artifacts]).apply(([imageId, a]) =>
            slotEntry(slot, {
              microcode: a?.microcode !== undefined,
              uki: inputs.secureBoot !== undefined,
              // the layers BootSlot puts in the store for this image (boot-slot-resource.ts; none under Secure Boot)
              layers: a ? recordedLayersOf(a.initramfs.path) : undefined,
              append: appendFor(imageId),
              menuLabel: menuLabel(imageId),
            }),
          ),
          keepSecret,
        ),
      );
    }

    // Each label is its slot's name, known now: sorted here, so no entry waits on another's secret.
    const sorted = [...entries].sort((a, b) => (a.label < b.label ? -1 : 1));
    const syslinux = new SyslinuxConfig(
      `${name}-syslinux`,
      {
        target,
        ...(inputs.scheme !== undefined ? { scheme: inputs.scheme } : {}),
        defaultLabel: decision.active,
        timeout: inputs.timeout,
        ...(inputs.serial !== undefined ? { serial: inputs.serial } : {}),
        entries: sorted,
        strategy: inputs.strategy ?? "switch",
        bootTest: test !== undefined && plan.activeIsConfig,
        ...(inputs.trial ? { trial: inputs.trial } : {}),
        ...(plan.pinned ? { rollbackTo: plan.pinned.pin.update } : {}),
        ...wipe,
      },
      { parent: this, dependsOn: [...written, ...(test && plan.activeIsConfig ? [test] : [])] },
    );

    // One image in the outputs: the one DEFAULT boots after the update. That is the planned one
    // (the config's, or a pinned or current one), unless the trial of the new slot failed and
    // DEFAULT stayed where it was: then the image it boots still, so the outputs read unchanged.
    const fixed = plan.activeImage;
    const planned = {
      imageId: fixed ? pulumi.output(fixed.imageId) : image.imageId,
      planId: fixed ? pulumi.output(fixed.planId) : image.planId,
      packages: fixed ? pulumi.output(fixed.packages) : image.lock,
      artifacts: fixed ? pulumi.output(fixed.artifacts) : image.artifacts.apply((a): ImageFiles | undefined => a),
    };
    const before = plan.current;
    const stayed = syslinux.activeDefault.apply(
      (d) => before !== undefined && d !== decision.active && d === before.slot,
    );
    const booted = <T>(planned: pulumi.Output<T>, current: (image: DeployedImage) => T): pulumi.Output<T> =>
      pulumi.all([stayed, planned]).apply(([s, p]) => (s && before ? current(before.image) : (p as T)));
    // A trial failure only counts when this update runs a trial (the state keeps the last one's).
    const trying = decision.switches && inputs.strategy === "trial";
    this.state = {
      activeSlot: syslinux.activeDefault.apply((d) => (before && d === before.slot ? before.slot : decision.active)),
      writtenSlot: decision.write,
      imageId: booted(planned.imageId, (i) => i.imageId),
      planId: booted(planned.planId, (i) => i.planId),
      packages: booted(planned.packages, (i) => i.packages),
      artifacts: booted(planned.artifacts, (i) => i.artifacts),
      syslinuxDefault: syslinux.activeDefault,
      pinned: plan.pinned ? `update ${plan.pinned.pin.update} (image ${short(plan.pinned.image.imageId)})` : undefined,
      failedTrial: trying ? syslinux.failedTrial.apply((f) => f ?? undefined) : pulumi.output(undefined),
    };
    this.registerOutputs({ ...this.state });
  }
}

/** The AbSystem inputs a stack config key is for (pin and twin are read elsewhere). */
const INPUT_KEYS = [
  "target",
  "scheme",
  "image",
  "strategy",
  "trial",
  "bootTest",
  "append",
  "wipeOnDelete",
  "secureBoot",
];

function unpassedKeys(config: ReadonlyMap<string, string>, raw: Record<string, unknown>): string[] {
  return INPUT_KEYS.filter((key) => config.has(`ramroot:${key}`) && raw[key] === undefined).map(
    (key) =>
      `ramroot:${key} is set in the stack config, but the program does not pass ${key} to this AbSystem: it has no effect`,
  );
}

/** What Construct checks before anything is declared: inputs, stack config, pin, plan, gates, lease. */
async function prepare(
  name: string,
  raw: Record<string, unknown>,
  ctx: ConstructContext,
  baseDir: string,
): Promise<{ inputs: ReturnType<typeof parseAbSystemInputs>; plan: DeploymentPlan }> {
  checkStackConfig(ctx.config, stackConfigFile(baseDir, ctx.project, ctx.stack));
  const inputs = parseAbSystemInputs(raw, baseDir);
  // Each machine its own pin: `ramroot rollback <name>` holds this AbSystem only.
  const pin = machinePin(ctx.config, name);
  // The image's own problems (a package no repository has, a missing overlay, a wrong key) are
  // named as the image's fields.
  await planImageOnce(inputs.image, { baseDir }).catch((err: unknown) => {
    const message = (err as Error).message;
    const field = propertyOf(err);
    const reason = `image.${message.startsWith(`${field}:`) ? message : `${field}: ${message}`}`;
    throw new InputError("AbSystem inputs", [{ property: `image.${field}`, reason }]);
  });
  const plan = await planDeployment({
    target: inputs.target,
    slots: inputs.slots,
    image: inputs.image,
    ...(pin ? { pin } : {}),
    signsSlots: inputs.secureBoot !== undefined,
    retryFailedTrial: process.env.RAMROOT_RETRY_TRIAL === "1",
    baseDir,
  });
  // An explicit scheme the partition contradicts stops here, before anything is declared.
  const scheme = inputs.scheme;
  if (scheme !== undefined) await withTarget(inputs.target, (target) => assertSchemeOn(target, scheme));
  // A signed UKI boots from an EFI system partition only.
  if (inputs.secureBoot)
    await withTarget(inputs.target, async (target) => {
      const found = (await schemeOf(target)).name;
      if (found !== "uefi")
        throw new FieldError(
          "secureBoot",
          `Secure Boot boots a signed UKI from an EFI system partition, and ${target.describe()} is a ${found} boot partition`,
          "deploy to an ESP (`ramroot disk create --scheme uefi`), or leave secureBoot out; nothing was written",
        );
    });
  // A gate (boot test, trial) the last switch ran under goes only by an explicit value.
  const said = {
    ...(inputs.bootTest !== undefined ? { bootTest: inputs.bootTest !== false } : {}),
    ...(inputs.strategy !== undefined ? { trial: inputs.strategy === "trial" } : {}),
  };
  plan.notes.push(...checkGates(plan.lastSwitch, said));
  // A key the stack config sets that the program does not pass has no effect: say so.
  plan.notes.push(...unpassedKeys(ctx.config, raw));
  // Another deploy is writing the target: what was just read may change under this plan.
  if (plan.lease) {
    if (!ctx.preview) throw new LeaseHeldError(plan.target, plan.lease);
    plan.notes.push(
      `${plan.target} is leased by ${describeHolder(plan.lease)}: another deploy is writing it; this preview may be stale`,
    );
  }
  return { inputs, plan };
}

/**
 * Construct for AbSystem: validate, plan the deployment (target read, image planned once),
 * declare. Anything wrong before the first child is declared is refused as a child's failed
 * check (component-refusal.ts), never as a failed Construct.
 */
export const abSystemHandler: ComponentHandler = {
  token: AB_SYSTEM_TOKEN,
  async construct(name, raw, ctx) {
    // Relative paths in the stack config are relative to the project (the directory holding
    // Pulumi.yaml). The engine starts the plugin in the program's directory, which is below the
    // project when Pulumi.yaml's `main` points into it (the demo's dist/index.js).
    const baseDir = projectDirOr(process.cwd());
    let prepared: Awaited<ReturnType<typeof prepare>>;
    try {
      prepared = await prepare(name, raw, ctx, baseDir);
    } catch (err) {
      return refuse(AB_SYSTEM_TOKEN, name, err, ctx.options);
    }
    const { inputs, plan } = prepared;
    const warnings: string[] = [];
    const component = new AbSystemComponent(name, inputs, plan, ctx.options, ctx.secretInputs, (m) => warnings.push(m));
    // Shown with the component in the preview and the update: the engine log needs its URN.
    const urn = await new Promise<string>((resolve) => component.urn.apply(resolve));
    for (const m of warnings) ctx.warn(m, urn);
    // null, not absent: an absent output is unknown in every preview, a change that is not one.
    return {
      urn: component.urn,
      state: {
        ...component.state,
        writtenSlot: component.state.writtenSlot ?? null,
        pinned: component.state.pinned ?? null,
        failedTrial: component.state.failedTrial.apply((f) => f ?? null),
      },
    };
  },
};
