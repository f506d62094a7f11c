/**
 * arch: aarch64, built on this (x86_64) machine from arm64 content only: Alpine's aarch64 musl,
 * busybox and os-release, Debian's arm64 cloud kernel and EFI stub, in a signed repository
 * (test/fixtures/arm64-repo.ts). The image boots in qemu-system-aarch64 -M virt -cpu neoverse-n1 under
 * TCG twice: its kernel and initramfs directly, and as a UKI from an EFI system partition under
 * AAVMF. A package whose install script cannot run here is refused, saying why and what to do.
 * TCG aarch64 is slow: the image is small and the boots are these two.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { foreignRun } from "../../provider/apk/binfmt";
import { planImage } from "../../provider/image/plan";
import { buildImage, type ImageArtifacts } from "../../provider/image/build";
import { bootQemu } from "../../provider/qemu/boot";
import { buildArm64Repo, type Arm64Repo } from "../fixtures/arm64-repo";
import { makeEspDisk } from "../fixtures/esp-disk";
import { readBack, readBackEveryArchive } from "../fixtures/image-readback";

jest.setTimeout(900_000);

let work: string;
let repo: Arm64Repo;
let image: ImageArtifacts;

const HELLO = `#!/bin/sh
[ "$1" = start ] || exit 0
for w in $(cat /proc/cmdline); do case "$w" in ramroot.image=*) id=\${w#ramroot.image=} ;; esac; done
. /etc/os-release
echo "RAMROOT-ARM arch=$(uname -m) os=$ID-$VERSION_ID libc=$(ls /lib/ld-musl-*) image=\${id:-none} efi=$([ -d /sys/firmware/efi ] && echo yes || echo no)"
`;

const config = () => ({
  arch: "aarch64" as const,
  repositories: [repo.repository],
  keys: [repo.keysDir],
  packages: ["alpine-baselayout", "alpine-release", "busybox", "ramroot-init"],
  kernel: "lts" as const,
  uki: true,
  overlay: "root",
  services: { default: ["hello"] },
  epoch: 1700000000,
});

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-aarch64-"));
  repo = await buildArm64Repo(path.join(work, "repo"));
  fs.mkdirSync(path.join(work, "p", "root", "etc", "init.d"), { recursive: true });
  fs.writeFileSync(path.join(work, "p", "root", "etc", "init.d", "hello"), HELLO, { mode: 0o755 });
  const archives = readBackEveryArchive();
  image = await buildImage(await planImage(config(), { baseDir: path.join(work, "p") }), {
    cacheDir: path.join(work, "images"),
    onPacked: archives.onPacked,
  });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("the image holds Alpine's aarch64 userland and the applet links its package ships; nothing ran to make it", async () => {
  expect(image.warnings).toEqual([]);
  const tree = await readBack(image.initramfs.path);
  expect(tree.get("lib/ld-musl-aarch64.so.1")).toMatchObject({ type: "file" });
  expect(tree.get("bin/ls")).toMatchObject({ type: "symlink", linkTarget: "/bin/busybox" });
  expect(tree.get("usr/lib/systemd/boot/efi/linuxaa64.efi.stub")).toMatchObject({ type: "file" });
  const busybox = await fs.promises.readFile(path.join(work, "repo", "trees", "busybox", "bin", "busybox"));
  expect(busybox.readUInt16LE(18)).toBe(183); // EM_AARCH64
  expect(tree.get("bin/busybox")?.sha256).toBe(
    require("node:crypto").createHash("sha256").update(busybox).digest("hex"),
  );
});

test("an install script this host cannot run is refused, naming it and what to do", async () => {
  const scripted = { ...config(), packages: [...config().packages, repo.scripted], uki: false };
  const plan = await planImage(scripted, { baseDir: path.join(work, "p") });
  const building = buildImage(plan, { cacheDir: path.join(work, "images-scripted") });
  if (foreignRun("aarch64").ok) {
    // this machine's kernel runs aarch64 programs (qemu-user through binfmt_misc): the script runs
    const built = await building;
    const tree = await readBack(built.initramfs.path);
    expect(tree.get("etc/greeting")).toMatchObject({ type: "file" });
    return;
  }
  await expect(building).rejects.toThrow(
    /install scripts cannot run: greeter post-install\. target architecture aarch64 differs from the host's x86_64: the image's binaries cannot run here \(.*binfmt_misc.*\)\. Build on a aarch64 machine, or where the kernel runs aarch64 programs through QEMU's user-mode emulator.*allowScriptFailures: true/,
  );
});

test("boots its kernel and initramfs directly in qemu-system-aarch64 -M virt -cpu neoverse-n1", async () => {
  const result = await bootQemu({
    arch: "aarch64",
    media: { kind: "kernel", kernel: image.kernel!.path, initrd: image.initramfs.path, append: "rdinit=/sbin/init" },
    marker: "RAMROOT-ARM arch=aarch64 os=alpine-3.20.3 libc=/lib/ld-musl-aarch64.so.1 image=none efi=no",
    timeoutMs: 300_000,
  });
  if (!result.found) console.log(result.log.slice(-3000));
  expect(result.found).toBe(true);
});

test("boots as a UKI from an EFI system partition under AAVMF, its id on the command line the UKI holds", async () => {
  const disk = await makeEspDisk(path.join(work, "esp.img"), "aarch64", image.uki!.path);
  const result = await bootQemu({
    arch: "aarch64",
    uefi: true,
    media: { kind: "disk", image: disk },
    marker: `RAMROOT-ARM arch=aarch64 os=alpine-3.20.3 libc=/lib/ld-musl-aarch64.so.1 image=${image.imageId} efi=yes`,
    timeoutMs: 600_000,
  });
  if (!result.found) console.log(result.log.slice(-3000));
  expect(result.found).toBe(true);
});
