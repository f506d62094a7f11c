import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { parse, stringify } from "yaml";
import { inspectTarget } from "../../provider/boot/inspect";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, pulumiCommand, REPO_ROOT, type EngineStack } from "./pulumi-harness";
import { bootPartitionDir } from "../fixtures/boot-partition-dir";

// examples/yaml/Pulumi.yaml run by the real YAML language host against the real provider, beside
// index.ts's program (components/machine-program.ts) on the same config: the A/B component is
// the provider's, so a program that is not TypeScript previews the same and deploys the same.
jest.setTimeout(1_800_000);

let ts: EngineStack;
let yamlStack: Stack;
let repo: ImageRepo;
let yamlDir: string;

/** The same config for both programs; each deploys to its own boot directory. */
function config(boot: string, packages = ["alpine-baselayout", "busybox", "ramroot-init"]) {
  return {
    "ramroot:target": { kind: "local", path: boot },
    "ramroot:image": {
      repositories: [repo.repository],
      keys: [repo.keysDir],
      packages,
      overlay: path.join(yamlDir, "root"),
      cmdline: "console=ttyS0 no_timer_check",
      epoch: 1700000000,
    },
    "ramroot:bootTest": { marker: "Run /sbin/init", timeoutSeconds: 600 },
  };
}

/** The YAML project's directory as a user has it: root/ (the overlay) and boot/ (a mounted boot partition); both programs name them by absolute path. */
async function projectFiles(dir: string): Promise<void> {
  fs.mkdirSync(path.join(dir, "root", "etc"), { recursive: true });
  fs.writeFileSync(path.join(dir, "root", "etc", "motd"), "one program, two languages\n");
  await bootPartitionDir(path.join(dir, "boot"));
}

/** The preview's resource and property lines, without the project and stack names and the boot directory. */
function previewLines(stdout: string, boot: string): string[] {
  return stdout
    .split("\n")
    .filter((l) => /^\s*([+~-]\s|\[urn=)/.test(l) && !/pulumi:pulumi:Stack|pulumi:providers/.test(l))
    .map((l) =>
      l
        .split(boot)
        .join("<boot>")
        .replace(/urn:pulumi:[^:]+::[^:]+::/g, "urn:")
        .trimEnd(),
    );
}

let tsBoot: string;
let yamlBoot: string;

async function configure(packages?: string[]): Promise<void> {
  for (const [key, value] of Object.entries(config(tsBoot, packages)))
    await ts.stack.setConfig(key, { value: JSON.stringify(value) });
  const stackFile = path.join(yamlDir, "Pulumi.yaml.yaml");
  const settings = parse(fs.readFileSync(stackFile, "utf8")) as Record<string, unknown>;
  settings.config = config(yamlBoot, packages);
  fs.writeFileSync(stackFile, stringify(settings));
}

/** Both programs' previews, normalised; they must be equal. */
async function previews(): Promise<string[]> {
  const fromYaml = previewLines((await yamlStack.preview({ diff: true })).stdout, yamlBoot);
  const fromTs = previewLines((await ts.stack.preview({ diff: true })).stdout, tsBoot);
  expect(fromYaml).toEqual(fromTs);
  return fromYaml;
}

beforeAll(async () => {
  ts = await machineStack("typescript");
  process.env.RAMROOT_IMAGE_CACHE = path.join(ts.dir, "images");
  repo = await buildImageRepo(path.join(ts.dir, "repo"));
  yamlDir = path.join(ts.dir, "yaml");
  fs.mkdirSync(yamlDir);
  await projectFiles(yamlDir);
  yamlBoot = path.join(yamlDir, "boot");
  tsBoot = await bootPartitionDir(path.join(ts.dir, "boot"));
  const program = parse(fs.readFileSync(path.join(REPO_ROOT, "examples", "yaml", "Pulumi.yaml"), "utf8")) as Record<
    string,
    unknown
  >;
  program.plugins = { providers: [{ name: "ramroot", path: path.join(REPO_ROOT, "provider", "plugin") }] };
  program.backend = { url: `file://${path.join(ts.dir, "state")}` };
  fs.writeFileSync(path.join(yamlDir, "Pulumi.yaml"), stringify(program));
  const envVars = {
    PULUMI_BACKEND_URL: `file://${path.join(ts.dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    RAMROOT_IMAGE_CACHE: path.join(ts.dir, "images"),
  };
  const ws = await LocalWorkspace.create({ workDir: yamlDir, pulumiCommand: await pulumiCommand(), envVars });
  yamlStack = await LocalWorkspace.createOrSelectStack(
    { stackName: "yaml", workDir: yamlDir },
    { pulumiCommand: ws.pulumiCommand, envVars },
  );
  // Objects in the stack file, as stacks/Pulumi.demo.yaml holds them.
  await yamlStack.setConfig("ramroot:append", { value: "quiet" }); // writes the stack file with its encryption salt
  await configure();
});
afterAll(async () => ts?.cleanup());

test("the YAML program and index.ts: the same preview lines and the same deployment, first of slot a, then of an edit to slot b", async () => {
  await step("a first deployment: both programs preview the same lines, and both deploy slot a", async () => {
    const lines = await previews();
    for (const re of [/\+ ramroot:index:AbSystem/, /machine-slot-a/, /machine-boot-test/, /machine-syslinux/])
      expect(lines.some((l) => re.test(l))).toBe(true);
    for (const [stack, boot] of [
      [yamlStack, yamlBoot],
      [ts.stack, tsBoot],
    ] as const) {
      const up = await stack.up();
      expect(up.outputs.activeSlot?.value).toBe("a");
      const state = await inspectTarget({ kind: "local", path: boot }, ["a", "b"]);
      expect(state.defaultSlot).toBe("a");
      expect(state.slots.a?.manifest?.imageId).toBe(up.outputs.imageId?.value);
    }
  });

  await step(
    "right after the deploying up, each program previews no change: no resource and no stack output",
    async () => {
      for (const stack of [yamlStack, ts.stack]) {
        const preview = await stack.preview({ diff: true });
        expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
        // With --diff the engine lists changed stack outputs under the stack ("--outputs:--",
        // then e.g. `- writtenSlot: "a"`); an unchanged stack has no such section.
        expect(preview.stdout).not.toMatch(/--outputs:--/);
      }
    },
  );

  await step(
    "an edited overlay file and an added package: the same preview lines (the file, the package, slot b, DEFAULT a => b)",
    async () => {
      fs.writeFileSync(path.join(yamlDir, "root", "etc", "motd"), "edited\n");
      await configure(["alpine-baselayout", "busybox", "ramroot-init", "hello-ramroot"]);
      const lines = await previews();
      expect(lines.some((l) => /\+ hello-ramroot: "1\.0-r0"/.test(l))).toBe(true);
      expect(lines.some((l) => /~ etc\/motd\s*: "file 644 [0-9a-f]{12}" => "file 644 [0-9a-f]{12}"/.test(l))).toBe(
        true,
      );
      expect(lines.some((l) => /machine-slot-b/.test(l))).toBe(true);
      expect(lines.some((l) => /defaultLabel\s*: "a" => "b"/.test(l))).toBe(true);
      const up = await yamlStack.up();
      expect(up.outputs.activeSlot?.value).toBe("b");
      expect((await inspectTarget({ kind: "local", path: yamlBoot }, ["a", "b"])).defaultSlot).toBe("b");
    },
  );
});
