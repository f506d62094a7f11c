/**
 * The A/B component's inputs, validated once at the edge (the provider's Construct): every bad
 * field is named with its value and what is accepted. Relative paths (the image's overlay, keys
 * and local repositories, a local or disk-image target) resolve against the project directory.
 */
import { z } from "zod";
import { parseInput } from "../input-error";
import { imageConfigSchema } from "../image/image-config";
import { absoluteImageConfig } from "../image/absolute-paths";
import { resolveTargetSpec, targetSpecSchema, type TargetSpec } from "../boot/target-spec";
import { userAppendSchema } from "../machine/kernel-append";
import { IMAGE_ID_PATH } from "../machine/image-id";
import type { SlotPair } from "./ab-decision";
import { readUkiSigner, type UkiSigner } from "../secure-boot-signing";
import { FieldError, InputError } from "../ramroot-error";

const slotName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,7}$/, "expected a slot name of 1-8 lower-case letters, digits, _ or -");
const oneLine = z.string().refine((v) => !/[\r\n]/.test(v), "expected a single line");

/** A boot test: boot the config's image in QEMU and require `marker` before a slot is written or DEFAULT switches to it. */
const bootTestSchema = z.strictObject({
  marker: z.string().min(1, "expected a marker the image prints when it is up"),
  timeoutSeconds: z.number().positive("expected a positive number of seconds").default(180),
  append: userAppendSchema.default(""),
});

/** The boot scheme a deploy expects on the partition; absent: the partition's own (schemes/registry.ts). */
export const schemeSchema = z
  .enum(["syslinux", "uefi"], {
    error: 'expected "syslinux" (BIOS) or "uefi" (systemd-boot on an EFI system partition)',
  })
  .describe(
    "the boot scheme: syslinux (BIOS) or uefi (systemd-boot on an ESP); absent: the one found on the partition. A partition that holds the other is refused",
  );

export const strategySchema = z.enum(["switch", "trial"], { error: 'expected "switch" or "trial"' });

/** How a trial runs: the one shape the AbSystem, SyslinuxConfig and the stack config take. */
export const trialSchema = z
  .strictObject({
    probePath: z
      .string()
      .startsWith("/", "expected an absolute path on the machine")
      .default(IMAGE_ID_PATH)
      .describe("a file the booted image writes with its image id"),
    timeoutSeconds: z
      .number()
      .positive("expected a positive number of seconds")
      .default(300)
      .describe("how long to wait for the machine to answer"),
    reboot: z.boolean().default(true).describe("reboot the machine to start the trial"),
  })
  .describe("how a trial runs");

export type TrialInputs = z.output<typeof trialSchema>;

/**
 * bootTest as given: the test, or `false` to deploy without one (a boot test that was there goes
 * only by this explicit value: provider/deploy/gates.ts).
 */
export const bootTestInputSchema = z
  .union([bootTestSchema, z.literal(false)], {
    error: "expected {marker, timeoutSeconds?, append?}, or false to deploy without a boot test",
  })
  .optional();

/** Secure Boot's key pair, as AbSystem and the stack config (`ramroot:secureBoot`) take it. */
export const secureBootSchema = z
  .strictObject({
    privateKey: z.string().min(1, "expected PEM text or the path of a PEM file").meta({
      secret: true,
      description:
        "the RSA private key that signs each slot's UKIs: PEM text or the path of a PEM file, a Pulumi secret; it reaches sbsign through a pipe and is never written",
    }),
    certificate: z.string().min(1, "expected PEM text or the path of a PEM file"),
  })
  .describe(
    "{privateKey, certificate}: sign each slot's UKI (the entry's command line baked in) for UEFI Secure Boot; an ESP only; privateKey is a secret, never in the state",
  );

const abSystemShape = {
  image: imageConfigSchema,
  target: targetSpecSchema,
  slots: z.tuple([slotName, slotName]).default(["a", "b"]),
  scheme: schemeSchema.optional(),
  /** kernel command line after rdinit=/sbin/init, the image's cmdline, ramroot.image= and panic= */
  append: userAppendSchema.default(""),
  /** seconds before a panicking kernel reboots */
  panicSeconds: z.number().int("expected whole seconds").min(0, "expected 0 or more seconds").default(10),
  /** deciseconds syslinux waits */
  timeout: z.number().int("expected whole deciseconds").min(0, "expected 0 or more deciseconds").default(10),
  serial: z.union([z.strictObject({ port: z.number().int(), baud: z.number().int() }), z.literal(false)]).optional(),
  /** absent: "switch" (a trial that was there goes only by an explicit "switch": provider/deploy/gates.ts) */
  strategy: strategySchema.optional(),
  trial: trialSchema.optional(),
  /** deleting the component (destroy) removes its slots and the config too; default: they stay */
  wipeOnDelete: z
    .boolean({ error: "expected true or false" })
    .optional()
    .describe(
      "false (default): a destroy leaves the slots and syslinux.cfg on the partition; true: it removes them (apply it with an `up` first)",
    ),
  /** boot the config's image in QEMU and require this marker before a slot is written or DEFAULT switches to it */
  bootTest: bootTestInputSchema,
  /** Secure Boot: each slot gets signed UKIs with its entry's command line (provider/image/uki-slot.ts) */
  secureBoot: secureBootSchema.optional(),
};

export const abSystemInputsSchema = z
  .strictObject(abSystemShape)
  .refine((v) => v.slots[0] !== v.slots[1], { path: ["slots"], message: "expected two different slot names" })
  .superRefine((v, ctx) => {
    if (v.strategy === "trial" && v.target.kind !== "ssh")
      ctx.addIssue({
        code: "custom",
        path: ["strategy"],
        input: v.strategy,
        message: `expected "switch": a trial waits for the booted machine to answer over ssh, and this target is ${v.target.kind}, not ssh`,
      });
  });

/** The inputs as the package schema shows them (other languages, YAML): the image's input side, the slots as a list. */
export const abSystemSchemaInputs = z.object({
  ...abSystemShape,
  image: imageConfigSchema.in.describe("the image: the inputs of AlpineImage"),
  target: targetSpecSchema.describe("the boot partition: {kind: local|image|ssh, path, ...}"),
  slots: z.array(slotName).optional().describe("the two slot names (default a, b)"),
  // It can carry a token: the stack's program always passes it as a secret, and so does every SDK.
  append: userAppendSchema
    .default("")
    .meta({ secret: true })
    .describe("kernel command line after rdinit=/sbin/init, the image's cmdline, ramroot.image= and panic= (a secret)"),
});

/** What the component returns (its outputs describe one image: the one DEFAULT boots). */
export const abSystemSchemaOutputs = z.object({
  activeSlot: z.string().describe("the slot DEFAULT names after the update"),
  writtenSlot: z
    .string()
    .optional()
    .describe("the slot the update writes; absent when the image was already in a slot"),
  imageId: z.string().describe("the image DEFAULT boots"),
  planId: z.string().describe("its plan"),
  packages: z.record(z.string(), z.string()).describe("its packages: name -> version"),
  syslinuxDefault: z.string().describe("DEFAULT in syslinux.cfg on the target"),
  pinned: z.string().optional().describe("update N (image ...) while `ramroot rollback` pins the stack"),
  failedTrial: z
    .string()
    .optional()
    .describe(
      "set when the update's trial failed: what was seen; DEFAULT stayed and the other outputs say what it boots (fail the update with it)",
    ),
});

export type AbSystemInputs = z.output<typeof abSystemInputsSchema>;

/** A rollback's pin, as `ramroot rollback` writes it to the stack config (`ramroot:pin`). */
export const pinSchema = z.strictObject({
  /** the update whose image is pinned (`ramroot history` numbers) */
  update: z.number().int("expected an update number").min(1, "expected an update number (1 or more)"),
  planId: z.string().regex(/^[0-9a-f]{64}$/, "expected the pinned image's plan id (64 hex digits)"),
  imageId: z
    .string()
    .regex(/^[0-9a-f]{64}$/, "expected the pinned image's id (64 hex digits)")
    .optional(),
});

export type Pin = z.output<typeof pinSchema>;

/** The stack config key `ramroot rollback` writes and `ramroot release` removes. */
export const PIN_CONFIG_KEY = "ramroot:pin";

/** Validates the component's inputs and resolves their paths against `baseDir`. */
export function parseAbSystemInputs(
  value: unknown,
  baseDir: string,
): AbSystemInputs & { target: TargetSpec; slots: SlotPair } {
  const inputs = parseInput(abSystemInputsSchema, value, "AbSystem inputs");
  // Secure Boot: the key pair read and checked once, here (PEM texts from here on); the image is
  // then also a UKI, which each slot's signed UKIs are made from.
  let signer: UkiSigner | undefined;
  if (inputs.secureBoot) {
    try {
      signer = readUkiSigner(inputs.secureBoot, baseDir);
    } catch (err) {
      if (err instanceof InputError) throw new InputError("AbSystem inputs", err.failures);
      throw err;
    }
  }
  return {
    ...inputs,
    image: absoluteImageConfig(signer ? { ...inputs.image, uki: true } : inputs.image, baseDir),
    target: resolveTargetSpec(inputs.target, baseDir),
    ...(signer ? { secureBoot: signer } : {}),
  };
}

/** The pin from the stack config's JSON text, or undefined when the stack is not pinned. */
export function parsePin(json: string | undefined): Pin | undefined {
  if (json === undefined || json === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new FieldError(
      PIN_CONFIG_KEY,
      `got ${JSON.stringify(json)}; expected {update, planId} as \`ramroot rollback\` writes it (\`ramroot release\` removes it)`,
    );
  }
  return parseInput(pinSchema, value, PIN_CONFIG_KEY);
}
