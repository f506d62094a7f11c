import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, type ProjectSettings, type Stack } from "@pulumi/pulumi/automation";
import { createDisk } from "../../provider/boot/disk-create";
import { readJournal } from "../../provider/boot/journal";
import { readLease, type LeaseRecord } from "../../provider/boot/lease";
import { withTarget } from "../../provider/boot/target";
import { bootQemu } from "../../provider/qemu/boot";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { pulumiCommand, REPO_ROOT } from "../engine/pulumi-harness";

// Two deploys of two different stacks to one disk at the same time, each a real `pulumi up`
// (its own CLI, language host, program process and provider plugin): the first holds the disk's
// lease from its slot write to its switch; the second, started while it holds it, fails naming
// the holder and writes nothing; the disk boots its DEFAULT in QEMU; after the first is done,
// the second deploys normally (the lease was released).
jest.setTimeout(1_800_000);

type ProjectWithPlugins = ProjectSettings & { plugins: { providers: { name: string; path: string }[] } };

let work: string;
let repo: ImageRepo;
let disk: string;
let cache: string;

const SERVICE = `#!/bin/sh
[ "$1" = start ] || exit 0
image=$(sed -n 's/.*ramroot\\.image=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
echo "MACHINE-UP image=$image message=$(cat /etc/ramroot/message)"
`;

/** A stack of a project directory whose program is the repository's compiled machine program. */
async function projectStack(name: string): Promise<Stack> {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, "state"), { recursive: true });
  fs.writeFileSync(
    path.join(dir, "index.js"),
    `module.exports = require(${JSON.stringify(path.join(REPO_ROOT, "dist", "components", "machine-program.js"))}).machineProgram();\n`,
  );
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"));
  const projectSettings: ProjectWithPlugins = {
    name: `lease-${name}`,
    runtime: "nodejs",
    main: "index.js",
    backend: { url: `file://${path.join(dir, "state")}` },
    plugins: { providers: [{ name: "ramroot", path: path.join(REPO_ROOT, "provider", "plugin") }] },
  };
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: name, workDir: dir },
    {
      pulumiCommand: await pulumiCommand(),
      projectSettings,
      envVars: {
        PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
        PULUMI_CONFIG_PASSPHRASE: "test",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        RAMROOT_IMAGE_CACHE: cache,
      },
    },
  );
  // Each deploy's image differs by its overlay: a message, and for the first a large file, so
  // its slot write (and the lease it holds) lasts long enough for the second to meet it.
  const overlay = path.join(dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "init.d"), { recursive: true });
  fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "init.d", "machine"), SERVICE, { mode: 0o755 });
  fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), `${name}\n`);
  if (name === "first") {
    const fd = fs.openSync(path.join(overlay, "etc", "ramroot", "ballast"), "w");
    for (let i = 0; i < 64; i++) fs.writeSync(fd, crypto.randomBytes(1 << 20));
    fs.closeSync(fd);
  }
  await stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify({ kind: "image", path: disk }) },
    "ramroot:image": {
      value: JSON.stringify({
        repositories: [repo.repository],
        keys: [repo.keysDir],
        packages: ["alpine-baselayout", "busybox", "ramroot-init"],
        kernel: "lts",
        overlay,
        hostname: name,
        cmdline: "console=ttyS0 no_timer_check",
        services: { default: ["machine"] },
        epoch: 1700000000,
      }),
    },
  });
  return stack;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const leaseOf = () => withTarget({ kind: "image", path: disk }, (t) => readLease(t));

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-concurrent-"));
  cache = path.join(work, "images");
  repo = await buildImageRepo(path.join(work, "repo"));
  disk = path.join(work, "disk.img");
  await createDisk({ output: disk, sizeMiB: 256, layout: "mbr", slots: ["a", "b"] });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("the second of two concurrent deploys fails naming the lease holder; the disk boots its DEFAULT; the second then deploys", async () => {
  const [first, second] = [await projectStack("first"), await projectStack("second")];

  const firstUp = first.up();
  firstUp.catch(() => undefined);
  // The first deploy's slot write has taken the lease: start the second now.
  let holder: LeaseRecord | undefined;
  while (!(holder = await leaseOf())) await sleep(200);
  expect(holder.owner).toMatch(/^pulumi up: BootSlot a <- image [0-9a-f]{12}$/);
  // The first deploy's copy is now faster than the second's start (a pulumi up, a build), so the
  // lease holder (its provider plugin) is frozen while the second runs: it stays alive and holds
  // the lease, as a slow copy over a slow link would. It is frozen where it holds no lock of the
  // image (not inside a read or an mtools command), or the second would wait for the image
  // instead of meeting the lease.
  const holderPid = holder.pid;
  const inode = fs.statSync(disk).ino;
  const imageLocked = () =>
    fs
      .readFileSync("/proc/locks", "utf8")
      .split("\n")
      .some((l) => /\bFLOCK\b/.test(l) && l.includes(`:${inode} `));
  for (;;) {
    process.kill(holderPid, "SIGSTOP");
    await sleep(100); // a lock turn it asked for just before is taken by now
    if (!imageLocked()) break;
    process.kill(holderPid, "SIGCONT");
    await sleep(20);
  }
  let lost: string | undefined;
  try {
    lost = await second.up().then(
      () => undefined,
      (err: unknown) => String(err),
    );
  } finally {
    process.kill(holderPid, "SIGCONT");
  }

  const won = await firstUp;
  expect(won.summary.result).toBe("succeeded");
  const firstImage = won.outputs.imageId!.value as string;
  expect(holder.owner).toBe(`pulumi up: BootSlot a <- image ${firstImage.slice(0, 12)}`);
  // The loser says who held the lease (the owner, its user, pid and host), and wrote nothing.
  expect(lost).toBeDefined();
  expect(lost).toContain(
    `"pulumi up: BootSlot a <- image ${firstImage.slice(0, 12)}" (user ${holder.user}, pid ${holder.pid} on host ${holder.host}`,
  );
  expect(await leaseOf()).toBeUndefined();
  const journal = await withTarget({ kind: "image", path: disk }, (t) => readJournal(t));
  expect(journal).toHaveLength(1);
  expect(journal[0]).toMatchObject({ label: "a", slot: "a", imageId: firstImage });

  // The disk boots its DEFAULT: the first deploy's image.
  const copy = `${disk}.boot`;
  fs.copyFileSync(disk, copy);
  try {
    const booted = await bootQemu({
      media: { kind: "disk", image: copy },
      marker: "MACHINE-UP image=",
      timeoutMs: 300_000,
    });
    if (!booted.found) throw new Error(`the disk did not boot to its marker:\n${booted.log.slice(-2000)}`);
    const line = booted.log.split(/\r?\n/).find((l) => l.includes("MACHINE-UP image="))!;
    expect(line).toContain(`image=${firstImage} message=first`);
  } finally {
    fs.rmSync(copy, { force: true });
  }

  // Nothing is stuck: the second deploy, run again, writes the other slot and switches to it.
  const again = await second.up();
  expect(again.summary.result).toBe("succeeded");
  expect(again.outputs.activeSlot!.value).toBe("b");
  const after = await withTarget({ kind: "image", path: disk }, (t) => readJournal(t));
  expect(after.map((e) => e.slot)).toEqual(["a", "b"]);
  expect(after[1]?.by).toMatch(/^"pulumi up: BootSlot [ab] <- image [0-9a-f]{12}" \(user .*, pid \d+ on host /);
});
