import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { createDisk } from "../../provider/boot/disk-create";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { pulumiCommand, REPO_ROOT } from "./pulumi-harness";
import { compileCli } from "../fixtures/ramroot-cli";

// Bad input never crashes the provider (issue #22): ten bad stack configs, each previewed 20
// times (once in `npm run test:fast`: the errors are the same, the 20 rounds hunt the race) by the real pulumi CLI running the project's own program (dist/index.js) and provider
// plugin. Every run fails with one error that names the field, the value, what is accepted and
// the fix, and none shows "exited prematurely", "failed to deliver" or a stack trace (the race
// was the program and the plugin meeting an engine that was already stopping). A preview of a
// bad config builds nothing, so a run costs only the engine, the program and the plugin
// starting; the stacks run three at a time.
jest.setTimeout(3_600_000);

const ROUNDS = process.env.RAMROOT_TEST_TIER === "fast" ? 1 : 20;
const AT_ONCE = 3;

let work: string;
let repo: ImageRepo;
let disk: string;
let overlay: string;
let env: Record<string, string>;
let pulumiBin: string;

/** A good config, as the stack config holds it; each case spoils one thing. */
function goodConfig(): Record<string, unknown> {
  return {
    target: { kind: "image", path: disk },
    image: {
      repositories: [repo.repository],
      keys: [repo.keysDir],
      packages: ["alpine-baselayout", "busybox", "ramroot-init"],
      kernel: "lts",
      overlay,
      epoch: 1700000000,
    },
    bootTest: { marker: "Run /sbin/init", timeoutSeconds: 180 },
  };
}

type Config = Record<string, unknown>;
const image = (c: Config) => c.image as Config;

interface Case {
  name: string;
  spoil: (c: Config) => void;
  /** the one error: field, value, what is accepted, the fix */
  error: RegExp;
}

const CASES: Case[] = [
  {
    name: "a misspelt package",
    spoil: (c) => (image(c).packages = ["alpine-baselayout", "busybx", "ramroot-init"]),
    error:
      /image\.packages: ERROR: unable to select packages:\s+busybx \(no such package\)[\s\S]*busybx: did you mean "busybox"\?/,
  },
  {
    name: "a disk image that is not there",
    spoil: (c) => (c.target = { kind: "image", path: path.join(work, "nodisk.img") }),
    error:
      /boot target path: ".*nodisk\.img" cannot be opened \(ENOENT.*\); expected a FAT disk image file or block device; make one with `npx ramroot disk create --size 64 .*nodisk\.img`/,
  },
  {
    name: "kernel: lst",
    spoil: (c) => (image(c).kernel = "lst"),
    error: /ramroot:image\.kernel: got "lst"; expected one of lts, virt, none; did you mean "lts"\?/,
  },
  {
    name: "kind: disk",
    spoil: (c) => (c.target = { kind: "disk", path: disk }),
    error: /ramroot:target\.kind: got "disk"; expected one of "local", "image", "ssh"/,
  },
  {
    name: "an overlay that is not there",
    spoil: (c) => (image(c).overlay = path.join(work, "rooot")),
    error: /image\.overlay: directory ".*rooot" does not exist; expected a directory .*; did you mean "root"\?/,
  },
  {
    name: "a misspelt top-level key",
    spoil: (c) => {
      c.bootTst = c.bootTest;
      delete c.bootTest;
    },
    error: /ramroot:bootTst: unknown key; did you mean "bootTest"\?/,
  },
  {
    name: "a misspelt nested key",
    spoil: (c) => {
      image(c).pakages = image(c).packages;
      delete image(c).packages;
    },
    error: /ramroot:image\.pakages: unknown key; did you mean "packages"\?/,
  },
  {
    name: "strategy: trail",
    spoil: (c) => (c.strategy = "trail"),
    error: /ramroot:strategy: got "trail"; expected "switch" or "trial"; did you mean "trial"\?/,
  },
  {
    name: "an append that loads another initramfs",
    spoil: (c) => (c.append = "initrd=/b/initramfs"),
    error: /ramroot:append: got "initrd=\/b\/initramfs"; expected no initrd= or BOOT_IMAGE=/,
  },
  {
    name: "a trial on a disk image",
    spoil: (c) => (c.strategy = "trial"),
    error:
      /strategy: got "trial"; expected "switch": a trial waits for the booted machine to answer over ssh, and this target is image, not ssh/,
  },
];

/** The stack config file of one case: every key under ramroot:, as `pulumi config set` would write it. */
function writeStack(name: string, config: Config): void {
  const lines = ["config:"];
  for (const [key, value] of Object.entries(config)) lines.push(`  ramroot:${key}: ${JSON.stringify(value)}`);
  fs.writeFileSync(path.join(work, `Pulumi.${name}.yaml`), lines.join("\n") + "\n");
}

async function preview(stack: string): Promise<{ code: number; out: string }> {
  const run = await execa(pulumiBin, ["preview", "--stack", stack, "--non-interactive"], {
    cwd: work,
    env,
    all: true,
    reject: false,
  });
  return { code: run.exitCode ?? -1, out: run.all ?? "" };
}

/** The lines of the output's Diagnostics section. */
function diagnostics(out: string): string {
  const start = out.indexOf("\nDiagnostics:");
  const end = out.indexOf("\nResources:", start);
  return start < 0 ? "" : out.slice(start, end < 0 ? undefined : end);
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-bad-input-"));
  repo = await buildImageRepo(path.join(work, "repo"));
  disk = path.join(work, "disk.img");
  await createDisk({ output: disk, sizeMiB: 64, layout: "mbr", slots: ["a", "b"] });
  overlay = path.join(work, "root");
  fs.mkdirSync(path.join(overlay, "etc"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "motd"), "bad input\n");
  const state = path.join(work, "state");
  fs.mkdirSync(state);
  // The project as a user has it: the compiled program, the plugin through plugins.providers.
  fs.writeFileSync(
    path.join(work, "Pulumi.yaml"),
    [
      "name: ramroot-bad-input",
      "runtime:",
      "  name: nodejs",
      "  options:",
      "    typescript: false",
      `main: ${path.join(REPO_ROOT, "dist", "index.js")}`,
      "plugins:",
      "  providers:",
      "    - name: ramroot",
      `      path: ${path.join(REPO_ROOT, "provider", "plugin")}`,
      "",
    ].join("\n"),
  );
  pulumiBin = (await pulumiCommand()).command;
  env = {
    ...(process.env as Record<string, string>),
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE: "test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    RAMROOT_IMAGE_CACHE: path.join(work, "images"),
  };
  for (const [i, c] of CASES.entries()) {
    const config = goodConfig();
    c.spoil(config);
    writeStack(`case${i}`, config);
    const init = await execa(pulumiBin, ["stack", "init", `case${i}`, "--non-interactive"], {
      cwd: work,
      env,
      reject: false,
    });
    if (init.exitCode !== 0) throw new Error(`pulumi stack init case${i}: ${init.stderr}`);
  }
  writeStack("good", goodConfig());
  await execa(pulumiBin, ["stack", "init", "good", "--non-interactive"], { cwd: work, env });
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** A misspelling of `key`: two neighbours swapped, or for a short key a letter dropped. */
function typo(key: string): string {
  if (key.length <= 3) return key.slice(0, -1);
  const i = Math.floor(key.length / 2) - 1;
  return key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
}

test("every top-level key of the stack config, misspelt: one preview stops naming each, its file and the key it meant", async () => {
  const full: Config = {
    ...goodConfig(),
    strategy: "switch",
    trial: { timeoutSeconds: 300 },
    append: "quiet",
    wipeOnDelete: false,
    pin: { update: 1, planId: "1".repeat(64) },
  };
  const keys = Object.keys(full);
  expect(keys.sort()).toEqual(["append", "bootTest", "image", "pin", "strategy", "target", "trial", "wipeOnDelete"]);
  // every key misspelt in one stack config: the check reports each bad field, so one preview shows them all
  const config = Object.fromEntries(keys.map((key) => [typo(key), full[key]]));
  const stack = "typos";
  writeStack(stack, config);
  await execa(pulumiBin, ["stack", "init", stack, "--non-interactive"], { cwd: work, env });
  const run = await preview(stack);
  const diag = diagnostics(run.out);
  expect(run.code).not.toBe(0);
  expect(diag).toContain(`has a problem: invalid stack config (Pulumi.${stack}.yaml):\n`);
  for (const key of keys) expect(diag).toContain(`\n      ramroot:${typo(key)}: unknown key; did you mean "${key}"?`);
  expect(diag.split("\n").filter((l) => /^\s+error: /.test(l))).toHaveLength(1);
  expect(run.out).not.toMatch(/exited prematurely|failed to deliver|^\s+at .+[:(]\d+/m);
});

test("a typed error reads the same from the CLI (`ramroot build`) and from the provider (`pulumi preview`)", async () => {
  // the misspelt package: the solver's error, with its fix (did you mean), both ways
  const config = goodConfig();
  CASES[0]!.spoil(config);
  const file = path.join(work, "misspelt-package.json");
  fs.writeFileSync(file, JSON.stringify(image(config)));
  const cli = await (await compileCli()).run(["build", file, "--cache", path.join(work, "cli-images")]);
  expect(cli.code).toBe(1);
  const printed = cli.stderr.trim().replace(/^ramroot: /, "");
  expect(printed).toMatch(/^packages: ERROR: unable to select packages:[\s\S]*busybx: did you mean "busybox"\?$/);
  const run = await preview("case0");
  const diag = diagnostics(run.out)
    .split("\n")
    .map((l) => l.trim())
    .join("\n");
  // the same text; the provider's field is inside the AbSystem's image input (image.packages)
  expect(diag).toContain(
    `image.${printed
      .split("\n")
      .map((l) => l.trim())
      .join("\n")}`,
  );
});

test("the good config previews (so each bad one fails for its own reason)", async () => {
  const run = await preview("good");
  expect(run.out).not.toMatch(/error:/);
  expect(run.code).toBe(0);
});

test(`each of ${CASES.length} bad configs, previewed ${ROUNDS === 1 ? "once" : `${ROUNDS} times`}: one error naming field, value, what is accepted and the fix; never a crash, a lost log or a stack trace`, async () => {
  const jobs = Array.from({ length: ROUNDS }, () => CASES.map((_, i) => i)).flat();
  const problems: string[] = [];
  const worker = async () => {
    for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
      const c = CASES[job]!;
      const run = await preview(`case${job}`);
      const diag = diagnostics(run.out);
      const errors = diag.split("\n").filter((l) => /^\s+error: /.test(l));
      const wrong = [
        run.code === 0 ? "the preview succeeded" : "",
        /exited prematurely/.test(run.out) ? "the plugin exited prematurely" : "",
        /failed to deliver/.test(run.out) ? "a log message was not delivered" : "",
        /^\s+at .+[:(]\d+/m.test(run.out) ? "a stack trace" : "",
        errors.length !== 1 ? `${errors.length} errors` : "",
        c.error.test(diag) ? "" : "not the expected error",
      ].filter((w) => w !== "");
      if (wrong.length > 0) problems.push(`${c.name}: ${wrong.join(", ")}\n${run.out.slice(-3000)}`);
    }
  };
  await Promise.all(Array.from({ length: AT_ONCE }, worker));
  expect(problems).toEqual([]);
});
