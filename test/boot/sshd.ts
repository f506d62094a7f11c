import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { TargetSpec } from "../../provider/boot/target";

/** The boot directory `root` on the test sshd, reached as root with its user key and known_hosts. */
export function sshTarget(sshd: TestSshd, root: string): Extract<TargetSpec, { kind: "ssh" }> {
  return {
    kind: "ssh",
    host: "127.0.0.1",
    port: sshd.port,
    user: "root",
    path: root,
    privateKey: sshd.userKey,
    knownHostsFile: sshd.knownHosts,
  };
}

/** A real OpenSSH server on 127.0.0.1, with its own host key and one authorised user key, for a test. */
export interface TestSshd {
  port: number;
  /** the user key's private half (PEM/OpenSSH text) */
  userKey: string;
  /** a known_hosts file that trusts this server's host key */
  knownHosts: string;
  /** a known_hosts file that trusts some other key for the same host (to prove refusal) */
  wrongKnownHosts: string;
  dir: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

function keygen(file: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ramroot-test", "-f", file]);
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited ${child.exitCode}: ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on ${port}: ${log()}`);
}

/**
 * `cmdline`: a file the server's sessions see as /proc/cmdline (bind-mounted over it in a mount
 * namespace of its own), so a test can say which slot "the machine" booted (BOOT_IMAGE=/a/vmlinuz)
 * and change it by rewriting the file in place.
 */
export async function startSshd(opts: { cmdline?: string } = {}): Promise<TestSshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sshd-"));
  const hostKey = path.join(dir, "host_key");
  const userKey = path.join(dir, "user_key");
  const otherKey = path.join(dir, "other_key");
  keygen(hostKey);
  keygen(userKey);
  keygen(otherKey);
  fs.copyFileSync(`${userKey}.pub`, path.join(dir, "authorized_keys"));
  const home = path.join(dir, "home");
  fs.mkdirSync(home);
  const port = await freePort();
  const config = path.join(dir, "sshd_config");
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      `PidFile ${path.join(dir, "sshd.pid")}`,
      "UsePAM no",
      "StrictModes no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "MaxSessions 50",
      "LogLevel ERROR",
      // Each command runs in the account's shell, and Debian's bash reads ~/.bashrc when sshd
      // starts it: this machine's root runs pyenv's init there (~2 s a command under load, 200
      // commands in an ssh deploy). A home of its own keeps the host's dotfiles out, as on the
      // machines ramroot deploys to (busybox ash, no rc files).
      `SetEnv HOME=${home}`,
      "",
    ].join("\n"),
  );
  // sshd insists on its privilege separation directory.
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", config];
  const child = opts.cmdline
    ? spawn(
        "unshare",
        [
          "--mount",
          "--propagation",
          "private",
          "sh",
          "-c",
          'mount --bind "$0" /proc/cmdline && exec "$@"',
          opts.cmdline,
          ...sshd,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      )
    : spawn(sshd[0]!, sshd.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  await waitForPort(port, child, () => stderr);
  const line = (pub: string) =>
    `[127.0.0.1]:${port} ${fs.readFileSync(pub, "utf8").trim().split(" ").slice(0, 2).join(" ")}\n`;
  const knownHosts = path.join(dir, "known_hosts");
  fs.writeFileSync(knownHosts, line(`${hostKey}.pub`));
  const wrongKnownHosts = path.join(dir, "known_hosts_wrong");
  fs.writeFileSync(wrongKnownHosts, line(`${otherKey}.pub`));
  return {
    port,
    userKey: fs.readFileSync(userKey, "utf8"),
    knownHosts,
    wrongKnownHosts,
    dir,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
