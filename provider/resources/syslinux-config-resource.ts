import { z } from "zod";
import { openTarget, targetSpecSchema, type BootTarget, type TargetSpec } from "../boot/target";
import {
  findSyslinuxConfigPath,
  normalizeSyslinuxConfig,
  readSyslinuxConfig,
  renderSyslinuxConfig,
  syslinuxConfigSpecSchema,
  writeSyslinuxConfig,
  type SyslinuxConfigSpec,
} from "../boot/syslinux-config";
import { sha256Hex } from "../boot/file-hash";
import { checkInputs } from "./check-inputs";
import { diffProperties } from "./property-diff";
import type { CheckOutcome, OperationContext, ResourceHandler } from "./resource-handler";

export const SYSLINUX_CONFIG_TOKEN = "ramroot:index:SyslinuxConfig";

/** Inputs: where the boot partition is, and the config it should hold. */
export type SyslinuxConfigInputs = SyslinuxConfigSpec & { target: TargetSpec };

export interface SyslinuxConfigOutputs extends SyslinuxConfigInputs {
  /** where the config lives on the target, e.g. "syslinux.cfg" */
  path: string;
  /** sha256 of the file as it is on the target (refresh re-reads it) */
  sha256: string;
  /** the DEFAULT label the file names (refresh re-reads it) */
  activeDefault: string;
}

const targetInputSchema = z.object({ target: targetSpecSchema });

function checkSyslinuxConfigInputs(news: unknown): CheckOutcome<SyslinuxConfigInputs> {
  const { target, ...rest } = (news ?? {}) as Record<string, unknown>;
  const t = checkInputs(targetInputSchema, { target });
  const s = checkInputs(syslinuxConfigSpecSchema, rest);
  if (!t.ok || !s.ok) return { ok: false, failures: [...(t.ok ? [] : t.failures), ...(s.ok ? [] : s.failures)] };
  return { ok: true, inputs: { target: t.inputs.target, ...normalizeSyslinuxConfig(s.inputs) } };
}

function specOf(inputs: SyslinuxConfigInputs): SyslinuxConfigSpec {
  const { target: _target, ...spec } = inputs;
  return spec;
}

function inputsOf(outs: SyslinuxConfigOutputs): SyslinuxConfigInputs {
  const { path: _p, sha256: _s, activeDefault: _d, ...inputs } = outs;
  return inputs;
}

async function withTarget<T>(spec: TargetSpec, fn: (target: BootTarget) => Promise<T>): Promise<T> {
  const target = await openTarget(spec);
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}

async function write(inputs: SyslinuxConfigInputs, ctx: OperationContext): Promise<SyslinuxConfigOutputs> {
  const rendered = renderSyslinuxConfig(specOf(inputs));
  if (ctx.preview) {
    // A preview only reads: where the file will go, when the target can be looked at already.
    const path = await withTarget(inputs.target, (target) => findSyslinuxConfigPath(target)).catch(() => "");
    return { ...inputs, path, sha256: sha256Hex(rendered), activeDefault: inputs.defaultLabel };
  }
  return withTarget(inputs.target, async (target) => {
    const { path, sha256 } = await writeSyslinuxConfig(target, specOf(inputs));
    ctx.log(`wrote ${path} on ${target.describe()}: DEFAULT ${inputs.defaultLabel}`);
    return { ...inputs, path, sha256, activeDefault: inputs.defaultLabel };
  });
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
