/**
 * The ramroot Pulumi program, driven by the stack's config (stacks/Pulumi.<stack>.yaml).
 *
 *   ramroot:bootDir   the boot partition to manage (a directory; default .ramroot/boot-<stack>)
 *   ramroot:default   the slot syslinux boots (a or b)
 *   ramroot:append    extra kernel command line
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { SyslinuxConfig } from "./provider/resources/program";

const config = new pulumi.Config("ramroot");
const stack = pulumi.getStack();
const givenBootDir = config.get("bootDir");
const bootDir = path.resolve(givenBootDir ?? path.join(__dirname, "..", ".ramroot", `boot-${stack}`));
// The demo's own boot directory is made on first use; a given one must already be mounted.
if (givenBootDir === undefined) fs.mkdirSync(bootDir, { recursive: true });
const append = config.get("append") ?? "";

const slot = (label: string) => ({
  label,
  menuLabel: `ramroot slot ${label}`,
  kernel: `/${label}/vmlinuz`,
  initrd: [`/${label}/initramfs`],
  append: `rdinit=/sbin/init console=ttyS0 panic=5 ${append}`.trim(),
});

const syslinux = new SyslinuxConfig("boot", {
  target: { kind: "local", path: bootDir },
  defaultLabel: config.get("default") ?? "a",
  timeout: config.getNumber("timeout") ?? 10,
  entries: [slot("a"), slot("b")],
});

export const syslinuxPath = syslinux.path;
export const syslinuxDefault = syslinux.activeDefault;
