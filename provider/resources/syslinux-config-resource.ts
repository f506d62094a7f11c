import { z } from "zod";
import { targetSpecSchema, withTarget, type BootTarget, type TargetSpec } from "../boot/target";
import type { PartitionVolume } from "../boot/fat-volume-id";
import {
  normalizeSyslinuxConfig,
  syslinuxConfigSpecSchema,
  type SyslinuxConfigSpec,
} from "../boot/schemes/syslinux/config";
import { sha256Hex } from "../file-hash";
import { currentDefault, readJournal, recordDefault } from "../boot/journal";
import { heldLease, withLease } from "../boot/lease";
import { assertLabelBootable } from "../boot/slot";
import { trialBoot, TrialFailedError } from "../boot/trial";
import { schemeSchema, trialSchema, type TrialInputs } from "../deploy/ab-system-inputs";
import { switchBootConfig } from "../boot/switch-config";
import { assertBootPartition, assertSchemeOn, NotBootPartitionError, schemeOf } from "../boot/schemes/registry";
import type { BootSchemeName } from "../boot/schemes/boot-scheme";
import { syslinuxScheme } from "../boot/schemes/syslinux/scheme";
import { uefiScheme } from "../boot/schemes/uefi/scheme";
import { FieldError } from "../ramroot-error";
import { IMAGE_ID_PATH } from "../machine/image-id";
import { checkInputs } from "./check-inputs";
import { noteWritten, wasWrittenThisRun, wipeOnDeleteSchema } from "./delete-policy";
import { diffProperties } from "./property-diff";
import { formatTargetId, parseTargetId } from "./target-id";
import { diffTarget, partitionVolumeSchema } from "./target-diff";
import { sameTarget } from "../boot/target-identity";
import type { CheckOutcome, OperationContext, ResourceHandler } from "./resource-handler";

import { SYSLINUX_CONFIG_TOKEN } from "./tokens";

/** Inputs: where the boot partition is, the config it should hold, and how DEFAULT changes. */
export type SyslinuxConfigInputs = SyslinuxConfigSpec & {
  target: TargetSpec;
  /** the boot scheme the partition must hold; absent: the one it holds (syslinux.cfg, or systemd-boot's loader.conf and entries) */
  scheme?: BootSchemeName;
  /** "switch" rewrites DEFAULT at once; "trial" boots the new DEFAULT once and promotes it when it answers */
  strategy: "switch" | "trial";
  trial?: TrialInputs;
  /** true: deleting the resource removes the file (default false: it stays, the partition keeps booting) */
  wipeOnDelete?: boolean;
  /** set by the AbSystem component while a rollback pins the stack: the journal records the switch as a rollback to this update */
  rollbackTo?: number;
  /** the image DEFAULT switches to passed a boot test: the journal records the gate (provider/deploy/gates.ts) */
  bootTest?: boolean;
};

export interface SyslinuxConfigOutputs extends Omit<SyslinuxConfigInputs, "scheme"> {
  /** the scheme the config is written for: the one the partition holds (unknown in a preview that cannot look) */
  scheme?: BootSchemeName;
  /** what deleting this resource will do to the file */
  onDelete: string;
  /** where the config lives on the target, e.g. "syslinux.cfg" */
  path: string;
  /** sha256 of the file as it is on the target (refresh re-reads it) */
  sha256: string;
  /** the DEFAULT label the file names (refresh re-reads it) */
  activeDefault: string;
  /** set when this update's trial failed: what was seen (DEFAULT stayed; the outputs describe the file as it is) */
  failedTrial?: string;
  /** the FAT volume the target is on: the partition's identity (target-identity.ts); null when on none */
  volume?: PartitionVolume | null;
}

const deploySchema = z
  .object({
    target: targetSpecSchema,
    scheme: schemeSchema.optional(),
    strategy: z
      .enum(["switch", "trial"], { error: 'expected "switch" or "trial"' })
      .default("switch")
      .describe(
        "switch: rewrite DEFAULT at once; trial (ssh targets): boot the new DEFAULT once and promote it when the machine answers healthy (an image without health checks: when it answers with its image id)",
      ),
    trial: trialSchema.optional(),
    wipeOnDelete: wipeOnDeleteSchema,
    rollbackTo: z
      .number()
      .int("expected an update number")
      .min(1, "expected an update number (1 or more)")
      .optional()
      .describe("the update a rollback went back to: the journal records the switch as a rollback to it"),
    bootTest: z
      .boolean()
      .optional()
      .describe(
        "the image DEFAULT switches to passed a boot test: the journal on the target records it, so a later deploy drops the gate only explicitly",
      ),
  })
  .superRefine((v, ctx) => {
    if (v.strategy === "trial" && v.target.kind !== "ssh") {
      ctx.addIssue({
        code: "custom",
        path: ["strategy"],
        input: v.strategy,
        message:
          'expected "switch": a trial waits for the booted machine to answer over ssh, and this target is not an ssh target',
      });
    }
  });

/** Inputs and outputs for the package schema (provider/resources/schema.ts). */
export const syslinuxConfigInputsSchema = z.object({ ...deploySchema.shape, ...syslinuxConfigSpecSchema.shape });
export const syslinuxConfigOutputsSchema = z.object({
  path: z.string().describe("where syslinux reads the config, e.g. syslinux.cfg"),
  sha256: z.string().describe("sha256 of the file as it is on the target"),
  activeDefault: z.string().describe("the DEFAULT label the file names"),
  onDelete: z.string().describe("what deleting this resource will do to the file"),
  failedTrial: z
    .string()
    .optional()
    .describe(
      "set when the update's trial failed: what was seen; DEFAULT stayed, and the other outputs describe the file as it is on the partition",
    ),
  volume: partitionVolumeSchema,
  scheme: z
    .string()
    .optional()
    .describe(
      "the boot scheme the config is written for: syslinux (syslinux.cfg) or uefi (loader/loader.conf and loader/entries/<label>.conf)",
    ),
});

function checkSyslinuxConfigInputs(news: unknown): CheckOutcome<SyslinuxConfigInputs> {
  const { target, scheme, strategy, trial, wipeOnDelete, rollbackTo, bootTest, ...rest } = (news ?? {}) as Record<
    string,
    unknown
  >;
  const d = checkInputs(deploySchema, { target, scheme, strategy, trial, wipeOnDelete, rollbackTo, bootTest });
  const s = checkInputs(syslinuxConfigSpecSchema, rest);
  if (!d.ok || !s.ok) return { ok: false, failures: [...(d.ok ? [] : d.failures), ...(s.ok ? [] : s.failures)] };
  const deploy = d.inputs;
  return {
    ok: true,
    inputs: {
      target: deploy.target,
      ...(deploy.scheme !== undefined ? { scheme: deploy.scheme } : {}),
      strategy: deploy.strategy,
      ...(deploy.strategy === "trial" ? { trial: deploy.trial ?? trialSchema.parse({}) } : {}),
      ...(deploy.wipeOnDelete !== undefined ? { wipeOnDelete: deploy.wipeOnDelete } : {}),
      ...(deploy.rollbackTo !== undefined ? { rollbackTo: deploy.rollbackTo } : {}),
      ...(deploy.bootTest !== undefined ? { bootTest: deploy.bootTest } : {}),
      ...normalizeSyslinuxConfig(s.inputs),
    },
  };
}

function specOf(inputs: SyslinuxConfigInputs): SyslinuxConfigSpec {
  const {
    target: _target,
    scheme: _scheme,
    strategy: _s,
    trial: _t,
    wipeOnDelete: _w,
    rollbackTo: _r,
    bootTest: _b,
    ...spec
  } = inputs;
  return spec;
}

function inputsOf(outs: SyslinuxConfigOutputs): SyslinuxConfigInputs {
  // `scheme` is read back as the input it stands for: what the partition holds.
  const { path: _p, sha256: _s, activeDefault: _d, onDelete: _o, failedTrial: _f, volume: _v, ...inputs } = outs;
  return inputs;
}

function onDelete(inputs: SyslinuxConfigInputs): string {
  return inputs.wipeOnDelete === true
    ? "removes the config (wipeOnDelete): the partition will not boot until a config is written again"
    : "keeps the config on the partition, so it keeps booting its DEFAULT (set wipeOnDelete: true and run up to remove it on delete)";
}

async function write(
  inputs: SyslinuxConfigInputs,
  ctx: OperationContext,
  known?: PartitionVolume | null,
): Promise<SyslinuxConfigOutputs> {
  /** The volume as the state knows it (the same place), else read from the target. */
  const volumeOf = async (target: BootTarget) => (known !== undefined ? known : ((await target.bootVolume()) ?? null));
  if (ctx.preview) {
    // A preview only reads: where the file will go, when the target can be looked at already;
    // a place that is no boot partition stops it.
    const seen = await withTarget(inputs.target, async (target) => {
      await assertBootPartition(target);
      if (inputs.scheme !== undefined) await assertSchemeOn(target, inputs.scheme);
      const scheme = await schemeOf(target);
      return { path: await scheme.configPath(target), volume: await volumeOf(target), scheme };
    }).catch((err: Error) => {
      if (err instanceof NotBootPartitionError || err instanceof FieldError) throw err;
      return { path: "", volume: undefined, scheme: undefined };
    });
    // Where the target cannot be looked at yet, the hash is the named scheme's, else syslinux's
    // (the scheme a new partition is taken for).
    const named = inputs.scheme === "uefi" ? uefiScheme : syslinuxScheme;
    const rendered = (seen.scheme ?? named).renderConfig(specOf(inputs));
    const scheme = seen.scheme?.name ?? inputs.scheme;
    return {
      ...inputs,
      ...(scheme !== undefined ? { scheme } : {}),
      path: seen.path,
      sha256: sha256Hex(rendered),
      activeDefault: inputs.defaultLabel,
      onDelete: onDelete(inputs),
      ...(seen.volume !== undefined ? { volume: seen.volume } : {}),
    };
  }
  const leaseOptions = {
    owner: `pulumi up: SyslinuxConfig DEFAULT ${inputs.defaultLabel}`,
    log: (m: string) => ctx.log(m),
  };
  // A trial reboots the machine between its steps, so it manages its own connections; the
  // lease is held over a connection of its own for the whole trial.
  if (inputs.strategy === "trial" && inputs.trial) {
    const trial = inputs.trial;
    const before = await withTarget(inputs.target, async (target) => {
      await assertBootPartition(target);
      if (inputs.scheme !== undefined) await assertSchemeOn(target, inputs.scheme);
      return currentDefault(target);
    });
    if (before === undefined || before.label.toLowerCase() !== inputs.defaultLabel.toLowerCase()) {
      return withTarget(inputs.target, (leaseTarget) =>
        withLease(leaseTarget, { ...leaseOptions, ttlSeconds: trial.timeoutSeconds + 300 }, async () => {
          await withTarget(inputs.target, async (target) => {
            await readJournal(target); // a damaged journal stops the switch before it happens
            await assertLabelBootable(
              target,
              specOf(inputs),
              inputs.defaultLabel,
              await (await schemeOf(target)).configPath(target),
            );
          });
          noteWritten(inputs.target, "syslinux config");
          const written = await trialBoot(inputs.target, specOf(inputs), { ...trial, log: (m) => ctx.log(m) }).catch(
            (err: unknown) => {
              if (err instanceof TrialFailedError && before !== undefined) return err;
              throw err;
            },
          );
          if (written instanceof TrialFailedError) {
            const failed = written;
            return withTarget(inputs.target, async (target) =>
              afterFailedTrial(inputs, before!.label, failed, await volumeOf(target)),
            );
          }
          return withTarget(inputs.target, async (target) =>
            recordWrite(target, inputs, before, written, ctx, await volumeOf(target)),
          );
        }),
      );
    }
  }
  // Otherwise one connection, under the target's lease (the one a slot write of this deploy
  // took, when there was one): what DEFAULT boots, the checks, the write compared and swapped
  // against what was read, the journal. The lease is released after this last write.
  return withTarget(inputs.target, async (target) => {
    await assertBootPartition(target);
    if (inputs.scheme !== undefined) await assertSchemeOn(target, inputs.scheme);
    // A file that already says exactly this is only read: no lease, nothing on the partition
    // changes (a connection-only update writes nothing). A lease a slot write of this deploy
    // kept for the switch is let go.
    const scheme = await schemeOf(target);
    const current = await scheme.readConfig(target);
    if (current && current.text === scheme.renderConfig(specOf(inputs))) {
      await heldLease(target)?.release(target);
      ctx.log(`${current.path} on ${target.describe()} already holds this config: nothing to write`);
      return {
        ...inputs,
        scheme: scheme.name,
        path: current.path,
        sha256: sha256Hex(current.text),
        activeDefault: current.spec.defaultLabel,
        onDelete: onDelete(inputs),
        volume: await volumeOf(target),
      };
    }
    return withLease(target, leaseOptions, async (lease) => {
      const before = await currentDefault(target);
      await readJournal(target); // a damaged journal stops the switch before it happens
      const written = await switchBootConfig(target, specOf(inputs), {
        lease,
        beforeWrite: () => noteWritten(inputs.target, "syslinux config"),
        onStaleOnce: (stale) =>
          ctx.log(
            `cleared a pending one-time boot of ${stale} on ${target.describe()} (left by an interrupted trial?): the new config has no such label, and the boot loader would not boot it`,
            "warning",
          ),
      });
      return recordWrite(target, inputs, before, written, ctx, await volumeOf(target));
    });
  });
}

/**
 * A trial that failed: DEFAULT stayed, the file holds the new entries without the trial one. The
 * outputs say so (the old DEFAULT, the file's hash), so the state matches the partition and the
 * next preview has nothing to change; `failedTrial` carries what was seen (the AbSystem's program
 * fails the update with it, after its outputs are registered as they were).
 */
function afterFailedTrial(
  inputs: SyslinuxConfigInputs,
  defaultLabel: string,
  err: TrialFailedError,
  volume: PartitionVolume | null,
): SyslinuxConfigOutputs {
  return {
    ...inputs,
    defaultLabel,
    path: err.config?.path ?? "",
    sha256: err.config?.sha256 ?? "",
    activeDefault: defaultLabel,
    onDelete: onDelete(inputs),
    failedTrial: err.message,
    volume,
  };
}

/** After a write: the journal on the target says what each switch deployed (status and rollback read it). */
async function recordWrite(
  target: BootTarget,
  inputs: SyslinuxConfigInputs,
  before: Awaited<ReturnType<typeof currentDefault>>,
  written: { path: string; sha256: string },
  ctx: OperationContext,
  volume: PartitionVolume | null,
): Promise<SyslinuxConfigOutputs> {
  ctx.log(`wrote ${written.path} on ${target.describe()}: DEFAULT ${inputs.defaultLabel}`);
  const after = await currentDefault(target);
  if (after && (before === undefined || before.label !== after.label || before.imageId !== after.imageId)) {
    await recordDefault(
      target,
      inputs.rollbackTo !== undefined ? "rollback" : inputs.strategy,
      undefined,
      inputs.rollbackTo,
      {
        bootTest: inputs.bootTest === true,
        trial: inputs.strategy === "trial",
      },
    );
  }
  return {
    ...inputs,
    scheme: (await schemeOf(target)).name,
    path: written.path,
    sha256: written.sha256,
    activeDefault: inputs.defaultLabel,
    onDelete: onDelete(inputs),
    volume,
  };
}

/** The inputs that describe a config file as it is: what `pulumi import` adopts and `refresh` records. */
function inputsFromFile(
  spec: SyslinuxConfigSpec,
  deploy: Pick<
    SyslinuxConfigInputs,
    "target" | "scheme" | "strategy" | "trial" | "wipeOnDelete" | "rollbackTo" | "bootTest"
  >,
): SyslinuxConfigInputs {
  return {
    target: deploy.target,
    ...(deploy.scheme !== undefined ? { scheme: deploy.scheme } : {}),
    strategy: deploy.strategy,
    ...(deploy.trial ? { trial: deploy.trial } : {}),
    ...(deploy.wipeOnDelete !== undefined ? { wipeOnDelete: deploy.wipeOnDelete } : {}),
    ...(deploy.rollbackTo !== undefined ? { rollbackTo: deploy.rollbackTo } : {}),
    ...(deploy.bootTest !== undefined ? { bootTest: deploy.bootTest } : {}),
    ...normalizeSyslinuxConfig(spec),
  };
}

/** `syslinux.cfg` on a boot target: rendered from the inputs, replaced atomically, re-read on refresh. */
export const syslinuxConfigHandler: ResourceHandler<SyslinuxConfigInputs, SyslinuxConfigOutputs> = {
  token: SYSLINUX_CONFIG_TOKEN,

  check: checkSyslinuxConfigInputs,

  async diff(_id, olds, news) {
    // The gate record changes nothing on the partition: it is written with the next switch.
    const { target: oldTarget, bootTest: _ob, scheme: oldScheme, ...oldRest } = inputsOf(olds);
    const { target: newTarget, bootTest: _nb, scheme: newScheme, ...newRest } = news;
    // An absent scheme means the partition's own (what the state recorded): no change. A named
    // one is a change only when it is not the one recorded (the write then checks the partition).
    const schemeChanges = newScheme !== undefined ? diffProperties({ scheme: oldScheme }, { scheme: newScheme }) : {};
    const target = await diffTarget(oldTarget, olds.volume, newTarget);
    // Field by field: refresh re-reads the file, so a hand edit shows as the field it changed.
    const changes = { ...target.changes, ...schemeChanges, ...diffProperties(oldRest, newRest) };
    return { changes, replaces: target.replace ? ["target"] : [] };
  },

  async create(inputs, ctx) {
    const outs = await write(inputs, ctx);
    return { id: ctx.preview ? "" : formatTargetId(inputs.target), outs };
  },

  /** Re-reads and parses the file: refresh records the fields it holds now; an import adopts it by its id. */
  async read(id, olds, ctx) {
    const known = olds.target !== undefined;
    const spec = known ? olds.target : parseTargetId(id).target;
    return withTarget(spec, async (target) => {
      const found = await (await schemeOf(target)).readConfig(target);
      if (!found) {
        ctx.log(`no boot config on ${target.describe()}`, "warning");
        return undefined;
      }
      const inputs = inputsFromFile(
        found.spec,
        known ? { ...olds, scheme: undefined } : { target: spec, strategy: "switch" },
      );
      return {
        inputs,
        outs: {
          ...inputs,
          scheme: (await schemeOf(target)).name,
          path: found.path,
          sha256: sha256Hex(found.text),
          activeDefault: found.spec.defaultLabel,
          onDelete: onDelete(inputs),
          volume: (await target.bootVolume()) ?? null,
        },
      };
    });
  },

  async update(_id, olds, news, ctx) {
    // The same place is the same volume as recorded (a refresh re-reads it): no need to look again.
    return write(news, ctx, sameTarget(olds.target, news.target) ? olds.volume : undefined);
  },

  /** Lets go of the file (it stays, so the partition keeps booting), unless wipeOnDelete asks for a removal. */
  async delete(_id, olds, ctx) {
    const where = `${olds.path || "the syslinux config"} on ${formatTargetId(olds.target)}`;
    if (olds.wipeOnDelete !== true) {
      ctx.log(
        `left ${where} in place: deleting the resource lets go of it, the partition keeps booting DEFAULT ${olds.activeDefault} (wipeOnDelete is off)`,
        "warning",
      );
      return;
    }
    if (wasWrittenThisRun(olds.target, "syslinux config")) {
      ctx.log(`kept ${where}: its replacement wrote it in this update`, "warning");
      return;
    }
    await withTarget(olds.target, (target) =>
      withLease(target, { owner: "pulumi destroy: SyslinuxConfig", log: (m) => ctx.log(m) }, async () => {
        const found = await (await schemeOf(target)).readConfig(target);
        if (!found) return;
        if (sha256Hex(found.text) !== olds.sha256) {
          ctx.log(`kept ${found.path} on ${target.describe()}: it changed since this resource wrote it`, "warning");
          return;
        }
        await target.remove(found.path);
        ctx.log(`removed ${found.path} from ${target.describe()} (wipeOnDelete)`, "warning");
      }),
    );
  },
};
