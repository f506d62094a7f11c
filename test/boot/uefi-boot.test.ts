/**
 * An x86_64 image emitted as a Unified Kernel Image (uki: true): systemd's EFI stub from the
 * image's own systemd-efistub package (Debian's systemd-boot-efi, packaged), the kernel, the
 * initramfs, the command line with the image's id and the os-release, built twice from two
 * directories with their own caches into the same bytes, then put on a FAT EFI system
 * partition as EFI/BOOT/BOOTX64.EFI and booted by OVMF, with no bootloader, to the machine's marker.
 * Signed for Secure Boot (secureBoot) with the key Debian's ovmf ships enrolled in PK, KEK and db
 * of OVMF_VARS_4M.snakeoil.fd, it boots with Secure Boot on; the same image unsigned is refused.
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
import { snakeoil } from "../fixtures/secure-boot-keys";

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

/** The image both tests build: the overlay's hello service prints the marker. */
const ukiConfig = () => ({
  repositories: [repo.repository],
  keys: [repo.keysDir],
  packages: ["alpine-baselayout", "busybox", "ramroot-init"],
  kernel: "lts" as const,
  uki: true,
  cmdline: "console=ttyS0",
  overlay: "root",
  services: { default: ["hello"] },
  epoch: 1700000000,
});

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-uefi-"));
  repo = await buildImageRepo(path.join(work, "repo"), { efiStub: true });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("an image as a UKI: same bytes from two directories, boots from an ESP under OVMF with its id on the command line", async () => {
  const config = ukiConfig();
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

test("Secure Boot on (OVMF, snakeoil db): the UKI signed with secureBoot boots to its marker; the same image unsigned is refused", async () => {
  const dir = project(path.join(work, "sb"));
  const config = ukiConfig();
  const SNAKEOIL = snakeoil();
  const privateKey = SNAKEOIL.key;
  const cacheDir = path.join(work, "cache-sb");
  const signed = await buildImage(
    await planImage({ ...config, secureBoot: { privateKey, certificate: SNAKEOIL.cert } }, { baseDir: dir }),
    { cacheDir },
  );
  const unsigned = await buildImage(await planImage(config, { baseDir: dir }), { cacheDir });
  expect(signed.imageId).toBe(unsigned.imageId);

  const boot = async (name: string, uki: string, marker: string) => {
    const varsFile = path.join(work, `${name}-vars.fd`);
    fs.copyFileSync(SNAKEOIL.vars, varsFile);
    const disk = await makeEspDisk(path.join(work, `${name}.img`), "x86_64", uki);
    return bootQemu({
      arch: "x86_64",
      uefi: true,
      varsFile,
      media: { kind: "disk", image: disk },
      marker,
      timeoutMs: 300_000,
    });
  };
  const on = await boot("sb-signed", signed.uki!.path, `RAMROOT-UEFI arch=x86_64 image=${signed.imageId} efi=yes`);
  if (!on.found) console.log(on.log.slice(-3000));
  expect(on.found).toBe(true);
  expect(on.log).toContain("secureboot: Secure boot enabled");

  // The firmware gives up on the disk, then on its own shell (not signed by db either).
  const off = await boot("sb-unsigned", unsigned.uki!.path, "No bootable option or device was found");
  expect(off.found).toBe(true);
  expect(off.log).toMatch(/failed to load Boot\d+ "[^"]+" from PciRoot[^\n]*: Access Denied/);
  expect(off.log).not.toContain("Linux version");
});
