import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { execa } from "execa";
import { passphraseFile, stackPassphraseEnv } from "../../provider/cli/stack-passphrase";
import { pulumiCommand, REPO_ROOT } from "./pulumi-harness";
import { expectNoKey } from "./ssh-stack";

// Secrets as the README tells a user to set them (issue #22): every documented command that
// sets a secret runs as written, with the real pulumi CLI, on a real private key; no output of
// any of them, and no command line, holds a line of the key, and the key lands in the stack
// intact. And the demo's passphrase reaches the demo stack only: the shell setup sets none.

// The README and the docs/ pages it points at: a command documented anywhere is run.
const DOCS = ["README.md", ...fs.readdirSync(path.join(REPO_ROOT, "docs")).map((n) => path.join("docs", n))]
  .filter((f) => f.endsWith(".md"))
  .map((f) => fs.readFileSync(path.join(REPO_ROOT, f), "utf8"))
  .join("\n");

let work: string;
let key: string;
let pulumiDir: string;

/** Every documented command that sets a secret: inline code and code blocks of the README and docs/. */
function secretCommands(): string[] {
  const spans = [...DOCS.matchAll(/`([^`\n]+)`/g), ...DOCS.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
    m[1]!.split("\n"),
  );
  return [...new Set(spans.filter((c) => /\bconfig set\b.*--secret|--secret.*\bconfig set\b/.test(c)))];
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-secrets-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "owner", "-f", path.join(work, "key")]);
  key = fs.readFileSync(path.join(work, "key"), "utf8");
  fs.writeFileSync(path.join(work, "Pulumi.yaml"), "name: secrets\nruntime: yaml\n");
  fs.mkdirSync(path.join(work, "state"));
  pulumiDir = path.dirname((await pulumiCommand()).command);
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** A shell in the project, with the owner's passphrase and a backend of its own; all output together. */
async function sh(line: string): Promise<{ code: number; out: string }> {
  const run = await execa("bash", ["-c", line], {
    cwd: work,
    env: {
      PATH: `${pulumiDir}:${process.env.PATH}`,
      HOME: process.env.HOME ?? "/root",
      PULUMI_HOME: process.env.PULUMI_HOME ?? path.join(process.env.HOME ?? "/root", ".pulumi"),
      PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "the owner's own",
      PULUMI_SKIP_UPDATE_CHECK: "true",
    },
    extendEnv: false,
    all: true,
    reject: false,
    stdin: "ignore",
  });
  return { code: run.exitCode ?? -1, out: run.all ?? "" };
}

test("every documented secret command runs as written: the key goes in whole, and no output or command line shows it", async () => {
  const commands = secretCommands();
  expect(commands).toContain("pulumi config set --secret --path ramroot:target.privateKey < key");
  expect((await sh("pulumi stack init nas --non-interactive")).code).toBe(0);
  for (const command of commands) {
    // No key material on the command line itself (ps shows it to every user of the machine).
    expect(command).not.toMatch(/\$\(|BEGIN|PRIVATE KEY/);
    const run = await sh(command);
    expect({ command, code: run.code, out: run.out }).toEqual({ command, code: 0, out: "" });
  }
  // What the user reads afterwards shows it as a secret only.
  const listed = await sh("pulumi config --stack nas");
  expect(listed.out).toMatch(/target\s+\{"privateKey":"\[secret\]"\}/);
  const stackFile = fs.readFileSync(path.join(work, "Pulumi.nas.yaml"), "utf8");
  for (const text of [listed.out, stackFile]) expectNoKey(text, key);
  expect(stackFile).toMatch(/privateKey:\n\s+secure: v1:/);
  // ...and it is the key, every line of it (read here by the test, not by a documented command).
  const stored = await sh("pulumi config get --stack nas --path ramroot:target.privateKey");
  expect(stored.out.trim()).toBe(key.trim());
});

test("the shell setup sets no passphrase; the demo's opens the demo stack only", () => {
  const setup = fs.readFileSync(path.join(REPO_ROOT, "scripts", "setup.sh"), "utf8");
  const envFile = setup.slice(setup.indexOf("cat > .ramroot/env.sh"), setup.indexOf("\nENV\n"));
  expect(envFile).not.toMatch(/export PULUMI_CONFIG_PASSPHRASE/);
  const saved = {
    pass: process.env.PULUMI_CONFIG_PASSPHRASE,
    file: process.env.PULUMI_CONFIG_PASSPHRASE_FILE,
  };
  delete process.env.PULUMI_CONFIG_PASSPHRASE;
  delete process.env.PULUMI_CONFIG_PASSPHRASE_FILE;
  try {
    const project = path.join(work, "project");
    fs.mkdirSync(path.dirname(passphraseFile(project, "demo")), { recursive: true });
    fs.writeFileSync(passphraseFile(project, "demo"), "ramroot-demo\n", { mode: 0o600 });
    expect(stackPassphraseEnv(project, "demo")).toEqual({
      PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile(project, "demo"),
    });
    expect(stackPassphraseEnv(project, "nas")).toEqual({});
    // The owner's passphrase in the shell wins over any file.
    process.env.PULUMI_CONFIG_PASSPHRASE = "the owner's own";
    expect(stackPassphraseEnv(project, "demo")).toEqual({});
  } finally {
    for (const [k, v] of [
      ["PULUMI_CONFIG_PASSPHRASE", saved.pass],
      ["PULUMI_CONFIG_PASSPHRASE_FILE", saved.file],
    ] as const)
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
});

test("a new stack made in a shell set up as the README says gets no passphrase it did not ask for", async () => {
  // As after `source .ramroot/env.sh`: no passphrase in the environment.
  const run = await execa("bash", ["-c", "pulumi stack init another --non-interactive"], {
    cwd: work,
    env: {
      PATH: `${pulumiDir}:${process.env.PATH}`,
      HOME: process.env.HOME ?? "/root",
      PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`,
      PULUMI_SKIP_UPDATE_CHECK: "true",
    },
    extendEnv: false,
    all: true,
    reject: false,
    stdin: "ignore",
  });
  expect(run.exitCode).not.toBe(0);
  expect(run.all).toMatch(/passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE/);
});
