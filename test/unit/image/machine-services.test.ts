import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { parse as parseYaml } from "yaml";
import { parseImageConfig } from "../../../provider/image/plan";
import { machineEntries, sshHostKeysDir } from "../../../provider/image/machine-services";
import { debianBusyboxStatic } from "../../fixtures/debian-repo";
import { describeFailedChecks, parseHealthReport } from "../../../provider/machine/health-report";

const base = { packages: ["busybox"], repositories: ["/nowhere"], keys: ["/nowhere"] };

function errorOf(input: object): string {
  try {
    parseImageConfig({ ...base, ...input });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected the config to be refused");
}

test("bad machine inputs are refused naming the field, the value and what is accepted", () => {
  expect(errorOf({ network: { mode: "static" } })).toMatch(
    /network\.address: got nothing; expected an address such as 192\.168\.1\.10\/24 when mode is "static"/,
  );
  expect(errorOf({ network: { mode: "dhcp", address: "10.0.0.2/24" } })).toMatch(
    /network\.mode: got "dhcp"; expected "static" when address, gateway or dns are given/,
  );
  expect(errorOf({ network: { mode: "bootp" } })).toMatch(/network\.mode: got "bootp"; expected "dhcp" or "static"/);
  expect(errorOf({ network: { mode: "static", address: "10.0.0.2/24", gateway: "10.0.0.256" } })).toMatch(
    /network\.gateway: got "10\.0\.0\.256"; expected an IPv4 address/,
  );
  expect(errorOf({ dataDisk: { label: "my data" } })).toMatch(
    /dataDisk\.label: got "my data"; expected a filesystem label/,
  );
  expect(errorOf({ dataDisk: { label: "data", fs: "ntfs" } })).toMatch(
    /dataDisk\.fs: got "ntfs"; expected one of ext4, xfs, btrfs, vfat/,
  );
  expect(errorOf({ dataDisk: { label: "data", mountpoint: "data" } })).toMatch(
    /dataDisk\.mountpoint: got "data"; expected an absolute path/,
  );
  expect(errorOf({ bootPartition: { label: "RAMROOT", uuid: "5241-4D52" } })).toMatch(
    /bootPartition: got .*; expected exactly one of label or uuid/,
  );
  expect(errorOf({ sshHostKeys: {} })).toMatch(/sshHostKeys: got \{\}; expected a dataDisk too/);
  expect(errorOf({ dataDisk: { label: "data" }, sshHostKeys: { dir: "/etc/ssh" } })).toMatch(
    /sshHostKeys\.dir: got "\/etc\/ssh"; expected a directory under the data disk's mountpoint \/data/,
  );
});

function entriesOf(input: object, packages: string[] = ["busybox"]) {
  return machineEntries(parseImageConfig({ ...base, ...input }), packages);
}

function content(entries: ReturnType<typeof entriesOf>, p: string): string {
  const e = entries.find((x) => x.path === p);
  if (!e || !Buffer.isBuffer(e.source)) throw new Error(`no file ${p} among ${entries.map((x) => x.path).join(", ")}`);
  return e.source.toString("utf8");
}

test("every image publishes its image id; the other services come with their inputs, in the boot runlevel", () => {
  const plain = entriesOf({});
  expect(plain.filter((e) => e.type === "symlink").map((e) => `${e.path} -> ${e.linkTarget}`)).toEqual([
    "etc/runlevels/boot/ramroot-image-id -> /etc/init.d/ramroot-image-id",
  ]);
  expect(content(plain, "usr/libexec/ramroot/image-id")).toContain("/run/ramroot/image-id");

  const nas = entriesOf({
    network: { mode: "static", address: "192.168.1.10/24", gateway: "192.168.1.1", dns: ["192.168.1.1", "9.9.9.9"] },
    dataDisk: { label: "tank", mountpoint: "/srv" },
    bootPartition: { uuid: "5241-4D52" },
    sshHostKeys: {},
  });
  expect(nas.filter((e) => e.type === "symlink").map((e) => e.path.replace("etc/runlevels/", ""))).toEqual([
    "boot/ramroot-image-id",
    "boot/ramroot-mounts",
    "shutdown/ramroot-mounts-stop",
    "boot/ramroot-network",
    "boot/ramroot-ssh-host-keys",
  ]);
  const conf = content(nas, "etc/ramroot/machine.conf");
  expect(conf).toContain(
    "NET_MODE='static'\nNET_ADDRESS='192.168.1.10/24'\nNET_GATEWAY='192.168.1.1'\nNET_DNS='192.168.1.1 9.9.9.9'",
  );
  expect(conf).toContain("BOOT_SPEC='UUID=5241-4D52'\nBOOT_MOUNTPOINT='/media/boot'");
  expect(conf).toContain("DATA_LABEL='tank'\nDATA_MOUNTPOINT='/srv'\nDATA_FS='ext4'");
  expect(conf).toContain(`SSH_KEYS_DIR='${sshHostKeysDir("/srv")}'`);
  // Same inputs, same entries (they are part of the plan's overlay digest).
  expect(entriesOf({ dataDisk: { label: "tank" } })).toEqual(entriesOf({ dataDisk: { label: "tank" } }));
});

test("init scripts are OpenRC's when the image has OpenRC, else runner scripts; every script parses in busybox sh and passes shellcheck", () => {
  const input = {
    network: { mode: "dhcp" },
    dataDisk: { label: "data" },
    bootPartition: { label: "RAMROOT" },
    sshHostKeys: {},
    health: { checks: [{ name: "sshd", command: "nc -z 127.0.0.1 22" }] },
  };
  const openrc = entriesOf(input, ["busybox", "openrc"]);
  expect(content(openrc, "etc/init.d/ramroot-ssh-host-keys")).toMatch(
    /^#!\/sbin\/openrc-run\n[\s\S]*depend\(\) \{\n\tneed ramroot-mounts\n\tbefore sshd dropbear\n\}/,
  );
  expect(content(openrc, "etc/init.d/ramroot-mounts")).toMatch(
    /\nstop\(\) \{\n.*\n\t\/usr\/libexec\/ramroot\/mounts stop\n/,
  );
  expect(openrc.some((e) => e.path.startsWith("etc/runlevels/shutdown/"))).toBe(false);
  expect(content(entriesOf(input), "etc/init.d/ramroot-network")).toMatch(
    /^#!\/bin\/sh\n[\s\S]*start\) exec \/usr\/libexec\/ramroot\/network start ;;/,
  );
  expect(content(entriesOf(input), "etc/init.d/ramroot-mounts-stop")).toContain(
    "start) exec /usr/libexec/ramroot/mounts stop ;;",
  );
  const busybox = debianBusyboxStatic();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-machine-services-"));
  try {
    for (const e of [...openrc, ...entriesOf(input)]) {
      if (e.type !== "file" || !Buffer.isBuffer(e.source) || !e.source.toString().startsWith("#!")) continue;
      const file = path.join(dir, "script");
      // openrc-run scripts are sh with functions; check them as sh.
      fs.writeFileSync(file, e.source);
      expect(() => execFileSync(busybox, ["sh", "-n", file], { stdio: "pipe" })).not.toThrow();
      // Debian's shellcheck, as `npm test` runs it on provider/machine/*.sh; OpenRC reads an
      // init script's `description` and gives `after *` its meaning (every other service).
      const openrcOnly = e.source.toString().startsWith("#!/sbin/openrc-run") ? ["--exclude=SC2034,SC2035"] : [];
      const lint = spawnSync("shellcheck", ["--shell=sh", ...openrcOnly, file], { encoding: "utf8" });
      expect({ path: e.path, findings: lint.stdout, status: lint.status }).toEqual({
        path: e.path,
        findings: "",
        status: 0,
      });
      expect(e.mode).toBe(0o755);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("bad health inputs are refused naming the field, the value and what is accepted", () => {
  expect(errorOf({ health: { checks: [] } })).toMatch(/health\.checks: got \[\]; expected at least one check/);
  expect(errorOf({ health: { checks: [{ name: "SSH d", command: "true" }] } })).toMatch(
    /health\.checks\[0\]\.name: got "SSH d"; expected a check name of 1-32 lower-case letters/,
  );
  expect(errorOf({ health: { checks: [{ name: "sshd", command: "" }] } })).toMatch(
    /health\.checks\[0\]\.command: got ""; expected a shell command that exits 0/,
  );
  expect(
    errorOf({
      health: {
        checks: [
          { name: "a", command: "true" },
          { name: "a", command: "false" },
        ],
      },
    }),
  ).toMatch(/health\.checks: got .*; expected unique check names/);
  expect(errorOf({ health: { checks: [{ name: "a", command: "true" }], timeoutSeconds: 5 } })).toMatch(
    /health\.timeoutSeconds: got 5; expected at least 10 seconds/,
  );
  expect(errorOf({ cmdline: "console=ttyS0 ramroot.trial=1" })).toMatch(
    /cmdline: got "console=ttyS0 ramroot\.trial=1"; expected no ramroot\.image=, ramroot\.slot= or ramroot\.trial=/,
  );
  // a user's ramroot.slot= would make the running slot read as the one it names
  expect(errorOf({ cmdline: "ramroot.slot=b" })).toMatch(/cmdline: got "ramroot\.slot=b"; expected no ramroot\.image=/);
});

test("the health guard comes with health checks, in the default runlevel, its checks in the config's order", () => {
  const entries = entriesOf({
    health: {
      checks: [
        { name: "sshd", command: "nc -z 127.0.0.1 22" },
        { name: "data", command: "grep -q ' /data ' /proc/mounts" },
      ],
      timeoutSeconds: 120,
    },
  });
  expect(entries.filter((e) => e.type === "symlink").map((e) => e.path)).toEqual([
    "etc/runlevels/boot/ramroot-image-id",
    "etc/runlevels/default/ramroot-guard",
  ]);
  expect(entries.filter((e) => e.path.startsWith("etc/ramroot/health.d")).map((e) => e.path)).toEqual([
    "etc/ramroot/health.d",
    "etc/ramroot/health.d/01-sshd",
    "etc/ramroot/health.d/02-data",
  ]);
  expect(content(entries, "etc/ramroot/health.d/01-sshd")).toBe("nc -z 127.0.0.1 22\n");
  expect(content(entries, "etc/ramroot/machine.conf")).toContain(
    "HEALTH_TIMEOUT='120'\nHEALTH_INTERVAL='5'\nHEALTH_WATCHDOG='yes'",
  );
  expect(entriesOf({}).some((e) => e.path.includes("guard"))).toBe(false);
});

/** Runs the image's guard script (`run`, in the foreground) in busybox sh with its files moved to a temp dir. */
function runGuard(checks: Record<string, string>, timeoutSeconds: number): { report: string; console: string } {
  const entries = entriesOf({
    health: {
      checks: Object.entries(checks).map(([name, command]) => ({ name, command })),
      timeoutSeconds,
      intervalSeconds: 1,
    },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-guard-"));
  try {
    const run = path.join(dir, "run");
    const checksDir = path.join(dir, "health.d");
    fs.mkdirSync(run);
    fs.mkdirSync(checksDir);
    fs.writeFileSync(path.join(run, "image-id"), "3f9c0000\n");
    for (const e of entries) {
      if (e.type === "file" && e.path.startsWith("etc/ramroot/health.d/"))
        fs.writeFileSync(path.join(checksDir, path.basename(e.path)), e.source as Buffer);
    }
    fs.writeFileSync(path.join(dir, "machine.conf"), content(entries, "etc/ramroot/machine.conf"));
    fs.writeFileSync(path.join(dir, "guard"), content(entries, "usr/libexec/ramroot/guard"), { mode: 0o755 });
    // busybox's applets (timeout, sed, head) ahead of the host's, as on the machine
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const busybox = debianBusyboxStatic();
    for (const applet of ["sh", "timeout", "sed", "head", "grep", "cut", "cat", "mv", "sleep", "printf"])
      fs.symlinkSync(busybox, path.join(bin, applet));
    const out = execFileSync(busybox, ["sh", path.join(dir, "guard"), "run"], {
      env: {
        PATH: `${bin}:/usr/bin:/bin`,
        RAMROOT_CONF: path.join(dir, "machine.conf"),
        RAMROOT_RUN: run,
        RAMROOT_CHECKS: checksDir,
      },
      encoding: "utf8",
    });
    return { report: fs.readFileSync(path.join(run, "health"), "utf8"), console: out };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("the guard publishes healthy when every check passes, each check's output in the report", () => {
  const { report, console } = runGuard({ first: "echo fine", second: "true" }, 600);
  expect(report).toMatch(
    /^image 3f9c0000\ntrial no\nstatus healthy\nuptime \d+\ncheck first ok\n  fine\ncheck second ok\n$/,
  );
  expect(console).toMatch(/ramroot-guard: healthy at \d+ s/);
  const parsed = parseHealthReport(report)!;
  expect(parsed).toMatchObject({ imageId: "3f9c0000", trial: false, status: "healthy" });
  expect(parsed.checks).toEqual([
    { name: "first", ok: true, result: "ok", output: "fine" },
    { name: "second", ok: true, result: "ok", output: "" },
  ]);
});

test("past its time (counted from boot) the guard publishes unhealthy with the failed check's output; off a trial it does not reboot", () => {
  // timeoutSeconds 10 is long past on this host (its uptime), so one round decides.
  const { report, console } = runGuard({ sshd: "echo 'nothing listens on port 22' >&2; exit 3", up: "true" }, 10);
  const parsed = parseHealthReport(report)!;
  expect(parsed).toMatchObject({ imageId: "3f9c0000", trial: false, status: "unhealthy" });
  expect(parsed.checks[0]).toEqual({
    name: "sshd",
    ok: false,
    result: "failed (exit 3)",
    output: "nothing listens on port 22",
  });
  expect(describeFailedChecks(parsed)).toBe("check sshd failed (exit 3):\n    nothing listens on port 22");
  expect(console).toContain("ramroot-guard: | check sshd failed (exit 3)");
  expect(console).not.toMatch(/rebooting/);
});

test("the nas stack's image (stacks/Pulumi.nas.yaml) validates: extlinux for the trial's once-boot, a guard with its checks", () => {
  const stack = parseYaml(fs.readFileSync(path.join(__dirname, "../../../stacks/Pulumi.nas.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  expect(stack.config["ramroot:strategy"]).toBe("trial");
  const config = parseImageConfig(stack.config["ramroot:image"]);
  expect(config.packages).toContain("syslinux"); // Alpine's syslinux brings extlinux
  const entries = machineEntries(config, config.packages);
  expect(entries.filter((e) => e.path.startsWith("etc/ramroot/health.d/")).map((e) => e.path)).toEqual([
    "etc/ramroot/health.d/01-sshd",
    "etc/ramroot/health.d/02-network",
    "etc/ramroot/health.d/03-data",
  ]);
  const busybox = debianBusyboxStatic();
  for (const check of config.health!.checks)
    expect(() => execFileSync(busybox, ["sh", "-n", "-c", check.command], { stdio: "pipe" })).not.toThrow();
});
