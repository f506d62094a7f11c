/**
 * The program side: typed classes a Pulumi program uses. Each is a plain CustomResource whose
 * type token the ramroot provider plugin serves; no code is serialised into the state.
 */
import * as pulumi from "@pulumi/pulumi";
import type { TargetSpec } from "../boot/target";
import type { SyslinuxEntry } from "../boot/syslinux-config";
import { SYSLINUX_CONFIG_TOKEN } from "./syslinux-config-resource";

export interface SyslinuxConfigArgs {
  target: pulumi.Input<TargetSpec>;
  defaultLabel: pulumi.Input<string>;
  /** deciseconds before DEFAULT boots; 0 = at once */
  timeout: pulumi.Input<number>;
  prompt?: pulumi.Input<boolean>;
  /** SERIAL line; default port 0 at 115200; false for none */
  serial?: pulumi.Input<{ port: number; baud: number } | false>;
  entries: pulumi.Input<pulumi.Input<SyslinuxEntry>[]>;
}

export class SyslinuxConfig extends pulumi.CustomResource {
  declare public readonly path: pulumi.Output<string>;
  declare public readonly sha256: pulumi.Output<string>;
  declare public readonly defaultLabel: pulumi.Output<string>;
  declare public readonly activeDefault: pulumi.Output<string>;

  constructor(name: string, args: SyslinuxConfigArgs, opts?: pulumi.CustomResourceOptions) {
    super(SYSLINUX_CONFIG_TOKEN, name, { ...args, path: undefined, sha256: undefined, activeDefault: undefined }, opts);
  }
}
