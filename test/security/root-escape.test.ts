/**
 * Writes, deletes and renames that would follow a symlink out of the root: an install script
 * replaces a package's directory with a link to a host directory, and the kept installed tree
 * is then upgraded, has the package removed and has it installed again; a package's lib/modules
 * is a link to a host module tree that depmod would index; an image's link under a link on
 * extract. Each refuses (or stays inside) before anything changes, and the host's canaries hold.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";
import { cachedMinirootfs } from "../fixtures/alpine-minirootfs";
import { plantCanaries } from "../fixtures/host-canaries";
import { hostileBuilds } from "../fixtures/hostile-builds";
import { buildRepo, signingKey, userland, type HostilePackage } from "../fixtures/hostile-repo";
import { writeCpio } from "../../provider/image/cpio-writer";

jest.setTimeout(600_000);

let cli: CompiledCli;
let work: string;

beforeAll(async () => {
  cli = await compileCli();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-escape-"));
});
afterAll(() => {
  cli?.dispose();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test("a script's srv/data -> host directory: upgrading, removing and reinstalling its package on the kept tree refuses the reuse before any change, and nothing on the host is deleted or written", async () => {
  const dir = path.join(work, "kept-tree");
  const host = path.join(dir, "host");
  const snapshot = plantCanaries(host);
  const victim = path.join(host, "victim");
  fs.mkdirSync(victim);
  for (const f of ["f1", "f2", "f3"]) fs.writeFileSync(path.join(victim, f), `the host's ${f}\n`);
  const before = snapshot();
  const key = signingKey(path.join(dir, "key"));
  const { writeConfig, build } = hostileBuilds(cli, key);
  const owner = (version: string, files: string[]): HostilePackage => ({
    spec: { name: "data", version },
    files: {
      srv: { dir: true },
      "srv/data": { dir: true },
      ...Object.fromEntries(files.map((f) => [`srv/data/${f}`, `data ${version} ${f}\n`])),
    },
  });
  const linker: HostilePackage = {
    spec: {
      name: "zz-linker",
      version: "1.0-r0",
      depends: ["busybox"],
      scripts: {
        "post-install": `#!/bin/busybox sh\n/bin/busybox mkdir -p /srv && /bin/busybox rm -rf /srv/data && /bin/busybox ln -s ${victim} /srv/data\n`,
      },
    },
    files: { srv: { dir: true }, "usr/share/zz-linker": "links\n" },
  };
  // One repository path throughout (the kept tree is per repository): rebuilt for each step.
  const repoAt = (pkgs: HostilePackage[]) => {
    fs.rmSync(path.join(dir, "repo"), { recursive: true, force: true });
    fs.rmSync(path.join(dir, "trees-repo"), { recursive: true, force: true });
    return buildRepo(dir, key, [...userland(cachedMinirootfs()), ...pkgs]);
  };
  // --force: the reinstall's plan is the upgrade's, whose image is in the cache.
  const step = async (pkgs: HostilePackage[], world: string[]) => {
    const repo = repoAt(pkgs);
    const r = await build(dir, writeConfig(dir, { repositories: [repo], packages: world }), ["--force"]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(snapshot()).toBe(before);
    return r.stderr;
  };

  await step([owner("1.0-r0", ["f1", "f2"]), linker], ["data", "zz-linker"]);
  const trees = path.join(dir, "images", "trees");
  const [tree] = fs.readdirSync(trees);
  expect(fs.readlinkSync(path.join(trees, tree!, "root/srv/data"))).toBe(victim);

  // The upgrade: data-1.0's files would be removed through the link, data-2.0's renamed in.
  const upgrade = await step([owner("2.0-r0", ["f1", "f2", "f3"]), linker], ["data", "zz-linker"]);
  expect(upgrade).toMatch(
    /installed tree [0-9a-f]{12} not reused \(srv\/data\/f[12] of data lies under srv\/data, which is a symlink or no directory in the tree\)/,
  );
  // The removal.
  const removal = await step([linker], ["zz-linker"]);
  expect(removal).toMatch(
    /not reused \(srv\/data\/f[123] of data lies under srv\/data, which is a symlink or no directory in the tree\)/,
  );
  // The reinstall onto the tree without it: its directory stands there as the link.
  const reinstall = await step([owner("2.0-r0", ["f1", "f2", "f3"]), linker], ["data", "zz-linker"]);
  expect(reinstall).toMatch(/not reused \(srv\/data of data is a directory, the tree has another type\)/);
  expect(fs.readFileSync(path.join(victim, "f1"), "utf8")).toBe("the host's f1\n");
});

test("a package's lib/modules -> a host module tree without an index: depmod is not run through it, and nothing is written there", async () => {
  const dir = path.join(work, "modules");
  const host = path.join(dir, "host");
  const snapshot = plantCanaries(host);
  const release = path.join(host, "modules", "6.1.0-99-amd64", "kernel");
  fs.mkdirSync(release, { recursive: true });
  fs.writeFileSync(path.join(release, "host.ko"), "not a module, and not the image's\n");
  const before = snapshot();
  const key = signingKey(path.join(dir, "key"));
  const { writeConfig, build } = hostileBuilds(cli, key);
  const repo = buildRepo(dir, key, [
    {
      spec: { name: "evil-modules", version: "1.0-r0" },
      files: { lib: { dir: true }, "lib/modules": { symlink: path.join(host, "modules") } },
    },
  ]);
  const r = await build(dir, writeConfig(dir, { repositories: [repo], packages: ["evil-modules"] }));
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
  expect(r.stderr).not.toMatch(/depmod/);
  expect(snapshot()).toBe(before);
});

test("image extract: a link inside a link the image made is not made, so nothing lands in the host directory the first points at", async () => {
  const dir = path.join(work, "extract");
  const host = path.join(dir, "host");
  const snapshot = plantCanaries(host);
  const before = snapshot();
  const raw = new PassThrough();
  const chunks: Buffer[] = [];
  raw.on("data", (c: Buffer) => chunks.push(c));
  await writeCpio(
    [
      { path: "a", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: host },
      { path: "a/pwned", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "/etc/shadow" },
      { path: "etc", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    ],
    raw,
    { epoch: 0 },
  );
  raw.end();
  const image = path.join(dir, "hostile.cpio");
  fs.writeFileSync(image, Buffer.concat(chunks));
  const out = path.join(dir, "out");
  const r = await cli.run(["image", "extract", image, out]);
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
  expect(r.stdout + r.stderr).toMatch(/a\/pwned \(symlink under the symlink a; not made\)/);
  expect(fs.readlinkSync(path.join(out, "a"))).toBe(host);
  expect(fs.statSync(out).mode & 0o777).toBe(0o700);
  expect(snapshot()).toBe(before);
});
