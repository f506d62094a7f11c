/**
 * Entry point of the `pulumi-resource-ramroot` plugin. The engine starts it with its own
 * address as the first argument and reads the port it listens on from standard output.
 */
// First: keeps V8's young generation small before any module loads.
import "../young-generation";
import { ProviderServer } from "./provider-server";
import { syslinuxConfigHandler } from "./syslinux-config-resource";
import { alpineImageHandler } from "./alpine-image-resource";
import { bootSlotHandler } from "./boot-slot-resource";
import { bootTestHandler } from "./boot-test-resource";
import { packageSchema } from "./package-schema";
import { abSystemHandler } from "./ab-system-component";
import { secretPropertyNames } from "./schema";
import { refusalHandler } from "./component-refusal";
import { AB_SYSTEM_TOKEN } from "./tokens";

export const PROVIDER_VERSION = "0.1.0";

const schema = packageSchema(PROVIDER_VERSION);
const server = new ProviderServer({
  name: "ramroot",
  version: PROVIDER_VERSION,
  handlers: [
    alpineImageHandler,
    bootSlotHandler,
    bootTestHandler,
    syslinuxConfigHandler,
    // the AbSystem's refusals, as the failed check of a child of its type (component-refusal.ts)
    refusalHandler(AB_SYSTEM_TOKEN),
  ],
  components: [abSystemHandler],
  schema: JSON.stringify(schema),
  secretFields: secretPropertyNames(schema),
});

// The engine (or a user after killing it) ends a plugin with SIGTERM or SIGINT: end at once,
// whatever is in flight; the exit path still removes ssh keys, masters and scratch directories
// (exit-cleanup.ts), and a lease left behind is taken over once this process is gone.
for (const [signal, code] of [
  ["SIGTERM", 143],
  ["SIGINT", 130],
  ["SIGHUP", 129],
] as const)
  process.on(signal, () => process.exit(code));

// Construct runs the Pulumi SDK's runtime in this process. When the engine stops a deployment (a
// failed check, a failed step), the runtime's pending calls fail ("Resource monitor is
// terminating"), some in promises nothing waits on. They must not end the plugin: the engine
// would report that as a crash ("exited prematurely", with the plugin's output) before it asks the
// plugin to stop. Anything else is said in one line.
const stopping = (err: unknown) =>
  [1, 14].includes((err as { code?: number } | null)?.code ?? -1) ||
  /Resource monitor is terminating|resource monitor shut down/.test(String((err as Error | null)?.message ?? err));
const unexpected = (err: unknown) => {
  if (!stopping(err))
    process.stderr.write(`pulumi-resource-ramroot: ${(err as Error | null)?.message ?? String(err)}\n`);
};
process.on("unhandledRejection", unexpected);
process.on("uncaughtException", unexpected);

const engineAddress = process.argv.slice(2).find((a) => !a.startsWith("-"));
server.serve(engineAddress).catch((err: unknown) => {
  process.stderr.write(`pulumi-resource-ramroot: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
