/**
 * The A/B system, as a program declares it: an image, two slots on a boot target, and syslinux
 * pointing at one of them. The program side is only this declaration; the ramroot provider
 * builds the component (Construct): it reads the target, plans the image once, honours a
 * rollback's pin, decides which slot to write, and declares AlpineImage, BootTest, BootSlot and
 * SyslinuxConfig as its children. Any Pulumi language gets the same behaviour through the
 * schema's `ramroot:index:AbSystem` (examples/yaml is a Pulumi YAML program using it).
 */
import * as pulumi from "./pulumi-sdk";
import type { TargetSpec } from "../provider/boot/target-spec";
import type { z } from "zod";
import type { abSystemSchemaInputs } from "../provider/deploy/ab-system-inputs";
import type { ImageFiles } from "../provider/deploy/deployment-plan";
import { AB_SYSTEM_TOKEN } from "../provider/resources/tokens";

type Inputs<T> = { [K in keyof T]: pulumi.Input<T[K]> };

/**
 * The component's arguments as its zod schema takes them (provider/deploy/ab-system-inputs.ts:
 * one source for the provider's check, the package schema and these types), each an Input; the
 * target's fields are Inputs of their own (a secret privateKey). Among them: `image` (AlpineImage's
 * inputs; relative paths resolve against the project directory), `target`, `slots` (default a,
 * b), `append` (kernel command line after rdinit=/sbin/init, the image's cmdline, ramroot.image=
 * and panic=; a secret), `strategy` ("switch", default, or "trial": a trial the last switch ran
 * under goes only by an explicit "switch"), `trial`, `bootTest` (boot the config's image in QEMU
 * and require its marker before it is written or selected; false: none, and one the last
 * switch ran under goes only by this explicit value), `wipeOnDelete`.
 */
export type AbSystemArgs = Inputs<Omit<z.input<typeof abSystemSchemaInputs>, "target">> & {
  target: pulumi.Input<Inputs<TargetSpec>>;
};

export class AbSystem extends pulumi.ComponentResource {
  /** the slot DEFAULT names after this update */
  declare public readonly activeSlot: pulumi.Output<string>;
  /** the slot this update writes; absent when the image was already in a slot */
  declare public readonly writtenSlot: pulumi.Output<string | undefined>;
  /** the image DEFAULT boots: its id, plan, packages and local artifacts (all of one image) */
  declare public readonly imageId: pulumi.Output<string>;
  declare public readonly planId: pulumi.Output<string>;
  declare public readonly packages: pulumi.Output<Record<string, string>>;
  declare public readonly artifacts: pulumi.Output<ImageFiles | undefined>;
  /** DEFAULT in syslinux.cfg on the target */
  declare public readonly syslinuxDefault: pulumi.Output<string>;
  /** "update N (image …)" while `ramroot rollback` pins the stack */
  declare public readonly pinned: pulumi.Output<string | undefined>;
  /**
   * set when the update's trial failed: what was seen. DEFAULT stayed and the other outputs say
   * what it boots; a program fails the update with it (index.ts does, after its outputs).
   */
  declare public readonly failedTrial: pulumi.Output<string | undefined>;

  constructor(name: string, args: AbSystemArgs, opts: pulumi.ComponentResourceOptions = {}) {
    const outputs = {
      activeSlot: undefined,
      writtenSlot: undefined,
      imageId: undefined,
      planId: undefined,
      packages: undefined,
      artifacts: undefined,
      syslinuxDefault: undefined,
      pinned: undefined,
      failedTrial: undefined,
    };
    // Stacks deployed before the component moved into the provider named it ramroot:components:AbSystem.
    super(
      AB_SYSTEM_TOKEN,
      name,
      { ...args, ...outputs },
      { ...opts, aliases: [...(opts.aliases ?? []), { type: "ramroot:components:AbSystem" }] },
      true,
    );
  }
}
