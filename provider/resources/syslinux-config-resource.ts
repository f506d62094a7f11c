import { z } from "zod";
import { targetSpecSchema, withTarget, type BootTarget, type TargetSpec } from "../boot/target";
import {
  findSyslinuxConfigPath,
  normalizeSyslinuxConfig,
  readSyslinuxConfig,
  renderSyslinuxConfig,
  syslinuxConfigSpecSchema,
  writeSyslinuxConfig,
  type SyslinuxConfigSpec,
} from "../boot/syslinux-config";
import { sha256Hex } from "../file-hash";
import { currentDefault, recordDefault } from "../boot/journal";
import { trialBoot } from "../boot/trial";
import { checkInputs } from "./check-inputs";
import { diffProperties } from "./property-diff";
import type { CheckOutcome, OperationContext, ResourceHandler } from "./resource-handler";

export const SYSLINUX_CONFIG_TOKEN = "ramroot:index:SyslinuxConfig";

export interface TrialInputs {
  /** a file the booted image writes with its image id, read over ssh */
  probePath: string;
  timeoutSeconds: number;
  /** reboot the machine to start the trial (default true) */
  reboot: boolean;
}

/** Inputs: where the boot partition is, the config it should hold, and how DEFAULT changes. */
export type SyslinuxConfigInputs = SyslinuxConfigSpec & {
  target: TargetSpec;
  /** "switch" rewrites DEFAULT at once; "trial" boots the new DEFAULT once and promotes it when it answers */
  strategy: "switch" | "trial";
  trial?: TrialInputs;
};

export interface SyslinuxConfigOutputs extends SyslinuxConfigInputs {
  /** where the config lives on the target, e.g. "syslinux.cfg" */
  path: string;
  /** sha256 of the file as it is on the target (refresh re-reads it) */
  sha256: string;
  /** the DEFAULT label the file names (refresh re-reads it) */
  activeDefault: string;
}

const deploySchema = z
  .object({
    target: targetSpecSchema,
    strategy: z.enum(["switch", "trial"], { error: 'expected "switch" or "trial"' }).default("switch"),
    trial: z
      .strictObject({
        probePath: z.string().startsWith("/", "expected an absolute path on the machine").default("/run/ramroot/image-id"),
        timeoutSeconds: z.number().positive("expected a positive number of seconds").default(300),
        reboot: z.boolean().default(true),
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    if (v.strategy === "trial" && v.target.kind !== "ssh") {
      ctx.addIssue({ code: "custom", path: ["strategy"], input: v.strategy, message: 'expected "switch": a trial waits for the booted machine to answer over ssh, and this target is not an ssh target' });
    }
  });

function checkSyslinuxConfigInputs(news: unknown): CheckOutcome<SyslinuxConfigInputs> {
  const { target, strategy, trial, ...rest } = (news ?? {}) as Record<string, unknown>;
  const d = checkInputs(deploySchema, { target, strategy, trial });
  const s = checkInputs(syslinuxConfigSpecSchema, rest);
  if (!d.ok || !s.ok) return { ok: false, failures: [...(d.ok ? [] : d.failures), ...(s.ok ? [] : s.failures)] };
  const deploy = d.inputs;
  return {
    ok: true,
    inputs: {
      target: deploy.target,
      strategy: deploy.strategy,
      ...(deploy.strategy === "trial" ? { trial: deploy.trial ?? { probePath: "/run/ramroot/image-id", timeoutSeconds: 300, reboot: true } } : {}),
      ...normalizeSyslinuxConfig(s.inputs),
    },
  };
}

function specOf(inputs: SyslinuxConfigInputs): SyslinuxConfigSpec {
  const { target: _target, strategy: _s, trial: _t, ...spec } = inputs;
  return spec;
}

function inputsOf(outs: SyslinuxConfigOutputs): SyslinuxConfigInputs {
  const { path: _p, sha256: _s, activeDefault: _d, ...inputs } = outs;
  return inputs;
}

async function write(inputs: SyslinuxConfigInputs, ctx: OperationContext): Promise<SyslinuxConfigOutputs> {
  const rendered = renderSyslinuxConfig(specOf(inputs));
  if (ctx.preview) {
    // A preview only reads: where the file will go, when the target can be looked at already.
    const path = await withTarget(inputs.target, (target) => findSyslinuxConfigPath(target)).catch(() => "");
    return { ...inputs, path, sha256: sha256Hex(rendered), activeDefault: inputs.defaultLabel };
  }
  // A trial reboots the machine between its steps, so it manages its own connections.
  if (inputs.strategy === "trial" && inputs.trial) {
    const before = await withTarget(inputs.target, (target) => currentDefault(target));
    if (before === undefined || before.label.toLowerCase() !== inputs.defaultLabel.toLowerCase()) {
      const written = await trialBoot(inputs.target, specOf(inputs), { ...inputs.trial, log: (m) => ctx.log(m) });
      return withTarget(inputs.target, (target) => recordWrite(target, inputs, before, written, ctx));
    }
  }
  // Otherwise one connection: what DEFAULT boots, the write, the journal.
  return withTarget(inputs.target, async (target) => {
    const before = await currentDefault(target);
    const written = await writeSyslinuxConfig(target, specOf(inputs));
    return recordWrite(target, inputs, before, written, ctx);
  });
}

/** After a write: the journal on the target says what each switch deployed (status and rollback read it). */
async function recordWrite(
  target: BootTarget,
  inputs: SyslinuxConfigInputs,
  before: Awaited<ReturnType<typeof currentDefault>>,
  written: { path: string; sha256: string },
  ctx: OperationContext,
): Promise<SyslinuxConfigOutputs> {
  ctx.log(`wrote ${written.path} on ${target.describe()}: DEFAULT ${inputs.defaultLabel}`);
  const after = await currentDefault(target);
  if (after && (before === undefined || before.label !== after.label || before.imageId !== after.imageId)) {
    await recordDefault(target, inputs.strategy);
  }
  return { ...inputs, path: written.path, sha256: written.sha256, activeDefault: inputs.defaultLabel };
}

/** `syslinux.cfg` on a boot target: rendered from the inputs, replaced atomically, re-read on refresh. */
export const syslinuxConfigHandler: ResourceHandler<SyslinuxConfigInputs, SyslinuxConfigOutputs> = {
  token: SYSLINUX_CONFIG_TOKEN,

  check: checkSyslinuxConfigInputs,

  async diff(_id, olds, news) {
    const changes = diffProperties(inputsOf(olds), news);
    // A hand edit found by refresh: the file no longer holds what the inputs render.
    if (Object.keys(changes).length === 0 && olds.sha256 !== sha256Hex(renderSyslinuxConfig(specOf(news)))) {
      changes["sha256"] = "update";
    }
    const replaces = Object.keys(changes).some((p) => p === "target" || p.startsWith("target.")) ? ["target"] : [];
    return { changes, replaces };
  },

  async create(inputs, ctx) {
    const outs = await write(inputs, ctx);
    return { id: ctx.preview ? "" : `${inputs.target.kind}:${inputs.target.path}:${outs.path}`, outs };
  },

  async read(_id, olds, ctx) {
    return withTarget(olds.target, async (target) => {
      const found = await readSyslinuxConfig(target);
      if (!found) {
        ctx.log(`no syslinux config on ${target.describe()}`, "warning");
        return undefined;
      }
      return {
        inputs: inputsOf(olds),
        outs: { ...olds, path: found.path, sha256: sha256Hex(found.text), activeDefault: found.spec.defaultLabel },
      };
    });
  },

  async update(_id, _olds, news, ctx) {
    return write(news, ctx);
  },

  async delete(_id, olds, ctx) {
    await withTarget(olds.target, async (target) => {
      if (olds.path) await target.remove(olds.path);
      ctx.log(`removed ${olds.path} from ${target.describe()}`);
    });
  },
};
