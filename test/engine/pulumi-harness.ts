import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  LocalWorkspace,
  PulumiCommand,
  type InlineProgramArgs,
  type ProjectSettings,
  type Stack,
} from "@pulumi/pulumi/automation";

/** Pulumi.yaml's `plugins` section, which the Automation API writes through but does not type. */
type ProjectWithPlugins = ProjectSettings & { plugins: { providers: { name: string; path: string }[] } };

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/**
 * The real pulumi CLI the setup installed (RAMROOT_PULUMI_ROOT from .ramroot/env.sh, else the
 * first `pulumi` binary on PATH that has the Node.js language host beside it; npm's `pulumi`
 * wrapper in node_modules/.bin is not one). A test that needs it fails loudly without it.
 */
export async function pulumiCommand(): Promise<PulumiCommand> {
  const fromEnv = process.env.RAMROOT_PULUMI_ROOT;
  if (fromEnv && fs.existsSync(path.join(fromEnv, "bin", "pulumi"))) return PulumiCommand.get({ root: fromEnv });
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const bin = path.join(dir, "pulumi");
    if (!fs.existsSync(bin)) continue;
    const real = fs.realpathSync(bin);
    if (fs.existsSync(path.join(path.dirname(real), "pulumi-language-nodejs")))
      return PulumiCommand.get({ root: path.dirname(path.dirname(real)) });
  }
  throw new Error("the pulumi CLI is not installed: run `npm test` (it runs the setup) or `source .ramroot/env.sh`");
}

export interface EngineStack {
  stack: Stack;
  dir: string;
  cleanup(): Promise<void>;
}

/**
 * A stack on a fresh file backend in a temporary directory, with the ramroot provider plugin
 * found through `plugins.providers`, exactly as a user's Pulumi.yaml does. Offline settings only.
 */
export async function engineStack(name: string, program: InlineProgramArgs["program"]): Promise<EngineStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ramroot-engine-${name}-`));
  const state = path.join(dir, "state");
  fs.mkdirSync(state);
  const pulumi = await pulumiCommand();
  const projectSettings: ProjectWithPlugins = {
    name: "ramroot-test",
    runtime: "nodejs",
    backend: { url: `file://${state}` },
    plugins: { providers: [{ name: "ramroot", path: path.join(REPO_ROOT, "provider", "plugin") }] },
  };
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: name, projectName: "ramroot-test", program },
    {
      pulumiCommand: pulumi,
      workDir: dir,
      envVars: {
        PULUMI_BACKEND_URL: `file://${state}`,
        PULUMI_CONFIG_PASSPHRASE: "test",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      },
      projectSettings,
    },
  );
  return { stack, dir, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A stack whose program is the project's own, compiled index.ts (dist/index.js, the machine
 * program on the stack config), run by the Node.js language host in its own process as
 * `pulumi up` runs it. A failed update then ends that process, not the test's: an inline
 * program's registrations still pending when the engine stops would reject inside jest.
 */
export async function machineStack(name: string): Promise<EngineStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ramroot-engine-${name}-`));
  const state = path.join(dir, "state");
  fs.mkdirSync(state);
  const projectSettings: ProjectWithPlugins = {
    name: "ramroot-test",
    runtime: { name: "nodejs", options: { typescript: false } },
    main: path.relative(dir, path.join(REPO_ROOT, "dist", "index.js")),
    backend: { url: `file://${state}` },
    plugins: { providers: [{ name: "ramroot", path: path.join(REPO_ROOT, "provider", "plugin") }] },
  };
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: name, workDir: dir },
    {
      pulumiCommand: await pulumiCommand(),
      envVars: {
        PULUMI_BACKEND_URL: `file://${state}`,
        PULUMI_CONFIG_PASSPHRASE: "test",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      },
      projectSettings,
    },
  );
  return { stack, dir, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
}
