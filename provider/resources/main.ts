/**
 * Entry point of the `pulumi-resource-ramroot` plugin. The engine starts it with its own
 * address as the first argument and reads the port it listens on from standard output.
 */
import { ProviderServer } from "./provider-server";
import { syslinuxConfigHandler } from "./syslinux-config-resource";
import { alpineImageHandler } from "./alpine-image-resource";
import { bootSlotHandler } from "./boot-slot-resource";
import { bootTestHandler } from "./boot-test-resource";
import { packageSchema } from "./package-schema";
import { abSystemHandler } from "./ab-system-component";
import { secretPropertyNames } from "./schema";

export const PROVIDER_VERSION = "0.1.0";

const schema = packageSchema(PROVIDER_VERSION);
const server = new ProviderServer({
  name: "ramroot",
  version: PROVIDER_VERSION,
  handlers: [alpineImageHandler, bootSlotHandler, bootTestHandler, syslinuxConfigHandler],
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

const engineAddress = process.argv.slice(2).find((a) => !a.startsWith("-"));
server.serve(engineAddress).catch((err: unknown) => {
  process.stderr.write(`pulumi-resource-ramroot: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
