/**
 * A validly signed package whose post-install tries everything host root could do, built with
 * the real `ramroot build` (as root, as the suite runs): it must run under the sandbox's host
 * ids (systemd's foreign range, sandbox-ids.ts), so every attempt on the host fails and the
 * host's canaries hold, while what it may do (own and chown files of its root) still reaches
 * the image with the ids it gave.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";
import { cachedMinirootfs } from "../fixtures/alpine-minirootfs";
import { plantCanaries } from "../fixtures/host-canaries";
import { hostileBuilds } from "../fixtures/hostile-builds";
import { buildRepo, signingKey, userland } from "../fixtures/hostile-repo";
import { ptraceProbe } from "../fixtures/ptrace-probe";
import { readImage } from "../../provider/image/initramfs-reader";
import { SANDBOX_ID_BASE } from "../../provider/apk/sandbox-ids";

jest.setTimeout(600_000);

let cli: CompiledCli;
let work: string;

beforeAll(async () => {
  cli = await compileCli();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-sandbox-"));
});
afterAll(() => {
  cli?.dispose();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The post-install: each attempt prints "ESCAPE ..." when it works and "refused ..." when it does not. */
function hostileScript(opts: { host: string; pid: number; port: number; disk: [number, number]; printk: string }) {
  const attempt = (what: string, command: string) =>
    `if ${command}; then echo "ESCAPE ${what}"; else echo "refused ${what}"; fi`;
  return [
    "#!/bin/busybox sh",
    "B=/bin/busybox",
    'echo "uid_map $($B cat /proc/self/uid_map | $B tr -s " ")"',
    'echo "proc/sys holds [$($B ls /proc/sys)]"',
    attempt("sysctl kernel.printk_ratelimit", `echo ${opts.printk} 2>/dev/null > /proc/sys/kernel/printk_ratelimit`),
    attempt("sysctl kernel.core_pattern", `echo '|/bin/sh -c reboot' 2>/dev/null > /proc/sys/kernel/core_pattern`),
    attempt("sysctl -w", `$B sysctl -w kernel.printk_ratelimit=${opts.printk} >/dev/null 2>&1`),
    attempt("sysrq", `echo h 2>/dev/null > /proc/sysrq-trigger`),
    attempt("remount of /proc/sys", "$B mount -o remount,rw /proc/sys 2>/dev/null"),
    "$B mkdir -p /mnt/p /mnt/t /mnt/b",
    attempt("proc mount", "$B mount -t proc proc /mnt/p 2>/dev/null"),
    attempt("sysctl through a new proc", `echo ${opts.printk} 2>/dev/null > /mnt/p/sys/kernel/printk_ratelimit`),
    attempt("tmpfs mount", "$B mount -t tmpfs none /mnt/t 2>/dev/null"),
    attempt("bind mount", "$B mount --bind / /mnt/b 2>/dev/null"),
    attempt("mknod of the host disk", `$B mknod /tmp/hostdisk b ${opts.disk[0]} ${opts.disk[1]} 2>/dev/null`),
    attempt("read of the host disk", "$B dd if=/tmp/hostdisk of=/dev/null bs=512 count=1 2>/dev/null"),
    attempt("kill of the host process", `$B kill -9 ${opts.pid} 2>/dev/null`),
    "/usr/libexec/ptrace-probe; rc=$?",
    'if [ $rc = 0 ]; then echo "ESCAPE ptrace of the host process"; else echo "refused ptrace of the host process (errno $rc)"; fi',
    ...["/proc/1/root", ""].map((p) =>
      attempt(`host file through '${p}'`, `echo pwned 2>/dev/null > "${p}${opts.host}/canary"`),
    ),
    attempt("network", `$B nc -w 2 127.0.0.1 ${opts.port} </dev/null 2>/dev/null`),
    // What it may do: own and chown files of its root, as apk's scripts do.
    "echo mine > /root/made-by-script && echo theirs > /root/chowned-by-script || exit 20",
    "$B chown 1234:1234 /root/chowned-by-script && $B chmod 4750 /root/chowned-by-script || exit 21",
    "exit 1",
    "",
  ].join("\n");
}

test("a post-install trying sysctl writes, mounts, mknod of the host disk, ptrace and kill of a host process and the network fails at each, the host's canaries hold, and its own chown reaches the image", async () => {
  expect(process.getuid?.()).toBe(0); // the suite runs as root: what scripts would then hold is the point
  expect(process.arch).toBe("x64"); // the ptrace probe is an x86_64 program
  const dir = path.join(work, "hostile");
  const host = path.join(dir, "host");
  const snapshot = plantCanaries(host);
  const before = snapshot();
  const sysctl = (name: string) => fs.readFileSync(`/proc/sys/kernel/${name}`, "utf8");
  const sysctls = () => ({ printk: sysctl("printk_ratelimit"), core: sysctl("core_pattern") });
  const sysctlsBefore = sysctls();
  const mounts = () => fs.readFileSync("/proc/self/mountinfo", "utf8");
  const mountsBefore = mounts();
  const victim: ChildProcess = spawn("sleep", ["600"], { stdio: "ignore" });
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const rootDev = fs.statSync("/").dev;
    const probe = path.join(dir, "ptrace-probe");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(probe, ptraceProbe(victim.pid!), { mode: 0o755 });
    const script = hostileScript({
      host,
      pid: victim.pid!,
      port: (server.address() as net.AddressInfo).port,
      disk: [Math.floor(rootDev / 256) & 0xfff, rootDev & 0xff],
      printk: String(Number(sysctlsBefore.printk.trim()) + 1),
    });
    const key = signingKey(path.join(dir, "key"));
    const repo = buildRepo(dir, key, [
      ...userland(cachedMinirootfs()),
      {
        spec: { name: "hostile", version: "1.0-r0", depends: ["busybox"], scripts: { "post-install": script } },
        files: { root: { dir: true }, "usr/libexec/ptrace-probe": { copy: probe } },
      },
    ]);
    const { writeConfig, build } = hostileBuilds(cli, key);
    const r = await build(
      dir,
      writeConfig(dir, { repositories: [repo], packages: ["hostile"], allowScriptFailures: true }),
    );
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    // The script ran as root of a namespace whose ids are the foreign range, and saw no sysctls.
    expect(r.stderr).toMatch(new RegExp(`uid_map +0 ${SANDBOX_ID_BASE} 65536\n`));
    expect(r.stderr).toContain("proc/sys holds []");
    const attempts = [
      "sysctl kernel.printk_ratelimit",
      "sysctl kernel.core_pattern",
      "sysctl -w",
      "sysrq",
      "remount of /proc/sys",
      "proc mount",
      "sysctl through a new proc",
      "tmpfs mount",
      "bind mount",
      "mknod of the host disk",
      "read of the host disk",
      "kill of the host process",
      "host file through '/proc/1/root'",
      "host file through ''",
      "network",
    ];
    for (const what of attempts) expect(r.stderr).toContain(`refused ${what}`);
    expect(r.stderr).toMatch(/refused ptrace of the host process \(errno 3\)/);
    expect(r.stderr).not.toContain("ESCAPE");
    // The canaries: host files, sysctls, mounts, the host process, the listener.
    expect(snapshot()).toBe(before);
    expect(sysctls()).toEqual(sysctlsBefore);
    expect(mounts()).toBe(mountsBefore);
    expect(victim.exitCode).toBeNull();
    expect(process.kill(victim.pid!, 0)).toBe(true);
    expect(connections).toBe(0);

    // On the host, what the script made is owned by the foreign range, never by host root...
    const trees = path.join(dir, "images", "trees");
    const [tree] = fs.readdirSync(trees);
    const kept = (rel: string) => fs.lstatSync(path.join(trees, tree!, "root", rel));
    expect([kept("root/made-by-script").uid, kept("root/made-by-script").gid]).toEqual([
      SANDBOX_ID_BASE,
      SANDBOX_ID_BASE,
    ]);
    const chowned = kept("root/chowned-by-script");
    expect([chowned.uid, chowned.gid, chowned.mode & 0o7777]).toEqual([
      SANDBOX_ID_BASE + 1234,
      SANDBOX_ID_BASE + 1234,
      0o4750,
    ]);
    expect(fs.existsSync(path.join(trees, tree!, "root/tmp/hostdisk"))).toBe(false);
    // The caches holding that setuid file are their owner's alone.
    for (const cache of [path.join(dir, "cache"), path.join(dir, "images")])
      expect((fs.statSync(cache).mode & 0o777).toString(8)).toBe("700");
    // ... and the image carries the ids the script gave.
    const initramfs = /^initramfs\s+(\S+)/m.exec(r.stdout)![1]!;
    const image = await readImage(fs.readFileSync(initramfs), initramfs);
    const made = image.entries.get("root/made-by-script")!;
    expect([made.uid, made.gid]).toEqual([0, 0]);
    const given = image.entries.get("root/chowned-by-script")!;
    expect([given.uid, given.gid, given.mode]).toEqual([1234, 1234, 0o4750]);
  } finally {
    server.close();
    victim.kill("SIGKILL");
    const now = sysctls();
    if (now.printk !== sysctlsBefore.printk)
      fs.writeFileSync("/proc/sys/kernel/printk_ratelimit", sysctlsBefore.printk);
    if (now.core !== sysctlsBefore.core) fs.writeFileSync("/proc/sys/kernel/core_pattern", sysctlsBefore.core);
  }
});
