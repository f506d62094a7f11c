/**
 * An image whose userland is Alpine's own: musl and busybox from Alpine's 3.20.3 minirootfs,
 * packaged with ramroot's `pkg build` (test/fixtures/parity-repo.ts), installed by ramroot with
 * their scripts (busybox --install, a user made by pre-install, a post-install chown/chmod), and
 * booted in QEMU with the fixture kernel. The machine prints what it has: the owners and modes
 * the scripts left must be the image's.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildImage } from "../../provider/image/build";
import { planImage } from "../../provider/image/plan";
import { bootQemu } from "../../provider/qemu/boot";
import { cachedMinirootfs } from "../fixtures/alpine-minirootfs";
import { debianKernel } from "../fixtures/debian-kernel";
import { readBackEveryArchive } from "../fixtures/image-readback";
import { buildParityRepos } from "../fixtures/parity-repo";

jest.setTimeout(900_000);

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-alpine-userland-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("an image of Alpine's musl and busybox boots and shows the owners and modes its scripts left", async () => {
  const repos = buildParityRepos(path.join(work, "repos"), cachedMinirootfs());
  const resolved = await planImage(
    {
      repositories: [repos.v1],
      keys: [repos.keysDir],
      packages: ["busybox", "app", "suid", "marker-init"],
      kernel: "none",
      epoch: 1700000000,
    },
    { baseDir: work },
  );
  // every archive read back through cpio-stream against the staging tree it was packed from
  const archives = readBackEveryArchive();
  const image = await buildImage(resolved, { cacheDir: path.join(work, "images"), onPacked: archives.onPacked });
  expect(archives.checked).toBeGreaterThan(0);
  expect(image.warnings).toEqual([]);
  const result = await bootQemu({
    media: {
      kind: "kernel",
      kernel: debianKernel().vmlinuz,
      initrd: image.initramfs.path,
      append: "rdinit=/sbin/init",
    },
    marker: "ALPINE-USERLAND-UP kernel=Linux libc=/lib/ld-musl-x86_64.so.1 changed=1234:1234:600 suid=4755 user=1234",
    timeoutMs: 300_000,
  });
  if (!result.found) console.log(result.log.slice(-3000));
  expect(result.found).toBe(true);
});
