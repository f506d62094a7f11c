/**
 * The deploy cycle on the machine twin: a NAS-shaped image (the offline repository's dropbear,
 * DHCP, data disk, boot partition, health checks) on a syslinux disk booted with `ramroot vm`,
 * deployed to over ssh by the real `pulumi up` (this run's compiled program and provider
 * plugin). Each round edits one overlay file, builds the image with `ramroot build` into the
 * cache the provider reads, deploys it and follows the machine's console until its guard says
 * healthy: with strategy `switch` (up writes the idle slot and flips DEFAULT, then a reboot)
 * and with `trial` (up writes, boots the slot once, waits for the health report, promotes).
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
import type { BenchContext, ResultTable, SectionResult } from "./section";

const STACK = "bench-deploy";

/** What the console shows at each step of a boot, and the guard's verdict. */
const CONSOLE = {
  restart: /reboot: Restarting system/,
  sshd: SSHD_READY,
  healthy: /ramroot-guard: healthy at \d+ s/,
} as const;

/**
 * Notes the host time at which each console pattern first shows after `start()` (the serial log
 * is read every 100 ms), so the phases of an `up` that reboots the machine itself are seen
 * from outside.
 */
function consoleClock(serialLog: string) {
  const count = (re: RegExp, log: string) => log.match(new RegExp(re.source, "g"))?.length ?? 0;
  const read = () => (fs.existsSync(serialLog) ? fs.readFileSync(serialLog, "utf8") : "");
  const before = new Map<string, number>();
  const seen = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    const log = read();
    for (const [name, re] of Object.entries(CONSOLE))
      if (!seen.has(name) && count(re, log) > before.get(name)!) seen.set(name, Date.now());
  };
  return {
    start() {
      const log = read();
      before.clear();
      seen.clear();
      for (const [name, re] of Object.entries(CONSOLE)) before.set(name, count(re, log));
      timer = setInterval(tick, 100);
    },
    /** The time `name` showed; waits for it (up to `timeoutMs`) when it has not yet. */
    async when(name: keyof typeof CONSOLE, timeoutMs = 600_000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      while (!seen.has(name)) {
        if (Date.now() > deadline) throw new Error(`deploy bench: the console never showed ${CONSOLE[name]}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return seen.get(name)!;
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}

const PHASES = {
  switch: [
    ["build", "ramroot build image.yaml --cache IMAGES  # the edited image, into the cache the provider reads"],
    ["write", "pulumi up  # plan, find the built image, copy it to the idle slot over ssh, verify, switch DEFAULT"],
    ["reboot", "ssh root@machine reboot  # until the console shows sshd listening"],
    ["healthy", "until the guard's console line: ramroot-guard: healthy"],
    ["cycle", "build + write + reboot + healthy"],
  ],
  trial: [
    ["build", "ramroot build image.yaml --cache IMAGES"],
    ["write", "pulumi up, until the machine restarts  # copy to the idle slot, verify, set the once-boot, reboot"],
    ["reboot", "until the console shows sshd listening (the once-boot of the new slot)"],
    ["healthy", "until the guard's console line: ramroot-guard: healthy"],
    ["promote", "until pulumi up ends  # its probe (every 5 s) reads the health report over ssh, DEFAULT written"],
    ["cycle", "build + write + reboot + healthy + promote"],
  ],
} as const;
type Strategy = keyof typeof PHASES;

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

interface SshCounts {
  connections: number;
  roundTrips: number;
  channels: number;
}

function sshCounts(trace: string): SshCounts {
  const events = fs.existsSync(trace) ? fs.readFileSync(trace, "utf8").split("\n") : [];
  const count = (event: string) => events.filter((e) => e.split(" ")[0] === event).length;
  return { connections: count("connect"), roundTrips: count("exchange"), channels: count("channel") };
}

function describeCounts(c: SshCounts | undefined): string {
  return c ? `${c.connections} connection(s), ${c.roundTrips} round trips, ${c.channels} channel(s)` : "not measured";
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
  const config = {
    ...nasImageConfig(repo, overlay),
    cmdline: "console=ttyS0",
    health: {
      checks: [
        { name: "sshd", command: "netstat -ltn | grep -q ':22 '" },
        { name: "data", command: "grep -q ' /data ' /proc/mounts" },
      ],
      timeoutSeconds: 300,
      intervalSeconds: 1,
    },
  };
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
  /** `pulumi up` with the provider's ssh events counted (ssh-target.ts's RAMROOT_SSH_TRACE). */
  const tracedUp = async (): Promise<SshCounts> => {
    const trace = path.join(dir, `ssh-trace-${++traced}`);
    await execa("pulumi", ["up", "--yes", "--skip-preview", "--stack", STACK, "--non-interactive"], {
      cwd: project,
      env: { ...env, RAMROOT_SSH_TRACE: trace },
    });
    return sshCounts(trace);
  };
  let traced = 0;
  const sshUse: { write?: SshCounts; idle?: SshCounts } = {};

  const samples: Record<Strategy, Map<string, number[]>> = {
    switch: new Map(PHASES.switch.map(([id]) => [id, []])),
    trial: new Map(PHASES.trial.map(([id]) => [id, []])),
  };
  const clock = consoleClock(twin.serialLog);
  let initramfsBytes = 0;
  let round = 0;
  try {
    await startMachine(twin);
    const hostKeys = consoleHostKeys(
      await waitForConsole(twin.serialLog, SSHD_READY, { timeoutMs: 600_000, pidFile: twin.pidFile }),
    );
    const knownHosts = path.join(dir, "ssh", "known_hosts");
    fs.writeFileSync(knownHosts, knownHostsLines(twin.sshPort, hostKeys));
    const ssh = machineSshArgs(twin.sshPort, userKey, knownHosts);
    await execa("pulumi", ["stack", "init", STACK, "--non-interactive"], { cwd: project, env });
    for (const [key, { value }] of Object.entries(twinStackConfig(twin.sshPort, userKey, knownHosts, config)))
      await pulumi("config", "set", key, value);

    for (const strategy of ["switch", "trial"] as const) {
      await pulumi("config", "set", "ramroot:strategy", strategy);
      if (strategy === "trial") await pulumi("config", "set", "ramroot:trial", JSON.stringify({ timeoutSeconds: 600 }));
      for (let n = 1; n <= ctx.heavyRuns; n++) {
        release(`bench ${++round}`);
        const t0 = Date.now();
        const built = await buildImage(path.join(dir, "image.yaml"), config, images);
        const tBuilt = Date.now();
        clock.start();
        const counts = await tracedUp();
        const tUp = Date.now();
        if (strategy === "switch") sshUse.write ??= counts;
        const deployed = (await pulumi("stack", "output", "imageId")).stdout.trim();
        if (deployed !== built.imageId)
          throw new Error(
            `${strategy} round ${n}: pulumi up deployed image ${deployed}, not the one ramroot build made (${built.imageId}): its time would include a build`,
          );
        let seconds: number[];
        if (strategy === "switch") {
          await rebootMachine(ssh);
          const sshd = await clock.when("sshd");
          const healthy = await clock.when("healthy");
          seconds = [tBuilt - t0, tUp - tBuilt, sshd - tUp, healthy - sshd, healthy - t0];
        } else {
          // The once-boot, the health report and the promotion all happen inside up.
          const restart = await clock.when("restart");
          const sshd = await clock.when("sshd");
          const healthy = await clock.when("healthy");
          seconds = [tBuilt - t0, restart - tBuilt, sshd - restart, healthy - sshd, tUp - healthy, tUp - t0];
        }
        clock.stop();
        const running = (await onMachine(ssh, "cat /run/ramroot/image-id")).trim();
        const slot = /BOOT_IMAGE=\/([ab])\//.exec(await onMachine(ssh, "cat /proc/cmdline"))?.[1];
        const defaultLabel = (await onMachine(ssh, "sed -n 's/^DEFAULT //p' /media/boot/syslinux.cfg")).trim();
        if (running !== deployed || defaultLabel !== slot)
          throw new Error(
            `${strategy} round ${n}: the machine runs image ${running} from slot ${slot}, DEFAULT ${defaultLabel}; expected ${deployed}, DEFAULT its slot`,
          );
        initramfsBytes = Number(await onMachine(ssh, `wc -c < /media/boot/${slot}/initramfs`));
        // The same stack again, nothing to copy: what an `up` costs in round trips when nothing changed.
        if (strategy === "switch") sshUse.idle ??= await tracedUp();
        PHASES[strategy].forEach(([id], i) => samples[strategy].get(id)!.push(seconds[i]! / 1000));
        ctx.log(
          `  [${strategy} ${n}/${ctx.heavyRuns}] slot ${slot}: ${PHASES[strategy].map(([id], i) => `${id} ${(seconds[i]! / 1000).toFixed(1)} s`).join(", ")}`,
        );
      }
    }
  } finally {
    clock.stop();
    await stopTwin(twin.pidFile);
  }
  const table = (strategy: Strategy, caption: string): ResultTable => ({
    caption,
    baseline: "cycle",
    rows: PHASES[strategy].map(([id, command]): VariantResult => {
      const s = samples[strategy].get(id)!;
      return { label: id, command, samples: s.map((seconds): Sample => ({ seconds })), medianSeconds: median(s) };
    }),
    runs: ctx.heavyRuns,
  });
  return {
    id: "deploy",
    title: "Deploy cycle on the machine twin",
    intro:
      "A one-file edit deployed over ssh to the QEMU twin (TCG, one vCPU, `ramroot vm`: virtio disks, user-mode networking) by `pulumi up`, " +
      "followed on the machine's serial console until its guard reports the new image healthy (checks: sshd listens, /data mounted; every 1 s). " +
      "The phases are host times of the console lines (read every 100 ms). Each round builds a new image (the package layer cached) with " +
      "`ramroot build` into the image cache the provider reads, so `up` finds it, and writes it to the idle slot.",
    tables: [
      table("switch", "strategy switch: up writes and flips DEFAULT, then a reboot"),
      table("trial", "strategy trial: up writes, boots the slot once, waits for the health report, promotes"),
    ],
    notes: [
      `The twin's image: the test repository's NAS packages (busybox, dropbear and its libraries, extlinux, the Debian kernel's machine modules); its initramfs is ${(initramfsBytes / 2 ** 20).toFixed(1)} MiB.`,
      "In a trial the write phase ends when the machine restarts, so it holds the guest's shutdown too; promote is bounded below by the provider's 5 s probe interval.",
      `ssh per \`pulumi up\` (counted by RAMROOT_SSH_TRACE; a round trip is one command through the session's remote shell, a channel carries a file's bytes): one that writes the slot (switch): ${describeCounts(sshUse.write)}; the same stack again with nothing to copy: ${describeCounts(sshUse.idle)}.`,
    ],
  };
}
