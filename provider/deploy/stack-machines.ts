/**
 * The machines of a stack: its AbSystems, by name, each with the boot target it deploys to. One
 * stack may declare several (two machines, two boot partitions); `ramroot status|history|
 * rollback|release <machine>` go by that name, and each machine's pin is its own.
 *
 * The target is read from the stack's state, where the last update recorded it: the target input
 * of the AbSystem's SyslinuxConfig (every AbSystem declares one, and stacks deployed before the
 * machines had names hold it already). A stack with no AbSystem in its state yet falls back on
 * `ramroot:target` in its config, as the stack's own program (index.ts) reads it.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import { parseTargetSpec, resolveTargetSpec, type TargetSpec } from "../boot/target-spec";
import { AB_SYSTEM_TOKEN, SYSLINUX_CONFIG_TOKEN } from "../resources/tokens";
import { InputError } from "../ramroot-error";

/** The AbSystem name the stack's own program (components/machine-program.ts) declares. */
export const STACK_MACHINE_NAME = "machine";

/** The token stacks deployed before the component moved into the provider recorded. */
const OLD_AB_SYSTEM_TOKEN = "ramroot:components:AbSystem";

/** The marker of a secret in an exported state (`pulumi stack export --show-secrets`). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export interface StackMachine {
  name: string;
  /** the target as the last update recorded it; undefined when no update got as far as syslinux */
  target?: TargetSpec;
}

interface StateResource {
  urn: string;
  type: string;
  parent?: string;
  inputs?: Record<string, unknown>;
}

/** A value of an exported state with its secrets shown as plain values. */
function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (value === null || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  if (record[SECRET_SIG] !== undefined && typeof record.plaintext === "string")
    return revealed(JSON.parse(record.plaintext));
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, revealed(v)]));
}

const isAbSystem = (r: StateResource) => r.type === AB_SYSTEM_TOKEN || r.type === OLD_AB_SYSTEM_TOKEN;

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

/** The AbSystems of an exported deployment, sorted by name (not by the state's order), each with its recorded target. */
export function machinesOf(resources: readonly StateResource[], projectDir: string): StackMachine[] {
  const systems = resources.filter(isAbSystem).sort((a, b) => (nameOf(a.urn) < nameOf(b.urn) ? -1 : 1));
  return systems.map((system) => {
    const syslinux = resources.find((r) => r.parent === system.urn && r.type === SYSLINUX_CONFIG_TOKEN);
    const target = revealed(syslinux?.inputs?.target);
    return {
      name: nameOf(system.urn),
      ...(target !== undefined ? { target: resolveTargetSpec(parseTargetSpec(target), projectDir) } : {}),
    };
  });
}

async function stateResources(stack: Stack): Promise<StateResource[]> {
  const exported = await stack.exportStack();
  return (exported.deployment as { resources?: StateResource[] } | undefined)?.resources ?? [];
}

/** The stack's machines, from its state (secrets shown: an ssh key in a target is needed to reach it). */
async function stackMachines(stack: Stack, projectDir: string): Promise<StackMachine[]> {
  return machinesOf(await stateResources(stack), projectDir);
}

/** The names of the stack's machines (its AbSystems), from its state. */
export async function machineNames(stack: Stack): Promise<string[]> {
  return (await stateResources(stack))
    .filter(isAbSystem)
    .map((r) => nameOf(r.urn))
    .sort();
}

/** The stack's target from its config (ramroot:target), with paths resolved like the program does. */
async function configTarget(stack: Stack, projectDir: string): Promise<TargetSpec | undefined> {
  const value = (await stack.getAllConfig())["ramroot:target"]?.value;
  return value === undefined ? undefined : resolveTargetSpec(parseTargetSpec(JSON.parse(value)), projectDir);
}

function machineRefusal(given: string, reason: string, fix: string): InputError {
  return new InputError(
    "machine name",
    [{ property: "machine", reason: `machine: got ${JSON.stringify(given)}; ${reason}` }],
    fix,
  );
}

/**
 * The machine a verb works on: the one named, else the stack's only one. A stack that has deployed
 * no AbSystem yet has its config's target (ramroot:target), under the stack program's name.
 */
export async function stackMachine(
  stack: Stack,
  projectDir: string,
  name?: string,
): Promise<StackMachine & { target: TargetSpec }> {
  const machines = await stackMachines(stack, projectDir);
  if (name === undefined && machines.length > 1)
    throw new InputError(
      "machine name",
      [
        {
          property: "machine",
          reason: `machine: none named; stack ${stack.name} has ${machines.length} machines (${machines.map((m) => m.name).join(", ")})`,
        },
      ],
      `name one, e.g. \`ramroot status ${machines[0]!.name}\``,
    );
  const machine = name === undefined ? machines[0] : machines.find((m) => m.name === name);
  if (machine?.target) return { name: machine.name, target: machine.target };
  if (machines.length === 0 && (name === undefined || name === STACK_MACHINE_NAME)) {
    const target = await configTarget(stack, projectDir);
    if (target) return { name: STACK_MACHINE_NAME, target };
    throw new InputError(
      "stack config",
      [{ property: "ramroot:target", reason: `ramroot:target: stack ${stack.name} has none and no deployed machine` }],
      "set it (`pulumi config set --path ramroot:target.kind image` ..., see README) and run `pulumi up`",
    );
  }
  if (!machine)
    throw machineRefusal(
      name!,
      `stack ${stack.name} has no machine (AbSystem) of that name`,
      machines.length > 0
        ? `name one of its machines: ${machines.map((m) => m.name).join(", ")}`
        : `run \`pulumi up\` on stack ${stack.name} first`,
    );
  throw machineRefusal(
    machine.name,
    "no update has recorded its target yet (its first `pulumi up` did not get as far as syslinux)",
    "run `pulumi up` until it deploys",
  );
}
