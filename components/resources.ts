/**
 * The program side: typed classes a Pulumi program uses (and the provider's `construct`, which
 * declares the A/B component's children as any program would). Each is a plain CustomResource
 * whose type token the ramroot provider plugin serves; no code is serialised into the state.
 * Only types and the tokens come from provider/: a program loads no engine code.
 */
import type { z } from "zod";
import * as pulumi from "./pulumi-sdk";
import type { TargetSpec } from "../provider/boot/target";
import type { SyslinuxEntry } from "../provider/boot/schemes/syslinux/config";
import type { ImageConfigInput } from "../provider/image/image-config";
import type { Artifact } from "../provider/image/build";
import type { bootSlotInputsSchema } from "../provider/resources/boot-slot-resource";
import type { bootTestInputsSchema } from "../provider/resources/boot-test-resource";
import type { syslinuxConfigInputsSchema } from "../provider/resources/syslinux-config-resource";
import { absoluteImageConfig } from "../provider/image/absolute-paths";
import {
  ALPINE_IMAGE_TOKEN,
  BOOT_SLOT_TOKEN,
  BOOT_TEST_TOKEN,
  SYSLINUX_CONFIG_TOKEN,
} from "../provider/resources/tokens";

type Inputs<T> = { [K in keyof T]: pulumi.Input<T[K]> };

/**
 * A resource's arguments as its zod schema takes them (the input side: defaults optional), each
 * field an Input: the provider's check and the program's types are one source.
 */
type Args<S extends z.ZodType> = Inputs<z.input<S>>;

/** The target, each field an Input of its own (a secret privateKey inside a plain target). */
type TargetArg = pulumi.Input<Inputs<TargetSpec>>;

/**
 * The config's and the deploy's inputs as the provider's schema takes them
 * (provider/resources/syslinux-config-resource.ts); the target and each entry field by field, so a
 * secret (a target's privateKey, an entry's append) may sit inside a plain value.
 */
export type SyslinuxConfigArgs = Omit<Args<typeof syslinuxConfigInputsSchema>, "target" | "entries"> & {
  target: TargetArg;
  entries: pulumi.Input<pulumi.Input<Inputs<SyslinuxEntry>>[]>;
};

export class SyslinuxConfig extends pulumi.CustomResource {
  declare public readonly path: pulumi.Output<string>;
  declare public readonly sha256: pulumi.Output<string>;
  declare public readonly defaultLabel: pulumi.Output<string>;
  declare public readonly activeDefault: pulumi.Output<string>;
  /** the boot scheme the config is written for: syslinux (syslinux.cfg) or uefi (loader.conf + entries) */
  declare public readonly scheme: pulumi.Output<string>;
  /** set when the update's trial failed (DEFAULT stayed): what was seen */
  declare public readonly failedTrial: pulumi.Output<string | undefined>;

  constructor(name: string, args: SyslinuxConfigArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      SYSLINUX_CONFIG_TOKEN,
      name,
      {
        scheme: undefined,
        ...args,
        path: undefined,
        sha256: undefined,
        activeDefault: undefined,
        failedTrial: undefined,
      },
      opts,
    );
  }
}

/** The image config (see provider/image/image-config.ts); relative paths resolve against the program's directory. */
export type AlpineImageArgs = Inputs<ImageConfigInput>;

export class AlpineImage extends pulumi.CustomResource {
  declare public readonly planId: pulumi.Output<string>;
  declare public readonly imageId: pulumi.Output<string>;
  /** package -> locked version */
  declare public readonly lock: pulumi.Output<Record<string, string>>;
  declare public readonly overlayFiles: pulumi.Output<Record<string, string>>;
  /** uki: with `uki: true`, the image as one EFI executable (its id on the command line it holds) */
  declare public readonly artifacts: pulumi.Output<{
    kernel?: Artifact;
    initramfs: Artifact;
    microcode?: Artifact;
    uki?: Artifact;
  }>;
  declare public readonly sbomPath: pulumi.Output<string>;
  declare public readonly cmdline: pulumi.Output<string>;

  constructor(name: string, args: AlpineImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      ALPINE_IMAGE_TOKEN,
      name,
      {
        ...absoluteImageConfig(args, process.cwd()),
        planId: undefined,
        lock: undefined,
        overlayFiles: undefined,
        trustedKeys: undefined,
        imageId: undefined,
        artifacts: undefined,
        sbomPath: undefined,
        archiveSize: undefined,
      },
      opts,
    );
  }
}

/** the slot's target, image and files (provider/resources/boot-slot-resource.ts) */
export type BootSlotArgs = Omit<Args<typeof bootSlotInputsSchema>, "target"> & { target: TargetArg };

export class BootSlot extends pulumi.CustomResource {
  declare public readonly imageId: pulumi.Output<string>;
  declare public readonly planId: pulumi.Output<string>;
  declare public readonly written: pulumi.Output<string>;
  declare public readonly consistent: pulumi.Output<boolean>;

  constructor(name: string, args: BootSlotArgs, opts?: pulumi.CustomResourceOptions) {
    super(BOOT_SLOT_TOKEN, name, { ...args, written: undefined, consistent: undefined }, opts);
  }
}

/** the image to boot and the marker it must print (provider/resources/boot-test-resource.ts) */
export type BootTestArgs = Args<typeof bootTestInputsSchema>;

export class BootTest extends pulumi.CustomResource {
  declare public readonly passed: pulumi.Output<boolean>;
  declare public readonly seconds: pulumi.Output<number>;

  constructor(name: string, args: BootTestArgs, opts?: pulumi.CustomResourceOptions) {
    super(BOOT_TEST_TOKEN, name, { ...args, passed: undefined, seconds: undefined }, opts);
  }
}
