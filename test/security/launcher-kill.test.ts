/**
 * `bin/ramroot.js` under a Node older than 22 runs the CLI again under the setup's Node, as a
 * child. Killing the launcher (SIGKILL: nothing of it runs) must end that child too, through its
 * exit path: here a child waiting on an ssh server that never answers (ssh would give up after
 * its 30 s ConnectTimeout, and the child would then fail saying so).
 */
import { execa } from "execa";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";
import { processAlive } from "../../provider/exit-cleanup";

jest.setTimeout(300_000);

/** Debian's own Node (bookworm: 18 or 20), older than the 22 the CLI needs: the launcher's case. */
const OLD_NODE = "/usr/bin/node";

let cli: CompiledCli;
let work: string;

beforeAll(async () => {
  cli = await compileCli();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-launcher-"));
});
afterAll(() => {
  cli?.dispose();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("SIGKILL of the launcher ends the CLI it started under the setup's Node, through its exit path", async () => {
  const version = execFileSync(OLD_NODE, ["--version"], { encoding: "utf8" }).trim();
  expect(Number(/^v(\d+)/.exec(version)?.[1])).toBeLessThan(22);
  // The launcher as installed: bin/ramroot.js beside a dist/ holding the compiled CLI.
  const compiled = path.resolve(JSON.parse(/require\((".*?")\)/.exec(cli.script)![1]!), "../../..");
  const install = path.join(work, "install");
  fs.mkdirSync(path.join(install, "bin"), { recursive: true });
  fs.copyFileSync(path.join(__dirname, "../../bin/ramroot.js"), path.join(install, "bin/ramroot.js"));
  fs.symlinkSync(compiled, path.join(install, "dist"));

  const silent = net.createServer((s) => s.on("error", () => {}));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const key = path.join(work, "id");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  try {
    const port = (silent.address() as net.AddressInfo).port;
    const launcher = execa(
      OLD_NODE,
      [path.join(install, "bin/ramroot.js"), "slot", "show", "--slot", "a", "--ssh", "root@127.0.0.1:/boot"].concat([
        "--port",
        String(port),
        "--identity",
        key,
      ]),
      { reject: false, env: { RAMROOT_NODE: process.execPath } },
    );
    // The child: the CLI under the setup's Node, waiting in its ssh session.
    let child: number | undefined;
    let session: string | undefined;
    for (;;) {
      const found = String((await execa("pgrep", ["-P", String(launcher.pid)], { reject: false })).stdout).trim();
      child = found ? Number(found.split("\n")[0]) : undefined;
      session = child ? fs.readdirSync(os.tmpdir()).find((n) => n.startsWith(`ramroot-ssh-${child}-`)) : undefined;
      if (session) break;
      if (launcher.exitCode !== null && launcher.exitCode !== undefined)
        throw new Error(`the launcher ended first: ${(await launcher).stderr}`);
      await sleep(50);
    }
    process.kill(launcher.pid!, "SIGKILL");
    // The child shares the launcher's stderr: what it said until it ended.
    const said = (await launcher).stderr;
    while (processAlive(child!)) await sleep(100);
    // Ended by its launcher's end, not by ssh giving up on the server (it would say so).
    expect(said).not.toMatch(/cannot connect|timed out/);
    // It ended through its exit path: its session directory is gone.
    expect(fs.existsSync(path.join(os.tmpdir(), session))).toBe(false);
  } finally {
    silent.close();
  }
});
