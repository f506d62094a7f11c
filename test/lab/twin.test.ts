import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { execa } from "execa";
import { stringify as toYaml } from "yaml";
import { freePort, stopTwin, waitForConsole } from "../../provider/qemu/twin";
import { ramroot, ramrootArgv } from "../fixtures/debian-repo";
import { buildNasRepo, type NasRepo } from "../fixtures/nas-repo";
import { machineProgram } from "../../components/machine-program";
import { engineStack } from "../engine/pulumi-harness";

// The machine twin: a NAS-shaped image from the offline repository (dropbear, DHCP, a data disk
// by label, the boot partition, host keys kept on the data disk) on a syslinux disk made with
// the ramroot CLI, booted with `ramroot vm` (QEMU without KVM: each boot takes a minute or so),
// then deployed to over ssh by the real pulumi.
jest.setTimeout(1_800_000);

let work: string;
let repo: NasRepo;
const running: string[] = [];
/** The first test's machine (boot disk, data disk), booted again in the foreground by the second. */
let machine:
  | {
      disk: string;
      data: string;
      config: Record<string, unknown>;
      project: string;
      userKey: string;
      hostKeys: string[];
      imageId: string;
    }
  | undefined;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-twin-"));
  repo = await buildNasRepo(path.join(work, "repo"));
});
afterAll(async () => {
  for (const pidFile of running) await stopTwin(pidFile);
  fs.rmSync(work, { recursive: true, force: true });
});

/** Runs the test body; on failure the machine's serial log is kept outside the work directory and named in the error. */
async function keepingSerialLog(serialLog: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const kept = path.join(os.tmpdir(), `ramroot-twin-serial-${Date.now()}.log`);
    if (fs.existsSync(serialLog)) fs.copyFileSync(serialLog, kept);
    (err as Error).message += `\n(the machine's serial log is kept in ${kept})`;
    throw err;
  }
}

test("a NAS image on the twin: strict ssh, the image id published, the slot read over ssh, data and host key kept across a reboot, a watchdog reset", async () => {
  const started = Date.now();
  const project = path.join(work, "nas");
  const ssh = path.join(work, "ssh");
  fs.mkdirSync(ssh);
  const userKey = path.join(ssh, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ramroot-twin-test", "-f", userKey]);
  // Only the public key enters the image.
  fs.mkdirSync(path.join(project, "root", "root", ".ssh"), { recursive: true });
  fs.copyFileSync(`${userKey}.pub`, path.join(project, "root", "root", ".ssh", "authorized_keys"));
  const config = {
    repositories: [repo.repository],
    keys: [repo.keysDir],
    packages: repo.nasPackages,
    kernel: "lts",
    overlay: "root",
    hostname: "nas-twin",
    services: { boot: ["hostname"], default: ["dropbear"] },
    network: { mode: "dhcp" },
    dataDisk: { label: "nasdata", mountpoint: "/data" },
    bootPartition: { label: "RAMROOT", mountpoint: "/media/boot" },
    sshHostKeys: {},
    epoch: 1700000000,
  };
  fs.writeFileSync(path.join(project, "image.yaml"), toYaml(config));
  const built = await ramroot("build", path.join(project, "image.yaml"), "--cache", path.join(work, "images"));
  const imageId = /imageId\s+([0-9a-f]{64})/.exec(built)![1]!;
  const planId = /planId\s+([0-9a-f]{64})/.exec(built)![1]!;
  const kernel = /kernel\s+(\S+)/.exec(built)![1]!;
  const initramfs = /initramfs\s+(\S+)/.exec(built)![1]!;
  const builtAt = Date.now();

  // The machine's boot disk, through the ramroot CLI: disk, slot a, syslinux DEFAULT a.
  const disk = path.join(work, "boot.img");
  await ramroot("disk", "create", "--size", "64", "--layout", "mbr", "--slots", "a,b", disk);
  await ramroot(
    "slot",
    "write",
    "--image",
    disk,
    "--slot",
    "a",
    "--kernel",
    kernel,
    "--initramfs",
    initramfs,
    "--image-id",
    imageId,
    "--plan-id",
    planId,
  );
  await ramroot(
    "syslinux",
    "write",
    "--image",
    disk,
    "--default",
    "a",
    "--slots",
    "a",
    "--append",
    `rdinit=/sbin/init console=ttyS0 ramroot.image=${imageId} panic=10`,
  );

  const port = await freePort();
  const serialLog = path.join(work, "serial.log");
  const pidFile = path.join(work, "qemu.pid");
  const data = path.join(work, "data.img");
  await keepingSerialLog(serialLog, async () => {
    const out = JSON.parse(
      await ramroot(
        "vm",
        "--disk",
        disk,
        "--data",
        data,
        "--data-size",
        "64",
        "--data-label",
        "nasdata",
        "--ssh-port",
        String(port),
        "--serial-log",
        serialLog,
        "--pid-file",
        pidFile,
        "--watchdog",
        "--detach",
      ),
    );
    running.push(pidFile);
    expect(out).toEqual(expect.objectContaining({ sshPort: port, pidFile, serialLog }));
    const ready = /dropbear: listening on port 22/;
    const first = await waitForConsole(serialLog, ready, { timeoutMs: 600_000, pidFile });
    const firstBoot = Date.now();

    // First contact: the host keys the machine printed on its console, and nothing else, are trusted.
    const hostKeys = [...first.matchAll(/ramroot: ssh host key (\S+ AAAA\S+)/g)].map((m) => m[1]!);
    expect(hostKeys.map((k) => k.split(" ")[0])).toEqual(["ssh-ed25519", "ecdsa-sha2-nistp256"]);
    const knownHosts = path.join(ssh, "known_hosts");
    fs.writeFileSync(knownHosts, hostKeys.map((k) => `[127.0.0.1]:${port} ${k}\n`).join(""));
    const wrongKnownHosts = path.join(ssh, "known_hosts_wrong");
    fs.writeFileSync(
      wrongKnownHosts,
      `[127.0.0.1]:${port} ${fs.readFileSync(`${userKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`,
    );
    const sshArgs = (known: string) => [
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "ConnectTimeout=30",
      "-i",
      userKey,
      "-p",
      String(port),
      "root@127.0.0.1",
    ];
    const onMachine = async (script: string) => (await execa("ssh", [...sshArgs(knownHosts), script])).stdout;

    expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(imageId);
    expect(await onMachine("hostname")).toBe("nas-twin");
    // The data disk and the boot partition are mounted by label; the boot partition holds slot a.
    const mounts = await onMachine("cat /proc/mounts");
    expect(mounts).toMatch(/ \/data ext4 rw/);
    expect(mounts).toMatch(/ \/media\/boot vfat rw/);
    expect(await onMachine("cat /media/boot/a/manifest.json")).toContain(imageId);
    // The names the boot target uses (an 8.3-only name such as vmlinuz reads back in lower case).
    expect((await onMachine("ls /media/boot/a")).split("\n").sort()).toEqual(["initramfs", "manifest.json", "vmlinuz"]);
    // The boot side reads the slot over ssh from the running machine, as a deploy does.
    const sshTarget = [
      "--ssh",
      "root@127.0.0.1:/media/boot",
      "--port",
      String(port),
      "--identity",
      userKey,
      "--known-hosts",
      knownHosts,
    ];
    const slotA = JSON.parse(await ramroot("slot", "show", "--slot", "a", ...sshTarget));
    expect(slotA).toEqual(
      expect.objectContaining({ consistent: true, manifest: expect.objectContaining({ imageId }) }),
    );
    // Modules load through modprobe (modules.dep made at build): the NIC's driver is loaded.
    expect(await onMachine("cat /proc/modules")).toMatch(/^virtio_net /m);
    const note = `kept across reboots ${Date.now()}`;
    await onMachine(`echo '${note}' > /data/note && sync`);
    // Strict host key checking is real: a wrong key is refused.
    const refused = await execa("ssh", [...sshArgs(wrongKnownHosts), "true"], { reject: false });
    expect(refused.exitCode).toBe(255);
    expect(refused.stderr).toMatch(/host key/i);

    // Reboot the machine (through syslinux again): same host key, the file is still there.
    await execa("ssh", [...sshArgs(knownHosts), "reboot"], { reject: false });
    const second = await waitForConsole(serialLog, ready, { count: 2, timeoutMs: 600_000, pidFile });
    const secondBoot = Date.now();
    const secondKeys = [...second.matchAll(/ramroot: ssh host key (\S+ AAAA\S+)/g)]
      .map((m) => m[1]!)
      .slice(hostKeys.length);
    expect(secondKeys).toEqual(hostKeys);
    // The shutdown unmounted both disks: neither needed a repair on the way back.
    const afterReboot = second.slice(second.indexOf("Requesting system reboot"));
    expect(afterReboot).not.toMatch(/not properly unmounted|recovery complete/);
    expect((await onMachine("cat /data/note")).trim()).toBe(note);
    expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(imageId);

    // The i6300esb watchdog (--watchdog): opened and then no longer fed, it resets the machine
    // (QEMU's -action watchdog=reset), which boots again through syslinux by itself.
    expect(await onMachine("ls /dev/watchdog")).toBe("/dev/watchdog");
    await onMachine("sync; exec 3>/dev/watchdog; echo armed");
    const third = await waitForConsole(serialLog, ready, { count: 3, timeoutMs: 600_000, pidFile });
    const watchdogReset = Date.now();
    expect(third.slice(third.lastIndexOf("Requesting system reboot"))).toMatch(/watchdog did not stop/);
    expect((await onMachine("cat /data/note")).trim()).toBe(note);

    await ramroot("vm", "stop", "--pid-file", pidFile);
    expect(fs.existsSync(pidFile)).toBe(false);
    machine = { disk, data, config, project, userKey, hostKeys, imageId };
    process.stderr.write(
      `[twin] build ${((builtAt - started) / 1000).toFixed(0)} s, first boot to sshd ${((firstBoot - builtAt) / 1000).toFixed(0)} s, ` +
        `reboot to sshd ${((secondBoot - firstBoot) / 1000).toFixed(0)} s, watchdog reset to sshd ${((watchdogReset - secondBoot) / 1000).toFixed(0)} s, total ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
    );
  });
});

test("pulumi up over ssh to the running twin: the new image goes to slot b, DEFAULT b, and after a reboot the machine runs it, same host key, data kept", async () => {
  if (!machine) throw new Error("needs the machine of the first test");
  const m = machine;
  const port = await freePort();
  const serialLog = path.join(work, "deploy-serial.log");
  const pidFile = path.join(work, "deploy-qemu.pid");
  await keepingSerialLog(serialLog, async () => {
    await ramroot(
      "vm",
      "--disk",
      m.disk,
      "--data",
      m.data,
      "--ssh-port",
      String(port),
      "--serial-log",
      serialLog,
      "--pid-file",
      pidFile,
      "--detach",
    );
    running.push(pidFile);
    const ready = /dropbear: listening on port 22/;
    await waitForConsole(serialLog, ready, { timeoutMs: 600_000, pidFile });
    const ssh = path.join(work, "deploy-ssh");
    fs.mkdirSync(ssh);
    const knownHosts = path.join(ssh, "known_hosts");
    fs.writeFileSync(knownHosts, m.hostKeys.map((k) => `[127.0.0.1]:${port} ${k}\n`).join(""));
    const sshConfig = path.join(ssh, "config");
    fs.writeFileSync(sshConfig, `Host 127.0.0.1\n  IdentityFile ${m.userKey}\n  IdentitiesOnly yes\n  BatchMode yes\n`);
    const onMachine = async (script: string) =>
      (
        await execa("ssh", [
          "-F",
          sshConfig,
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          `UserKnownHostsFile=${knownHosts}`,
          "-p",
          String(port),
          "root@127.0.0.1",
          script,
        ])
      ).stdout;

    // The same machine config with one overlay file more: a new image.
    fs.mkdirSync(path.join(m.project, "root", "etc", "ramroot"), { recursive: true });
    fs.writeFileSync(path.join(m.project, "root", "etc", "ramroot", "release"), "second\n");
    const env = await engineStack("twin", async () => machineProgram());
    try {
      process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
      const image = { ...m.config, overlay: path.join(m.project, "root"), cmdline: "console=ttyS0" };
      await env.stack.setAllConfig({
        "ramroot:target": {
          value: JSON.stringify({
            kind: "ssh",
            host: "127.0.0.1",
            port,
            user: "root",
            path: "/media/boot",
            knownHostsFile: knownHosts,
            sshConfigFile: sshConfig,
          }),
        },
        "ramroot:image": { value: JSON.stringify(image) },
      });
      const up = await env.stack.up();
      expect(up.summary.result).toBe("succeeded");
      expect(up.outputs.activeSlot!.value).toBe("b");
      const deployed = up.outputs.imageId!.value as string;
      expect(deployed).not.toBe(m.imageId);
      expect(await onMachine("sed -n 's/^DEFAULT //p' /media/boot/syslinux.cfg")).toBe("b");

      await execa(
        "ssh",
        [
          "-F",
          sshConfig,
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          `UserKnownHostsFile=${knownHosts}`,
          "-p",
          String(port),
          "root@127.0.0.1",
          "reboot",
        ],
        { reject: false },
      );
      await waitForConsole(serialLog, ready, { count: 2, timeoutMs: 600_000, pidFile });
      expect((await onMachine("cat /run/ramroot/image-id")).trim()).toBe(deployed);
      expect(await onMachine("cat /etc/ramroot/release")).toBe("second");
      expect(await onMachine("cat /proc/cmdline")).toMatch(/BOOT_IMAGE=\/b\/vmlinuz/);
      expect((await onMachine("cat /data/note")).trim()).toMatch(/^kept across reboots/);
    } finally {
      await env.cleanup();
      delete process.env.RAMROOT_IMAGE_CACHE;
    }
    await ramroot("vm", "stop", "--pid-file", pidFile);
  });
});

test("ramroot vm in the foreground: the console on the terminal and in the log, Ctrl-A X quits", async () => {
  if (!machine) throw new Error("needs the machine of the first test");
  const serialLog = path.join(work, "foreground.log");
  const cli = execa(
    process.execPath,
    ramrootArgv("vm", "--disk", machine.disk, "--data", machine.data, "--serial-log", serialLog),
    { stdin: "pipe", reject: false },
  );
  let console = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no kernel output on the terminal within 300 s:\n${console.slice(-2000)}`)),
      300_000,
    );
    cli.stdout!.on("data", (chunk: Buffer) => {
      console += chunk.toString();
      if (/Run \/sbin\/init as init process/.test(console)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  cli.stdin!.write("\x01x");
  const result = await cli;
  expect(result.exitCode).toBe(0);
  expect(result.stderr).toMatch(/ssh on 127\.0\.0\.1:\d+, data disk .*; Ctrl-A X quits/);
  expect(fs.readFileSync(serialLog, "utf8")).toMatch(/Run \/sbin\/init as init process/);
});
