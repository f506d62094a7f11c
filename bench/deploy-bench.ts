/**
 * The deploy cycle on the machine twin: a NAS-shaped image (the offline repository's dropbear,
 * DHCP, data disk, boot partition) on a syslinux disk booted with `ramroot vm`, deployed to
 * over ssh by the real `pulumi up` (this run's compiled program and provider plugin), then
 * rebooted until it answers over ssh with the new image id. Each round edits one overlay
 * file, so each `up` builds a new image and writes it to the idle slot.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { freePort, stopTwin, waitForConsole } from "../provider/qemu/twin";
import { buildNasRepo } from "../test/fixtures/nas-repo";
import {
  buildImage,
  consoleHostKeys,
  knownHostsLines,
  machineSshArgs,
  makeBootDisk,
  nasImageConfig,
  onMachine,
  rebootMachine,
  SSHD_READY,
  startMachine,
  twinStackConfig,
  userKeyFor,
} from "../test/fixtures/twin-machine";
import { median, type Sample, type VariantResult } from "./harness";
import type { BenchContext, SectionResult } from "./section";

const STACK = "bench-deploy";

/** The phases of one cycle, in order; the last is the whole cycle. */
const PHASES = [
  ["build", "ramroot build image.yaml --cache IMAGES  # the edited image, into the cache the provider reads"],
  [
    "write",
    "pulumi up --yes --skip-preview  # plan, find the image built, copy it to the idle slot over ssh, verify, switch DEFAULT",
  ],
  ["reboot", "ssh root@machine reboot, until sshd listens again (console)"],
  ["healthy", "until the machine answers over ssh with the new image id (/run/ramroot/image-id)"],
  ["cycle", "the whole cycle: build + write + reboot + healthy"],
] as const;

/** A project whose program and provider are this benchmark run's compiled sources (bench/run.sh's output directory). */
function benchProject(dir: string, compiledRoot: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const plugin = path.join(dir, "plugin");
  fs.mkdirSync(plugin);
  fs.writeFileSync(
    path.join(plugin, "pulumi-resource-ramroot"),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(compiledRoot, "provider", "resources", "main.js"))} "$@"\n`,
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    [
      `name: ${STACK}`,
      "runtime:",
      "  name: nodejs",
      "  options:",
      "    typescript: false",
      `main: ${path.relative(dir, path.join(compiledRoot, "index.js"))}`,
      "plugins:",
      "  providers:",
      "    - name: ramroot",
      `      path: ${plugin}`,
      "",
    ].join("\n"),
  );
}

export async function benchDeploy(ctx: BenchContext): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "deploy");
  const compiledRoot = path.resolve(__dirname, "..");
  ctx.log("deploy: the offline repository and the machine's first image");
  const repo = await buildNasRepo(path.join(dir, "repo"));
  const overlay = path.join(dir, "project", "root");
  const userKey = userKeyFor(path.join(dir, "ssh"), overlay);
  const release = (text: string) => {
    fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
    fs.writeFileSync(path.join(overlay, "etc", "ramroot", "release"), `${text}\n`);
  };
  const images = path.join(dir, "images");
  const config = { ...nasImageConfig(repo, overlay), cmdline: "console=ttyS0" };
  release("bench 0");
  const first = await buildImage(path.join(dir, "image.yaml"), config, images);
  const disk = path.join(dir, "boot.img");
  await makeBootDisk(disk, first);

  const twin = {
    disk,
    data: path.join(dir, "data.img"),
    sshPort: await freePort(),
    serialLog: path.join(dir, "serial.log"),
    pidFile: path.join(dir, "qemu.pid"),
  };
  const project = path.join(dir, "project");
  benchProject(project, compiledRoot);
  const env = {
    PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "bench",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    RAMROOT_IMAGE_CACHE: images,
  };
  fs.mkdirSync(path.join(dir, "state"));
  const pulumi = (...args: string[]) =>
    execa("pulumi", [...args, "--stack", STACK, "--non-interactive"], { cwd: project, env });

  const rows = new Map<string, number[]>(PHASES.map(([id]) => [id, []]));
  let initramfsBytes = 0;
  try {
    await startMachine(twin);
    let boots = 1;
    const hostKeys = consoleHostKeys(
      await waitForConsole(twin.serialLog, SSHD_READY, { timeoutMs: 600_000, pidFile: twin.pidFile }),
    );
    const knownHosts = path.join(dir, "ssh", "known_hosts");
    fs.writeFileSync(knownHosts, knownHostsLines(twin.sshPort, hostKeys));
    const ssh = machineSshArgs(twin.sshPort, userKey, knownHosts);
    await execa("pulumi", ["stack", "init", STACK, "--non-interactive"], { cwd: project, env });
    for (const [key, { value }] of Object.entries(twinStackConfig(twin.sshPort, userKey, knownHosts, config)))
      await pulumi("config", "set", key, value);

    for (let round = 1; round <= ctx.heavyRuns; round++) {
      release(`bench ${round}`);
      const t0 = Date.now();
      const built = await buildImage(path.join(dir, "image.yaml"), config, images);
      const tBuilt = Date.now();
      await pulumi("up", "--yes", "--skip-preview");
      const t1 = Date.now();
      await rebootMachine(ssh);
      boots++;
      await waitForConsole(twin.serialLog, SSHD_READY, { count: boots, timeoutMs: 600_000, pidFile: twin.pidFile });
      const t2 = Date.now();
      const wanted = (await pulumi("stack", "output", "imageId")).stdout.trim();
      if (wanted !== built.imageId)
        throw new Error(
          `round ${round}: pulumi up deployed image ${wanted}, not the one ramroot build made (${built.imageId}): the write phase would include a build`,
        );
      const deadline = Date.now() + 300_000;
      for (;;) {
        const answer = await execa("ssh", [...ssh, "cat /run/ramroot/image-id"], { reject: false });
        if (answer.exitCode === 0 && answer.stdout.trim() === wanted) break;
        if (Date.now() > deadline)
          throw new Error(`round ${round}: the machine did not answer with image ${wanted}: ${answer.stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const t3 = Date.now();
      const slot = /BOOT_IMAGE=\/([ab])\//.exec(await onMachine(ssh, "cat /proc/cmdline"))?.[1];
      initramfsBytes = Number(await onMachine(ssh, `wc -c < /media/boot/${slot}/initramfs`));
      const seconds = [tBuilt - t0, t1 - tBuilt, t2 - t1, t3 - t2, t3 - t0].map((ms) => ms / 1000);
      PHASES.forEach(([id], i) => rows.get(id)!.push(seconds[i]!));
      ctx.log(
        `  [${round}/${ctx.heavyRuns}] slot ${slot}: ${PHASES.map(([id], i) => `${id} ${seconds[i]!.toFixed(1)} s`).join(", ")}`,
      );
    }
  } finally {
    await stopTwin(twin.pidFile);
  }
  const results: VariantResult[] = PHASES.map(([id, command]) => {
    const s = rows.get(id)!;
    return {
      label: id,
      command,
      samples: s.map((seconds): Sample => ({ seconds })),
      medianSeconds: median(s),
    };
  });
  return {
    id: "deploy",
    title: "Deploy cycle on the machine twin",
    intro:
      "`pulumi up` over ssh to the QEMU twin (TCG, one vCPU, `ramroot vm`: virtio disks, user-mode networking), strategy `switch`, " +
      "then a reboot through syslinux into the new slot and the first ssh answer naming the new image. Each round edits one overlay file, " +
      "so each round builds a new image (the package layer cached; `ramroot build` into the image cache the provider reads, so `up` finds it) and copies it to the idle slot.",
    tables: [{ caption: "one deploy cycle, phase by phase", baseline: "cycle", rows: results, runs: ctx.heavyRuns }],
    notes: [
      `The twin's image: the test repository's NAS packages (busybox, dropbear and its libraries, the Debian kernel's machine modules); its initramfs is ${(initramfsBytes / 2 ** 20).toFixed(1)} MiB.`,
      "With the `switch` strategy DEFAULT flips inside `up`, before the reboot, so there is no separate promote step; " +
        "a `trial` deploy boots the slot once and promotes after the machine reports healthy, inside `up`.",
    ],
  };
}
