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

export const PROVIDER_VERSION = "0.1.0";

const server = new ProviderServer({
  name: "ramroot",
  version: PROVIDER_VERSION,
  handlers: [alpineImageHandler, bootSlotHandler, bootTestHandler, syslinuxConfigHandler],
  schema: JSON.stringify(packageSchema(PROVIDER_VERSION)),
});

const engineAddress = process.argv.slice(2).find((a) => !a.startsWith("-"));
server.serve(engineAddress).catch((err: unknown) => {
  process.stderr.write(`pulumi-resource-ramroot: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
