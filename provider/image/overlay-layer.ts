/**
 * The layer on top of the packages: what the overlay, the inline files, the hostname and the
 * enabled services add or replace, as cpio entries, computed from the plan and the package
 * layer's path index without touching the package tree.
 *
 * A later archive can add and replace but not delete (test/boot/initramfs-layers.test.ts):
 * the kernel cannot put a file where an earlier archive made a directory with children, and it
 * rewrites an existing file in place, so replacing one name of a hard-linked file changes the
 * other names too. Where the overlay needs either, or writes under /boot or a trimmed
 * /lib/firmware (which the builder takes out after the overlay is laid), or reaches through a
 * symlink of the packages, this returns `fold` with the reason: the builder then lays the
 * overlay on an installed tree and packs one archive, as a single-layer build always did.
 */
import type { CpioEntry, CpioEntryType } from "./cpio-writer";
import type { OverlayEntry } from "./overlay";
import { RUNLEVELS, type Runlevel } from "./image-config";
import { FieldError } from "../ramroot-error";

/** What the package layer holds at a path: what the overlay layer must know of it. */
export interface PackagePath {
  type: CpioEntryType;
  /** one of several names of one inode */
  hardLinked: boolean;
}

export type PackageIndex = Map<string, PackagePath>;

export interface OverlayLayerInput {
  overlay: OverlayEntry[];
  hostname?: string;
  services: Record<Runlevel, { name: string; required: boolean }[]>;
  /** firmware is trimmed after the overlay is laid: overlay files there cannot be layered */
  firmwareTrimmed: boolean;
  packages: PackageIndex;
}

export type OverlayLayer = { entries: CpioEntry[]; skippedServices: string[] } | { fold: string };

const root = { uid: 0, gid: 0 };

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(`${dir}/`);
}

function ancestors(p: string): string[] {
  const parts = p.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

export function overlayLayer(input: OverlayLayerInput): OverlayLayer {
  // In the order a single-layer build lays them: overlay, hostname, service links.
  const byPath = new Map<string, CpioEntry>();
  for (const e of input.overlay) {
    if (e.type === "dir") byPath.set(e.path, { path: e.path, type: "dir", mode: e.mode, ...root });
    else if (e.type === "symlink")
      byPath.set(e.path, { path: e.path, type: "symlink", mode: 0o777, ...root, linkTarget: e.linkTarget! });
    else byPath.set(e.path, { path: e.path, type: "file", mode: e.mode, ...root, source: e.source! });
  }
  if (input.hostname)
    byPath.set("etc/hostname", {
      path: "etc/hostname",
      type: "file",
      mode: 0o644,
      ...root,
      source: Buffer.from(`${input.hostname}\n`),
    });

  const skippedServices: string[] = [];
  const exists = (p: string) => {
    const mine = byPath.get(p);
    if (mine) return mine.type !== "dir";
    const pkg = input.packages.get(p);
    return pkg !== undefined && pkg.type !== "dir";
  };
  for (const level of RUNLEVELS) {
    for (const { name, required } of input.services[level]) {
      if (!exists(`etc/init.d/${name}`)) {
        if (required)
          throw new FieldError(
            `services.${level}`,
            `"${name}" has no /etc/init.d/${name} in the image; install the package that provides it or drop it from services`,
          );
        skippedServices.push(`${level}/${name}`);
        continue;
      }
      const link = `etc/runlevels/${level}/${name}`;
      byPath.set(link, { path: link, type: "symlink", mode: 0o777, ...root, linkTarget: `/etc/init.d/${name}` });
    }
  }

  const implied = new Map<string, CpioEntry>();
  for (const e of byPath.values()) {
    if (under(e.path, "boot")) return { fold: `${e.path}: /boot is taken out of the image after the overlay is laid` };
    if (input.firmwareTrimmed && under(e.path, "lib/firmware"))
      return { fold: `${e.path}: firmware is trimmed after the overlay is laid` };
    const pkg = input.packages.get(e.path);
    if (pkg?.type === "dir" && e.type !== "dir") return { fold: `${e.path}: replaces a directory of the packages` };
    if (pkg?.hardLinked && e.type === "file") return { fold: `${e.path}: replaces a hard-linked file of the packages` };
    for (const a of ancestors(e.path)) {
      const mine = byPath.get(a);
      if (mine) {
        if (mine.type !== "dir") return { fold: `${e.path}: its parent ${a} is not a directory` };
        continue;
      }
      const below = input.packages.get(a);
      if (below === undefined) implied.set(a, { path: a, type: "dir", mode: 0o755, ...root });
      else if (below.type !== "dir") return { fold: `${e.path}: its parent ${a} is a ${below.type} in the packages` };
    }
  }
  return { entries: [...byPath.values(), ...implied.values()], skippedServices };
}
