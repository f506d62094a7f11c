import { execa, type ResultPromise } from "execa";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";
import { startSshd, type TestSshd } from "../boot/sshd";

// A deploy over ssh killed in the middle of a slot copy (SIGKILL: nothing of it runs again;
// SIGTERM and SIGINT: its exit path runs) leaves no private key on disk and no live ssh master
// connection that anyone on the machine could borrow: real sshd on loopback, the real CLI in
// its own process, real OpenSSH.
jest.setTimeout(600_000);

let sshd: TestSshd;
let cli: CompiledCli;
let work: string;
let root: string;
beforeAll(async () => {
  [sshd, cli] = await Promise.all([startSshd(), compileCli()]);
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sshkill-"));
  root = path.join(work, "boot");
  fs.mkdirSync(root);
});
afterAll(async () => {
  await sshd?.stop();
  cli?.dispose();
  fs.rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The session directories a process with this pid made. */
function sessions(pid: number): string[] {
  return fs
    .readdirSync(os.tmpdir())
    .filter((n) => n.startsWith(`ramroot-ssh-${pid}-`))
    .map((n) => path.join(os.tmpdir(), n));
}

/** What is left in a dead session's directory ([] once another session on this machine swept it). */
function leftIn(session: string): string[] {
  return fs.existsSync(session) ? fs.readdirSync(session) : [];
}

/** Processes whose command line names this path (an ssh master started with ControlPath=<dir>/cm). */
async function processesNaming(dir: string): Promise<string[]> {
  const ps = await execa("ps", ["-eo", "pid=,args="], { reject: false });
  return String(ps.stdout)
    .split("\n")
    .filter((l) => l.includes(dir) && !l.includes("ps -eo"));
}

function file(name: string, size: number): string {
  const p = path.join(work, name);
  const fd = fs.openSync(p, "w");
  const chunk = Buffer.alloc(1 << 20);
  for (let done = 0; done < size; done += chunk.length) {
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(((done + i) * 2654435761) >>> 0, i);
    fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - done));
  }
  fs.closeSync(fd);
  return p;
}

test.each(["SIGKILL", "SIGTERM", "SIGINT"] as const)(
  "a deploy killed by %s mid-copy leaves no key, no live master, no socket; the slot is untouched",
  async (signal) => {
    const key = path.join(work, "id");
    fs.writeFileSync(key, sshd.userKey, { mode: 0o600 });
    const kernel = file("vmlinuz", 1 << 20);
    const initramfs = file(`initramfs-${signal}`, 80 << 20);
    // The target as a user names it on the command line: the test sshd, its key, its known_hosts.
    const target = [
      "--ssh",
      `root@127.0.0.1:${root}`,
      "--port",
      String(sshd.port),
      "--identity",
      key,
      "--known-hosts",
      sshd.knownHosts,
    ];
    // A layered write: two layers of 40 MiB, kept in the partition's layer store.
    const args = [
      ...["slot", "write", ...target, "--slot", "b", "--kernel", kernel, "--initramfs", initramfs],
      ...["--layer-sizes", `${40 << 20},${40 << 20}`],
    ];
    const deploy: ResultPromise = execa(process.execPath, ["-e", cli.script, "--", ...args], { reject: false });
    const pid = deploy.pid!;
    // Mid-copy: a layer is arriving under its temporary name in the target's layer store.
    const tmpIn = (dir: string) =>
      fs.existsSync(path.join(root, dir))
        ? fs.readdirSync(path.join(root, dir)).filter((n) => n.includes(".tmp-"))
        : [];
    for (;;) {
      if (tmpIn("layers").some((n) => fs.statSync(path.join(root, "layers", n)).size > 4 << 20)) break;
      if (deploy.exitCode !== null && deploy.exitCode !== undefined)
        throw new Error(`the deploy ended before the copy: ${(await deploy).stderr}`);
      await sleep(50);
    }
    const [session] = sessions(pid);
    expect(session).toBeDefined();
    // The key was only on disk while the master authenticated.
    expect(fs.existsSync(path.join(session!, "key"))).toBe(false);
    expect(await processesNaming(session!)).not.toEqual([]); // the master is up, carrying the copy

    process.kill(pid, signal);
    const ended = await deploy;
    expect(ended.exitCode === 0).toBe(false);

    // No master survives: one that was told to exit is gone at once, one orphaned by SIGKILL
    // within its few idle seconds (ControlPersist) after the cut copy ends.
    for (;;) {
      if ((await processesNaming(session!)).length === 0 && !fs.existsSync(path.join(session!, "cm"))) break;
      await sleep(250);
    }
    if (signal === "SIGKILL") {
      expect(leftIn(session!)).toEqual([]); // nothing usable: no key, no socket
    } else {
      expect(fs.existsSync(session!)).toBe(false); // the exit path removed the whole directory
    }
    // Nothing of the cut copy stays on the target, and the next session sweeps stale directories.
    for (;;) {
      if (tmpIn("b").length === 0 && tmpIn("layers").length === 0) break;
      await sleep(250);
    }
    expect(fs.existsSync(path.join(root, "b", "initramfs"))).toBe(false);
    const show = await cli.run(["slot", "show", ...target, "--slot", "b"]);
    expect(show.code).toBe(0);
    expect(fs.existsSync(session!)).toBe(false);
    // The killed writer's lease stays on the target, and the next writer takes it over (its
    // process is gone from this host): the next case starts with that.
  },
);

test("a deploy SIGKILLed while its master authenticates (a server that answers nothing for 3 s) never had the key on disk, and its agent ends", async () => {
  const key = path.join(work, "id-auth");
  fs.writeFileSync(key, sshd.userKey, { mode: 0o600 });
  const secret = sshd.userKey.trim().split("\n").slice(1, -1).join("");
  const silent = net.createServer((s) => {
    s.on("error", () => {});
    setTimeout(() => s.destroy(), 3000);
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  try {
    const port = (silent.address() as net.AddressInfo).port;
    const args = [
      "slot",
      "show",
      "--slot",
      "a",
      "--ssh",
      `root@127.0.0.1:${root}`,
      "--port",
      String(port),
      "--identity",
      key,
    ];
    const deploy: ResultPromise = execa(process.execPath, ["-e", cli.script, "--", ...args], { reject: false });
    const pid = deploy.pid!;
    // The master is authenticating: the session's agent holds the key.
    let session: string | undefined;
    for (;;) {
      [session] = sessions(pid);
      if (session && (await processesNaming(session)).some((l) => l.includes("ssh-agent"))) break;
      if (deploy.exitCode !== null && deploy.exitCode !== undefined)
        throw new Error(`the deploy ended before authenticating: ${(await deploy).stderr}`);
      await sleep(20);
    }
    // A file holding the key (a socket, or a file swept meanwhile, holds none).
    const holdsKey = (name: string) => {
      try {
        return fs.readFileSync(path.join(session!, name), "utf8").replace(/\s/g, "").includes(secret);
      } catch {
        return false;
      }
    };
    const onDisk = () => leftIn(session!).filter(holdsKey);
    expect(onDisk()).toEqual([]);
    process.kill(pid, "SIGKILL");
    await deploy;
    expect(onDisk()).toEqual([]);
    // The server hangs up, ssh fails, the key is deleted from the agent, and the agent ends.
    for (;;) {
      if ((await processesNaming(session!)).length === 0) break;
      await sleep(250);
    }
    // No key, no agent socket, no master socket: at most the master's log (what ssh said).
    expect(leftIn(session!).filter((n) => n !== "master.log")).toEqual([]);
    expect(onDisk()).toEqual([]);
    // The next session sweeps the dead one's directory.
    await cli.run(args);
    expect(fs.existsSync(session!)).toBe(false);
  } finally {
    silent.close();
  }
});
