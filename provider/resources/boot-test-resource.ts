import { z } from "zod";
import { heartbeat } from "../progress";
import { bootQemu, logTail } from "../qemu/boot";
import { ARCHES } from "../arch";
import { checkInputs } from "./check-inputs";
import { diffProperties } from "./property-diff";
import type { OperationContext, ResourceHandler } from "./resource-handler";

import { BOOT_TEST_TOKEN } from "./tokens";
import { MachineError } from "../ramroot-error";

export const bootTestInputsSchema = z.strictObject({
  /** the image under test: a new imageId means a new boot test */
  imageId: z.string().min(1, "expected the image id"),
  kernel: z.string().min(1, "expected the kernel file"),
  initrd: z.array(z.string().min(1)).min(1, "expected the initramfs (and microcode) files"),
  append: z.string().default("rdinit=/sbin/init"),
  /** text the booted image must print on its serial console */
  marker: z.string().min(1, "expected a marker the image prints when it is up"),
  timeoutSeconds: z.number().positive("expected a positive number of seconds").default(180),
  memoryMiB: z.number().int().min(64, "expected at least 64 MiB").default(512),
  /** the image's architecture; absent: x86_64 (so a stack made before it previews no change) */
  arch: z.enum(ARCHES, { error: `expected one of ${ARCHES.join(", ")}` }).optional(),
});

export type BootTestInputs = z.output<typeof bootTestInputsSchema>;
export const bootTestOutputsSchema = z.object({
  passed: z.boolean().describe("the marker was seen"),
  seconds: z.number().describe("boot time"),
});
export interface BootTestOutputs extends BootTestInputs {
  passed: boolean;
  seconds: number;
}

async function run(inputs: BootTestInputs, ctx: OperationContext): Promise<BootTestOutputs> {
  if (ctx.preview) return { ...inputs, passed: false, seconds: 0 };
  ctx.log(`booting image ${inputs.imageId.slice(0, 12)} in QEMU, waiting for "${inputs.marker}"`);
  let lastLine = "";
  const waiting = heartbeat((s) =>
    ctx.log(
      `waiting for "${inputs.marker}": ${s} of at most ${inputs.timeoutSeconds} s${lastLine ? `; console: ${lastLine.slice(0, 80)}` : ""}`,
    ),
  );
  const result = await bootQemu({
    arch: inputs.arch,
    media: { kind: "kernel", kernel: inputs.kernel, initrd: inputs.initrd, append: inputs.append },
    marker: inputs.marker,
    timeoutMs: inputs.timeoutSeconds * 1000,
    memoryMiB: inputs.memoryMiB,
    onOutput: (chunk) => {
      // eslint-disable-next-line no-control-regex
      const line = chunk
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
        .split(/\r?\n/)
        .map((l) => l.replace(/[\x00-\x1f\x7f]/g, "").trim())
        .filter((l) => l !== "")
        .pop();
      if (line) lastLine = line;
    },
  }).finally(() => waiting.stop());
  if (!result.found) {
    const why =
      result.reason === "timeout"
        ? `did not print it within ${inputs.timeoutSeconds} s`
        : `stopped (QEMU exit ${result.exitCode}) before printing it`;
    throw new MachineError(
      `boot test: image ${inputs.imageId.slice(0, 12)} ${why}; nothing was written to the target. Last console lines:\n${logTail(result.log, 15)}`,
    );
  }
  const seconds = Math.round(result.durationMs / 100) / 10;
  ctx.log(`boot test passed in ${seconds} s`);
  return { ...inputs, passed: true, seconds };
}

/** Boots an image in QEMU before it may go to a slot; a failure stops the update. */
export const bootTestHandler: ResourceHandler<BootTestInputs, BootTestOutputs> = {
  token: BOOT_TEST_TOKEN,
  check: (news) => checkInputs(bootTestInputsSchema, news),
  async diff(_id, olds, news) {
    const { passed: _p, seconds: _s, ...old } = olds;
    // Where the files sit does not matter; the image they are does.
    const changes = diffProperties(
      { ...old, kernel: undefined, initrd: undefined },
      { ...news, kernel: undefined, initrd: undefined },
    );
    return { changes };
  },
  async create(inputs, ctx) {
    return { id: ctx.preview ? "" : inputs.imageId, outs: await run(inputs, ctx) };
  },
  async read(_id, olds) {
    const { passed: _p, seconds: _s, ...inputs } = olds;
    return { outs: olds, inputs };
  },
  update: (_id, _olds, news, ctx) => run(news, ctx),
  async delete() {},
};
