/**
 * The A/B system: an image, two slots on a boot target, and syslinux pointing at one of them.
 *
 * It looks at the target first (which slot is DEFAULT, which image each slot holds), then:
 * - if a slot already holds the wanted image, it only selects that slot (nothing is copied);
 * - otherwise it sends the image to the slot that is not DEFAULT, keeps the other slot as it
 *   is, and flips DEFAULT once the copy is verified ("switch"), or boots it once and promotes
 *   it when the machine answers ("trial").
 * An optional QEMU boot test sits between the image and the slot: if the image does not reach
 * its marker, the update stops before anything on the target changes.
 */
import * as pulumi from "@pulumi/pulumi";
import type { TargetSpec } from "../provider/boot/target";
import { inspectTarget, slotHolding, type TargetState } from "../provider/boot/inspect";
import { parseUserAppend } from "../provider/boot/kernel-append";
import { describeHolder, LeaseHeldError } from "../provider/boot/lease";
import { slotEntry, type SlotState } from "../provider/boot/slot";
import type { ImageConfigInput } from "../provider/image/image-config";
import { planImage } from "../provider/image/plan";
import { cachedImage, type ImageArtifacts } from "../provider/image/build";
import { AlpineImage, BootSlot, BootTest, SyslinuxConfig, absolutePaths } from "../provider/resources/program";
import type { TrialInputs } from "../provider/resources/syslinux-config-resource";

export interface AbSystemArgs {
  /** the image config (AlpineImage inputs); relative paths resolve against the program's directory */
  image: ImageConfigInput;
  target: TargetSpec;
  /** the two slot names (default a, b) */
  slots?: [string, string];
  /** kernel command line after rdinit=/sbin/init, the image's cmdline, ramroot.image= and panic= */
  append?: string;
  /** seconds before a panicking kernel reboots (default 10) */
  panicSeconds?: number;
  /** deciseconds syslinux waits (default 10) */
  timeout?: number;
  serial?: { port: number; baud: number } | false;
  strategy?: "switch" | "trial";
  trial?: Partial<TrialInputs>;
  /** boot the new image in QEMU and require this marker before it goes to a slot */
  bootTest?: { marker: string; timeoutSeconds?: number; append?: string };
  /** select this planId's image instead of the config's (what `ramroot rollback` sets) */
  rollbackTo?: string;
}

interface Decision {
  /** the slot DEFAULT will name */
  active: string;
  /** the slot to write, when the wanted image is in no slot */
  write?: string;
  /** rolling back to an image that is only in the local cache */
  fromCache?: ImageArtifacts;
}

function otherSlot(slots: [string, string], slot: string | undefined): string {
  return slot === slots[0] ? slots[1] : slots[0];
}

/** Which slot to write and which to select, from what the target holds now. */
export function decide(state: TargetState, slots: [string, string], wanted: string | undefined, fromCache?: ImageArtifacts): Decision {
  const holder = wanted ? slotHolding(state, wanted) : undefined;
  if (holder) return { active: holder };
  const write = state.defaultSlot && slots.includes(state.defaultSlot) ? otherSlot(slots, state.defaultSlot) : state.once && slots.includes(state.once) ? otherSlot(slots, state.once) : slots[0];
  return { active: write, write, ...(fromCache ? { fromCache } : {}) };
}

function shas(state: SlotState): { kernel: string; initramfs: string; microcode?: string } {
  return {
    kernel: state.files.kernel?.sha256 ?? "",
    initramfs: state.files.initramfs?.sha256 ?? "",
    ...(state.files.microcode ? { microcode: state.files.microcode.sha256 } : {}),
  };
}

export class AbSystem extends pulumi.ComponentResource {
  public image!: AlpineImage;
  public syslinux!: SyslinuxConfig;
  public readonly slots: Record<string, BootSlot> = {};
  public activeSlot!: string;
  /** the slot this update writes, or undefined when the image is already in a slot */
  public writtenSlot?: string;
  public imageId!: pulumi.Output<string>;
  public planId!: pulumi.Output<string>;

  private constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
    super("ramroot:components:AbSystem", name, {}, opts);
  }

  /** Async because it reads the target (and plans the image) before declaring the resources. */
  static async create(name: string, args: AbSystemArgs, opts?: pulumi.ComponentResourceOptions): Promise<AbSystem> {
    const self = new AbSystem(name, opts);
    const slots = args.slots ?? ["a", "b"];
    const config = absolutePaths(args.image, process.cwd());
    // A command line that would load another slot's initramfs, or spans lines, stops the preview.
    parseUserAppend(args.append);
    const state = await inspectTarget(args.target, slots);
    // Another deploy is writing the target: what was just read may change under this plan.
    if (state.lease) {
      if (!pulumi.runtime.isDryRun()) throw new LeaseHeldError(state.description, state.lease);
      pulumi.log.warn(`${state.description} is leased by ${describeHolder(state.lease)}: another deploy is writing it; this preview may be stale`);
    }

    // The plan names the image before it is built. A config that does not plan is left to
    // AlpineImage's check, which stops the preview with the property to fix.
    const planned = await planImage(config, { baseDir: process.cwd() }).catch(() => undefined);
    let fromCache: ImageArtifacts | undefined;
    if (args.rollbackTo && !slotHolding(state, args.rollbackTo)) {
      fromCache = await cachedImage({ planId: args.rollbackTo } as never);
      if (!fromCache) throw new Error(`rollbackTo: image plan ${args.rollbackTo.slice(0, 12)} is in no slot of ${state.description} and not in the local image cache`);
    }
    const decision = decide(state, slots, args.rollbackTo ?? planned?.plan.planId, fromCache);
    self.activeSlot = decision.active;
    self.writtenSlot = decision.write;

    const parent = { parent: self };
    self.image = new AlpineImage(`${name}-image`, config, parent);
    const panic = args.panicSeconds ?? 10;
    const appendFor = (imageId: string) =>
      ["rdinit=/sbin/init", config.cmdline ?? "", `ramroot.image=${imageId}`, `panic=${panic}`, args.append ?? ""].filter((s) => s !== "").join(" ");

    // Slots that keep what they hold are declared as they are, so nothing is copied to them.
    const entries: pulumi.Output<ReturnType<typeof slotEntry>>[] = [];
    for (const slot of slots) {
      const held = state.slots[slot];
      if (slot === decision.write || !held?.manifest) continue;
      self.slots[slot] = new BootSlot(`${name}-slot-${slot}`, {
        target: args.target,
        slot,
        imageId: held.manifest.imageId,
        planId: held.manifest.planId,
        files: shas(held),
        ...(held.manifest.lockSummary ? { packages: held.manifest.lockSummary } : {}),
      }, parent);
      entries.push(pulumi.output(slotEntry(slot, { microcode: held.files.microcode !== undefined, append: appendFor(held.manifest.imageId), menuLabel: `ramroot ${held.manifest.imageId.slice(0, 12)}` })));
    }

    // The boot test always follows the config's image (declared on every run, so an unchanged
    // stack previews no change); a slot receiving that image waits for it to pass.
    let test: BootTest | undefined;
    if (args.bootTest) {
      const a = self.image.artifacts;
      test = new BootTest(`${name}-boot-test`, {
        imageId: self.image.imageId,
        kernel: a.apply((x) => x?.kernel?.path ?? ""),
        initrd: a.apply((x) => [...(x?.microcode ? [x.microcode.path] : []), x?.initramfs.path ?? ""]),
        append: self.image.imageId.apply((id) => `${appendFor(id)} ${args.bootTest?.append ?? ""}`.trim()),
        marker: args.bootTest.marker,
        timeoutSeconds: args.bootTest.timeoutSeconds ?? 180,
      }, parent);
    }

    let dependsOn: pulumi.Resource[] = [];
    if (decision.write) {
      const slot = decision.write;
      // The image to send: the one this config builds, or a cached one being rolled back to.
      // Each piece separately, so what a preview already knows (planId, packages) shows as known.
      const c = decision.fromCache;
      const source = c
        ? { imageId: pulumi.output(c.imageId), planId: pulumi.output(c.planId), artifacts: pulumi.output({ kernel: c.kernel, initramfs: c.initramfs, microcode: c.microcode }), packages: pulumi.output(c.packages) }
        : { imageId: self.image.imageId, planId: self.image.planId, artifacts: self.image.artifacts, packages: self.image.lock };
      const artifact = (role: "kernel" | "initramfs" | "microcode") => source.artifacts.apply((a) => a?.[role]);
      self.slots[slot] = new BootSlot(`${name}-slot-${slot}`, {
        target: args.target,
        slot,
        imageId: source.imageId,
        planId: source.planId,
        files: pulumi.all([artifact("kernel"), artifact("initramfs"), artifact("microcode")]).apply(([k, i, m]) => ({ kernel: k?.sha256 ?? "", initramfs: i?.sha256 ?? "", ...(m ? { microcode: m.sha256 } : {}) })),
        sources: pulumi.all([artifact("kernel"), artifact("initramfs"), artifact("microcode")]).apply(([k, i, m]) => ({ kernel: k?.path ?? "", initramfs: i?.path ?? "", ...(m ? { microcode: m.path } : {}) })),
        packages: source.packages,
      }, { parent: self, ...(test && !decision.fromCache ? { dependsOn: [test] } : {}) });
      dependsOn = [self.slots[slot]!];
      entries.push(pulumi.all([source.imageId, artifact("microcode")]).apply(([imageId, m]) => slotEntry(slot, { microcode: m !== undefined, append: appendFor(imageId), menuLabel: `ramroot ${imageId.slice(0, 12)}` })));
    }

    const sorted = pulumi.all(entries).apply((list) => [...list].sort((a, b) => (a.label < b.label ? -1 : 1)));
    self.syslinux = new SyslinuxConfig(`${name}-syslinux`, {
      target: args.target,
      defaultLabel: decision.active,
      timeout: args.timeout ?? 10,
      ...(args.serial !== undefined ? { serial: args.serial } : {}),
      entries: sorted,
      strategy: args.strategy ?? "switch",
      ...(args.trial ? { trial: args.trial } : {}),
    }, { parent: self, dependsOn });

    const activeSlot = self.slots[decision.active];
    self.imageId = activeSlot ? activeSlot.imageId : self.image.imageId;
    self.planId = activeSlot ? activeSlot.planId : self.image.planId;
    self.registerOutputs({ activeSlot: decision.active, writtenSlot: decision.write ?? null, imageId: self.imageId, planId: self.planId });
    return self;
  }
}
