/**
 * An x86_64 image emitted as a Unified Kernel Image (uki: true): systemd's EFI stub from the
 * image's own systemd-efistub package (Debian's systemd-boot-efi, packaged), the kernel, the
 * initramfs, the command line with the image's id and the os-release, built twice from two
 * directories with their own caches into the same bytes, then put on a FAT EFI system
 * partition as EFI/BOOT/BOOTX64.EFI and booted by OVMF, with no bootloader, to the machine's marker.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { planImage } from "../../provider/image/plan";
import { buildImage } from "../../provider/image/build";
import { readPeHeader } from "../../provider/image/uki";
import { bootQemu } from "../../provider/qemu/boot";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { makeEspDisk } from "../fixtures/esp-disk";

jest.setTimeout(900_000);

let work: string;
let repo: ImageRepo;

// A service from the overlay: its marker carries the image id from the command line the UKI holds.
const HELLO = `#!/bin/sh
[ "$1" = start ] || exit 0
for w in $(cat /proc/cmdline); do case "$w" in ramroot.image=*) id=\${w#ramroot.image=} ;; esac; done
echo "RAMROOT-UEFI arch=$(uname -m) image=$id efi=$([ -d /sys/firmware/efi ] && echo yes || echo no)"
`;

function project(dir: string): string {
  fs.mkdirSync(path.join(dir, "root", "etc", "init.d"), { recursive: true });
  fs.writeFileSync(path.join(dir, "root", "etc", "init.d", "hello"), HELLO, { mode: 0o755 });
  return dir;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-uefi-"));
  repo = await buildImageRepo(path.join(work, "repo"), { efiStub: true });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("an image as a UKI: same bytes from two directories, boots from an ESP under OVMF with its id on the command line", async () => {
  const config = {
    repositories: [repo.repository],
    keys: [repo.keysDir],
    packages: ["alpine-baselayout", "busybox", "ramroot-init"],
    kernel: "lts" as const,
    uki: true,
    cmdline: "console=ttyS0",
    overlay: "root",
    services: { default: ["hello"] },
    epoch: 1700000000,
  };
  const build = async (name: string) => {
    const dir = project(path.join(work, name));
    return buildImage(await planImage(config, { baseDir: dir }), { cacheDir: path.join(work, `cache-${name}`) });
  };
  const a = await build("a");
  const b = await build("b");
  expect(a.uki).toBeDefined();
  expect(b.imageId).toBe(a.imageId);
  expect(b.uki!.sha256).toBe(a.uki!.sha256);
  expect(a.packages).toHaveProperty("systemd-efistub");

  const uki = fs.readFileSync(a.uki!.path);
  const pe = readPeHeader(uki, "uki.efi");
  const section = (name: string) => {
    const s = pe.sections.find((x) => x.name === name)!;
    return uki.subarray(s.pointerToRawData, s.pointerToRawData + s.virtualSize);
  };
  expect(section(".cmdline").toString()).toBe(`rdinit=/sbin/init console=ttyS0 ramroot.image=${a.imageId}`);
  expect(section(".linux").equals(fs.readFileSync(a.kernel!.path))).toBe(true);
  expect(section(".initrd").equals(fs.readFileSync(a.initramfs.path))).toBe(true);

  const disk = await makeEspDisk(path.join(work, "esp.img"), "x86_64", a.uki!.path);
  const result = await bootQemu({
    arch: "x86_64",
    uefi: true,
    media: { kind: "disk", image: disk },
    marker: `RAMROOT-UEFI arch=x86_64 image=${a.imageId} efi=yes`,
    timeoutMs: 300_000,
  });
  if (!result.found) console.log(result.log.slice(-3000));
  expect(result.found).toBe(true);
});
