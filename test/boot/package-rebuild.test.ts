import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { planImage } from "../../provider/image/plan";
import { buildImage, type ImageArtifacts } from "../../provider/image/build";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { readBack, readBackEveryArchive } from "../fixtures/image-readback";

// A package change installs onto the installed tree kept from the last build (installed-tree.ts)
// when that gives exactly what a cold install gives; these builds compare both ways byte for byte.
jest.setTimeout(900_000);

let work: string;
let repo: ImageRepo;
const archives = readBackEveryArchive();
const GREETING = "usr/share/hello-ramroot/greeting";

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-pkg-rebuild-"));
  repo = await buildImageRepo(path.join(work, "repo"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function build(
  packages: string[],
  cache: string,
  opts: { force?: boolean } = {},
): Promise<{ image: ImageArtifacts; log: string[] }> {
  const log: string[] = [];
  const resolved = await planImage(
    {
      repositories: [repo.repository],
      keys: [repo.keysDir],
      packages,
      kernel: "lts",
      hostname: "pkgbox",
      compression: "gzip",
      epoch: 1700000000,
    },
    { baseDir: work },
  );
  const image = await buildImage(resolved, {
    cacheDir: path.join(work, cache),
    onProgress: (m) => log.push(m),
    onPacked: archives.onPacked,
    force: opts.force,
  });
  return { image, log };
}

const base = ["alpine-baselayout", "busybox", "ramroot-init"];

test("one package added, then removed, on the kept installed tree: the bytes of a cold install each time", async () => {
  // step 1: a cold build keeps its installed tree
  const first = await build(base, "warm");
  expect(first.log.some((m) => m.startsWith("installing "))).toBe(true);
  expect(fs.readdirSync(path.join(work, "warm", "trees"))).toHaveLength(1);

  // step 2: + hello-ramroot: only it is fetched and unpacked, onto the kept tree
  const added = await build([...base, "hello-ramroot"], "warm");
  expect(added.log).toContain("installed tree: 1 package(s) unpacked onto it, 0 taken out (+hello-ramroot-1.0-r0)");
  expect(added.log.some((m) => m.startsWith("installing "))).toBe(false);
  const cold = await build([...base, "hello-ramroot"], "cold-added");
  expect(cold.log.some((m) => m.startsWith("installing "))).toBe(true);
  expect(added.image.initramfs.sha256).toBe(cold.image.initramfs.sha256);
  expect(added.image.imageId).toBe(cold.image.imageId);
  const withHello = await readBack(added.image.initramfs.path);
  expect(withHello.get(GREETING)).toEqual(expect.objectContaining({ type: "file", uid: 0, gid: 0, mode: 0o644 }));
  expect(withHello.get("lib/apk/db/installed")).toBeDefined();

  // step 3: back to the first lock (its package layer dropped, so it is packed again): the
  // package's files are gone and the image is the first build's, byte for byte
  const removed = await build(base, "warm", { force: true });
  expect(removed.log).toContain("installed tree: 0 package(s) unpacked onto it, 1 taken out (-hello-ramroot-1.0-r0)");
  expect(removed.image.imageId).toBe(first.image.imageId);
  const withoutHello = await readBack(removed.image.initramfs.path);
  expect(withoutHello.get(GREETING)).toBeUndefined();
  expect(withoutHello.get("usr/share/hello-ramroot")).toBeUndefined();
  expect(archives.checked).toBeGreaterThanOrEqual(6);
});

test("a change a kept package's trigger watches installs the lock again, and says why", async () => {
  // ramroot-init puts sbin/rc where busybox's trigger (the bin directories) looks: a cold
  // install runs the trigger with it there, so the kept tree is not reused
  const first = await build(["alpine-baselayout", "busybox"], "trigger");
  const changed = await build(base, "trigger");
  expect(changed.log.some((m) => /not reused \(a trigger of busybox watches what changed\)/.test(m))).toBe(true);
  expect(changed.log.some((m) => m.startsWith("installing "))).toBe(true);
  const cold = await build(base, "trigger-cold");
  expect(changed.image.imageId).toBe(cold.image.imageId);
  expect(changed.image.imageId).not.toBe(first.image.imageId);
});

test("the same packages asked for differently: the kept tree is reused with the new world", async () => {
  // busybox comes in as ramroot-init's dependency instead of by name: the same lock, another world
  const first = await build(["alpine-baselayout", "ramroot-init"], "world");
  const constrained = await build(base, "world");
  expect(constrained.log).toContain("installed tree: the lock is installed already");
  expect(constrained.image.imageId).not.toBe(first.image.imageId);
  const cold = await build(base, "world-cold");
  expect(constrained.image.imageId).toBe(cold.image.imageId);
  const tree = await readBack(constrained.image.initramfs.path);
  expect(tree.get("etc/apk/world")).toBeDefined();
});
