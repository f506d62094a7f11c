import * as fs from "node:fs";
import * as path from "node:path";
import { machineProgram } from "../../components/machine-program";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { sshTarget, startSshd, type TestSshd } from "../boot/sshd";
import { engineStack, type EngineStack } from "./pulumi-harness";
import { expectNoKey, exportAsUser, stateText } from "./ssh-stack";
import { bootPartitionDir } from "../fixtures/boot-partition-dir";

// The stack's program over ssh. The scenario: the stack's program (index.ts's machineProgram, the AbSystem component the
// provider constructs) deploying over ssh with the key and a kernel command line token set as
// secret config. Afterwards neither a state file nor `pulumi stack export` (as a user runs it,
// without --show-secrets) holds a line of the key or the token. And `ramroot:wipeOnDelete`
// reaches the component's slots and config, so a destroy removes them.
jest.setTimeout(900_000);

let env: EngineStack;
let repo: ImageRepo;
let sshd: TestSshd;
let root: string;
const TOKEN = "ramroot.token=SECRET-APPEND-51d0";

beforeAll(async () => {
  env = await engineStack("machine-secrets", machineProgram);
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"));
  sshd = await startSshd();
  root = await bootPartitionDir(path.join(env.dir, "boot"));
});
afterAll(async () => {
  await sshd?.stop();
  await env?.cleanup();
});

/** The image both tests deploy, as stack config. */
const imageConfig = () =>
  JSON.stringify({
    repositories: [repo.repository],
    keys: [repo.keysDir],
    packages: ["alpine-baselayout", "busybox"],
    kernel: "lts",
    epoch: 1700000000,
  });

test("an ssh up with a secret key and a secret append: no state file and no export holds either", async () => {
  const target = sshTarget(sshd, root);
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify(target), secret: true },
    "ramroot:image": { value: imageConfig() },
    "ramroot:append": { value: TOKEN, secret: true },
  });
  const up = await env.stack.up();
  expect(up.summary.result).toBe("succeeded");
  // The machine got both: the key reached it, the token is on its command line.
  expect(fs.readFileSync(path.join(root, "syslinux.cfg"), "utf8")).toContain(TOKEN);
  const exported = await exportAsUser(env);
  expect(exported).toContain("ramroot:index:BootSlot");
  for (const text of [stateText(env), exported, up.stdout, up.stderr]) {
    expectNoKey(text, sshd.userKey);
    expect(text).not.toContain("SECRET-APPEND-51d0");
  }
  // Only what is secret is: each entry's command line, not the entries' labels, kernels and initrds.
  const config = JSON.parse(exported).deployment.resources.find(
    (r: { type: string }) => r.type === "ramroot:index:SyslinuxConfig",
  );
  for (const side of [config.inputs, config.outputs]) {
    expect(Array.isArray(side.entries)).toBe(true);
    expect(side.entries.map((e: { label: string }) => e.label)).toEqual(["a"]);
    expect(side.entries[0].kernel).toBe("/a/vmlinuz");
    expect(JSON.stringify(side.entries[0].append)).toMatch(/ciphertext/);
    expect(side.defaultLabel).toBe("a");
  }
  const preview = await env.stack.preview({ diff: true });
  expect(preview.changeSummary.update ?? 0).toBe(0);

  // An up with nothing to copy: one connection and one remote shell for it, and few round trips
  // (each command through the shell is one; a channel of its own would carry a file's bytes).
  const trace = path.join(env.dir, "ssh-trace");
  process.env.RAMROOT_SSH_TRACE = trace;
  try {
    const again = await env.stack.up();
    expect(again.summary.result).toBe("succeeded");
  } finally {
    delete process.env.RAMROOT_SSH_TRACE;
  }
  const events = fs
    .readFileSync(trace, "utf8")
    .split("\n")
    .filter((l) => l !== "");
  const count = (event: string) => events.filter((e) => e.split(" ")[0] === event).length;
  // One connection, no channel, at most 15 round trips; else the counts and every command, to see which.
  const within = count("connect") === 1 && count("channel") === 0 && count("exchange") <= 15;
  const summary = `${count("connect")} connection(s), ${count("exchange")} round trips, ${count("channel")} channel(s)`;
  expect(within ? "within" : `${summary}:\n${events.join("\n")}`).toBe("within");
});

test("wipeOnDelete set on the machine program reaches the slots and the config: destroy removes them", async () => {
  const wiped = await engineStack("machine-wipe", machineProgram);
  try {
    const dir = await bootPartitionDir(path.join(wiped.dir, "boot"));
    await wiped.stack.setAllConfig({
      "ramroot:target": {
        value: JSON.stringify(sshTarget(sshd, dir)),
        secret: true,
      },
      "ramroot:image": { value: imageConfig() },
      "ramroot:wipeOnDelete": { value: "true" },
    });
    const up = await wiped.stack.up();
    expect(up.summary.result).toBe("succeeded");
    // slot a's initramfs is its layers in the partition's store (layers/)
    expect(fs.readdirSync(dir).sort()).toEqual([
      "a",
      "layers",
      "ldlinux.c32",
      "ldlinux.sys",
      "ramroot",
      "syslinux.cfg",
    ]);
    const state = await wiped.stack.exportStack();
    const onDelete = state.deployment.resources
      .filter((r: { type: string }) => /BootSlot|SyslinuxConfig/.test(r.type))
      .map((r: { outputs: { onDelete: string } }) => r.outputs.onDelete);
    expect(onDelete).toEqual([
      expect.stringMatching(/^removes slot a \(wipeOnDelete\)/),
      expect.stringMatching(/^removes the config \(wipeOnDelete\)/),
    ]);
    const destroy = await wiped.stack.destroy();
    expect(destroy.stdout).toMatch(/removed slot a on .* \(wipeOnDelete\)/);
    expect(fs.existsSync(path.join(dir, "a"))).toBe(false);
    // and its layers, which no slot names any more
    expect(fs.existsSync(path.join(dir, "layers"))).toBe(false);
    expect(fs.existsSync(path.join(dir, "syslinux.cfg"))).toBe(false);
    // syslinux itself is the partition's, not the stack's: it stays.
    expect(fs.existsSync(path.join(dir, "ldlinux.sys"))).toBe(true);
  } finally {
    await wiped.cleanup();
  }
});
