/**
 * The ramroot program, driven by the stack's config; index.ts runs it, and the engine tests
 * run it as an inline program. Keys (all under the `ramroot:` namespace):
 *
 *   target     where the boot partition is: {kind: local|image|ssh, path, ...}
 *   scheme     syslinux or uefi: the boot scheme the partition must hold (default: the one it holds)
 *   image      the image: release, repositories, keys, packages, overlay, services, ...
 *   strategy   switch (default) or trial
 *   trial      {probePath, timeoutSeconds, reboot} for the trial strategy
 *   bootTest   {marker, timeoutSeconds}: boot the image in QEMU before it is written; false: no
 *              boot test (a boot test that was there goes only by this explicit value)
 *   append     extra kernel command line (kept a Pulumi secret)
 *   secureBoot {privateKey, certificate}: sign each slot's UKI for UEFI Secure Boot (an ESP only;
 *              set the key with `pulumi config set --secret --path ramroot:secureBoot.privateKey`)
 *   wipeOnDelete  true: a destroy removes the slots and syslinux.cfg (default: they stay)
 *   pins       {<machine>: {update, planId, imageId}}: written by `ramroot rollback`, removed
 *              by `ramroot release`; each AbSystem reads its own from the stack config (a
 *              stack's `pin` from before machines had names is still read, for every machine)
 *
 * The provider checks the whole `ramroot:` config (provider/deploy/stack-config.ts): a key not
 * listed here, at any depth, stops the preview naming the key it most likely meant.
 */
import * as pulumi from "./pulumi-sdk";
import { AbSystem, type AbSystemArgs } from "./ab-system";

/**
 * A config value as given: JSON when it parses (objects, lists, booleans), else its text. Nothing
 * is refused here: the provider checks the whole `ramroot:` config and names every bad key, so a
 * typed read that fails first (with the SDK's less helpful message) is avoided.
 */
function json<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as unknown as T;
  }
}

/** The exit code that tells the Node.js language host the program failed and has said why (the SDK's own). */
const PROGRAM_FAILED_AFTER_LOGGING = 32;

export async function machineProgram(): Promise<Record<string, pulumi.Output<unknown>>> {
  const config = new pulumi.Config("ramroot");
  // Typed as the component takes them; the provider checks what they really are.
  const strategy = config.get("strategy") as AbSystemArgs["strategy"];
  const scheme = config.get("scheme") as AbSystemArgs["scheme"];
  const trial = json<AbSystemArgs["trial"]>(config.get("trial"));
  const bootTest = json<AbSystemArgs["bootTest"]>(config.get("bootTest"));
  const wipeOnDelete = json<AbSystemArgs["wipeOnDelete"]>(config.get("wipeOnDelete"));
  // Secrets stay secrets: the ssh key (set with `pulumi config set --secret --path
  // ramroot:target.privateKey`) and the kernel command line (it can carry a token; the SDK cannot
  // tell a secret config value from a plain one, so a set append is always kept secret).
  const target = json<AbSystemArgs["target"]>(config.get("target"));
  const append = config.get("append") !== undefined ? config.requireSecret("append") : undefined;
  const secureBoot =
    config.get("secureBoot") !== undefined
      ? config.requireSecret("secureBoot").apply((t) => json<AbSystemArgs["secureBoot"]>(t))
      : undefined;
  const sshKey = typeof target === "object" && target !== null && "privateKey" in target;
  // The name `ramroot status|rollback|release` use when none is given (STACK_MACHINE_NAME).
  const system = new AbSystem("machine", {
    // Missing or malformed, they go to the provider as they are: it names what is wrong.
    target: (sshKey ? pulumi.secret(target) : target) as AbSystemArgs["target"],
    image: json<AbSystemArgs["image"]>(config.get("image")) as AbSystemArgs["image"],
    ...(scheme !== undefined ? { scheme } : {}),
    ...(strategy !== undefined ? { strategy } : {}),
    ...(trial !== undefined ? { trial } : {}),
    ...(bootTest !== undefined ? { bootTest } : {}),
    ...(append !== undefined ? { append } : {}),
    ...(wipeOnDelete !== undefined ? { wipeOnDelete } : {}),
    ...(secureBoot !== undefined ? { secureBoot: secureBoot as AbSystemArgs["secureBoot"] } : {}),
  });
  // A trial that failed leaves DEFAULT where it was, and the outputs say so (they read as before);
  // the update fails with what was seen, once those outputs are registered.
  system.failedTrial.apply((failure) => {
    if (failure === undefined || failure === null) return;
    void pulumi.log.error(failure, system);
    process.exitCode = PROGRAM_FAILED_AFTER_LOGGING;
  });
  return {
    activeSlot: system.activeSlot,
    imageId: system.imageId,
    planId: system.planId,
    packages: system.packages,
    artifacts: system.artifacts,
    syslinuxDefault: system.syslinuxDefault,
    pinned: system.pinned,
  };
}
