import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RemoteShell, REMOTE_SHELL_LOOP, SHELL_INPUT_MAX } from "../../../provider/boot/remote-shell";
import { BUSYBOX } from "../../fixtures/busybox-initramfs";

// The remote shell's loop run by the shells a machine has: busybox ash (what an Alpine machine
// runs ssh commands with) and the host's sh (dash), each a real process, as ssh would start it.
/** A PATH of busybox applets alone, as on a busybox machine. */
let applets: string;
beforeAll(() => {
  applets = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-applets-"));
  for (const name of ["sh", "base64", "mktemp", "wc", "cat", "rm", "printf", "kill", "sleep", "true", "false"])
    fs.symlinkSync(BUSYBOX, path.join(applets, name));
});
afterAll(() => fs.rmSync(applets, { recursive: true, force: true }));

describe.each(["busybox ash", "sh"])("the remote shell's loop in %s", (name) => {
  let shell: RemoteShell;
  beforeEach(() => {
    const busybox = name === "busybox ash";
    const child = spawn(busybox ? path.join(applets, "sh") : "sh", ["-c", REMOTE_SHELL_LOOP], {
      stdio: ["pipe", "pipe", "pipe"],
      env: busybox ? { PATH: applets } : process.env,
    });
    shell = new RemoteShell(child, "test shell");
  });
  afterEach(() => shell.end("SIGKILL"));

  test("exit codes, stdout, stderr and stdin, one request after another and several in flight", async () => {
    const first = await shell.run("echo out; echo err >&2; exit 3");
    expect(first).toEqual({ exitCode: 3, stdout: Buffer.from("out\n"), stderr: "err\n" });
    // binary output and input, every byte value, whatever the script prints
    const bytes = Buffer.from([...Array(256).keys()]);
    const echoed = await shell.run("cat", bytes);
    expect(echoed.exitCode).toBe(0);
    expect(echoed.stdout.equals(bytes)).toBe(true);
    // a script's own traps and `set -e` are its own: the loop goes on
    const trapped = await shell.run("set -e; trap 'echo bye' EXIT; false; echo never");
    expect(trapped).toMatchObject({ exitCode: 1, stdout: Buffer.from("bye\n") });
    const all = await Promise.all([1, 2, 3].map((n) => shell.run(`printf %s ${n}`)));
    expect(all.map((r) => r.stdout.toString())).toEqual(["1", "2", "3"]);
    // quotes and newlines in the script arrive as written
    const quoted = await shell.run(`printf '%s\\n' "it's" 'a "b"'`);
    expect(quoted.stdout.toString()).toBe(`it's\na "b"\n`);
  });

  // $$ in the script is the loop shell (a subshell keeps it)
  test("a script that ends the shell fails what is in flight, and later runs, with one error", async () => {
    const killed = shell.run("kill -9 $$; sleep 5");
    await expect(killed).rejects.toThrow(/test shell: ssh failed/);
    expect(shell.alive).toBe(false);
    await expect(shell.run("true")).rejects.toThrow(/ssh failed/);
  });

  test("input larger than the shell carries goes elsewhere", () => {
    expect(RemoteShell.fits(Buffer.alloc(SHELL_INPUT_MAX))).toBe(true);
    expect(RemoteShell.fits(Buffer.alloc(SHELL_INPUT_MAX + 1))).toBe(false);
  });
});
