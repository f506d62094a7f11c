/**
 * The files of an owner's own repository, as `ramroot init` writes them: one machine kept in
 * git, with ramroot installed beside it as an npm dependency. Plain text with comments, since
 * the owner reads and edits them; nothing here touches the disk.
 */
import YAML from "yaml";

export interface OwnerRepoSpec {
  /** the Pulumi project name (also the package name and the machine's hostname, lower-cased) */
  name: string;
  /** the stack: stacks/Pulumi.<stack>.yaml */
  stack: string;
  program: "typescript" | "yaml";
  /** how package.json names ramroot: a version range, `file:<tarball>` or a git URL */
  ramrootSpec: string;
  /** repositories and keys as the stack names them; none: Alpine's for the release */
  repositories: string[];
  keys: string[];
  packages: string[];
  /** install-script decisions copied from ramroot's own package.json (npm's allowScripts) */
  allowScripts: Record<string, boolean>;
}

/** The image the stack's disk-image target names (relative to the repository, kept out of git). */
export const DISK_IMAGE = "machine.img";

/** The marker every ramroot image prints on its console once booted (its ramroot-image-id service). */
export const BOOT_MARKER = "ramroot: image ";

/** Alpine's packages for a first real box: the base system, an ssh server, and extlinux for trials. */
export const DEFAULT_PACKAGES = ["alpine-base", "openssh", "syslinux"];

/** The same epoch for every build, so the same inputs give the same bytes (2026-01-01). */
const EPOCH = 1767225600;

/** A YAML scalar: plain when that reads back the same, quoted otherwise. */
function scalar(value: string | number): string {
  return YAML.stringify(value).trimEnd();
}

function list(indent: string, values: readonly string[]): string {
  return values.map((v) => `${indent}- ${scalar(v)}\n`).join("");
}

export function hostnameOf(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 63) || "machine"
  );
}

/**
 * A disk for what must outlive a boot (the machine runs from RAM): the ssh host keys, so every
 * image the machine boots presents the same ones (printed on its console at boot).
 */
const SSH_KEYS = `    # what must outlive a boot lives on a disk labelled "data" (mkfs.ext4 -L data /dev/sdY):
    # the ssh host keys, so every image presents the same ones; without it they last one boot
    dataDisk:
      label: data
      mountpoint: /data
      fs: ext4
    sshHostKeys: {}
`;

function stackFile(spec: OwnerRepoSpec): string {
  const sources =
    spec.repositories.length > 0
      ? `    repositories:\n${list("      ", spec.repositories)}` + `    keys:\n${list("      ", spec.keys)}`
      : "    # repositories: Alpine's main and community for the release (dl-cdn.alpinelinux.org);\n" +
        "    # keys: Alpine's, fetched once and checked against fingerprints pinned in ramroot.\n";
  const sshd = spec.packages.includes("openssh");
  return `# The machine: what \`pulumi up --stack ${spec.stack}\` (or \`npm start\`) builds and where it goes.
# Every key is described in node_modules/ramroot/README.md ("Configuration", "AlpineImage").
config:
  # Where the boot partition is. First a disk image, to try the machine in QEMU:
  #   npx ramroot disk create --size 512 ${DISK_IMAGE}   and after the first up:   npx ramroot qemu --stack ${spec.stack}
  # then the USB stick or disk the machine boots from (path: /dev/disk/by-id/usb-...):
  #   npx ramroot disk create /dev/sdX --yes
  # and once the machine runs, over ssh (the same partition: changing to it writes nothing):
  #   kind: ssh, host: ${hostnameOf(spec.name)}.lan, user: root, path: /media/boot
  ramroot:target:
    kind: image
    path: ${DISK_IMAGE}
  ramroot:image:
    release: v3.24
    arch: x86_64
${sources}    packages:
${list("      ", spec.packages)}    kernel: lts
    # every file under root/ lands at the same path in the image
    overlay: root
    hostname: ${scalar(hostnameOf(spec.name))}
    cmdline: console=tty0 console=ttyS0,115200
    network:
      mode: dhcp
    # the boot partition, mounted where an ssh target's path expects it
    bootPartition:
      label: RAMROOT
      mountpoint: /media/boot
    services:
      # -networking: the network input above brings eth0 up
      boot: [-networking]${sshd ? "\n      default: [sshd]" : ""}
${sshd ? SSH_KEYS : ""}    compression: gzip
    epoch: ${EPOCH}
  # Each new image boots once in QEMU before it is written: no marker on its console, no deployment.
  ramroot:bootTest:
    marker: ${scalar(BOOT_MARKER)}
    timeoutSeconds: 300
  # Once the target is ssh: boot each new image once, and make it DEFAULT only when it answers
  # healthy (the image's own checks, at every boot); anything else comes back on DEFAULT by itself.
  # ramroot:strategy: trial
`;
}

function pulumiYaml(spec: OwnerRepoSpec): string {
  const head = `name: ${scalar(spec.name)}
description: ${scalar(`${spec.name}: an Alpine Linux machine in one initramfs, deployed by ramroot`)}
`;
  const tail = `stackConfigDir: stacks
# The stacks' state: state/ in this repository, kept out of git (.gitignore): back it up. Or keep
# it elsewhere: another directory (file:///mnt/backup/pulumi-state) or an S3-compatible bucket
# (s3://bucket/${spec.name}?endpoint=nas.lan:9000&s3ForcePathStyle=true&region=us-east-1); without
# these two lines \`pulumi login\` decides. The path is relative: run pulumi from this directory.
backend:
  url: file://./state
# The ramroot provider runs from the installed package (npm install puts it there).
plugins:
  providers:
    - name: ramroot
      path: ./node_modules/ramroot/provider/plugin
`;
  if (spec.program === "typescript")
    return `${head}runtime: nodejs
main: index.ts
${tail}`;
  return `${head}runtime: yaml
${tail}
# The program: ramroot's A/B component from the stack's config (stacks/Pulumi.<stack>.yaml).
# A key the stack sets later is passed the same way, e.g. strategy: \${ramroot:strategy}.
resources:
  machine:
    type: ramroot:index:AbSystem
    properties:
      target: \${ramroot:target}
      image: \${ramroot:image}
      bootTest: \${ramroot:bootTest}
outputs:
  activeSlot: \${machine.activeSlot}
  imageId: \${machine.imageId}
  planId: \${machine.planId}
  packages: \${machine.packages}
  syslinuxDefault: \${machine.syslinuxDefault}
  pinned: \${machine.pinned}
`;
}

const INDEX_TS = `/**
 * The program: one machine from the stack's config (stacks/Pulumi.<stack>.yaml, keys under
 * \`ramroot:\`). machineProgram declares ramroot's A/B component from it: the image, its boot
 * test, two boot slots and syslinux. To declare more yourself, import AbSystem (or AlpineImage,
 * BootSlot, SyslinuxConfig, BootTest) from "ramroot".
 */
import { machineProgram } from "ramroot";

export = machineProgram;
`;

function packageJson(spec: OwnerRepoSpec): string {
  const run = (verb: string) => `bash node_modules/ramroot/scripts/owner.sh ${verb} ${spec.stack}`;
  const manifest = {
    name: hostnameOf(spec.name),
    private: true,
    description: `${spec.name}: an Alpine Linux machine in one initramfs, deployed by ramroot`,
    scripts: {
      setup: "bash node_modules/ramroot/scripts/setup.sh",
      preview: run("preview"),
      start: run("up"),
    },
    dependencies: { ramroot: spec.ramrootSpec },
    ...(Object.keys(spec.allowScripts).length > 0 ? { allowScripts: spec.allowScripts } : {}),
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

const GITIGNORE = `node_modules/
# the setup's log and environment (.ramroot/env.sh)
.ramroot/
# the stacks' state (Pulumi.yaml backend.url): back it up, or keep it on a shared backend
state/
# disk images made to try the machine in QEMU
*.img
`;

function readme(spec: OwnerRepoSpec): string {
  const program = spec.program === "typescript" ? "`index.ts`" : "`Pulumi.yaml`";
  return `# ${spec.name}

This repository is the machine ${spec.name}: an Alpine Linux system that lives in one initramfs,
built and deployed to A/B boot slots by ramroot (\`node_modules/ramroot/README.md\`).

- \`root/\`: every file lands at the same path in the image
- \`stacks/Pulumi.${spec.stack}.yaml\`: packages, kernel, services, where the boot partition is
- ${program}: the Pulumi program, ramroot's A/B component from the stack's config

\`\`\`sh
npm install       # after a clone: ramroot and its dependencies
npm run setup     # Debian tools, Node >= 22 and the Pulumi engine (once; then quick)
npm run preview   # what would change on the machine: packages, files, the slot written
npm start         # the same preview, then the deployment when you say yes
source .ramroot/env.sh; npx ramroot status   # also: history, rollback, release, qemu, image diff
\`\`\`

The stacks' state is in \`state/\` (not in git). Back it up with this repository's files; without
it the stack's history, its rollback numbers and its pin are gone (the machine keeps running).
`;
}

/** Every file of the new repository: path (relative, POSIX) -> content. */
export function ownerFiles(spec: OwnerRepoSpec): Record<string, string> {
  return {
    "Pulumi.yaml": pulumiYaml(spec),
    ...(spec.program === "typescript" ? { "index.ts": INDEX_TS } : {}),
    [`stacks/Pulumi.${spec.stack}.yaml`]: stackFile(spec),
    "root/etc/motd": `Welcome to ${spec.name}. This system runs from RAM: what is not under root/ in its\nrepository, or on a data disk, is gone at the next boot.\n`,
    ".gitignore": GITIGNORE,
    "package.json": packageJson(spec),
    "README.md": readme(spec),
  };
}
