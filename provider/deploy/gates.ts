/**
 * The gates a deployment passes before DEFAULT moves to a new image: a boot test (QEMU, before
 * anything is written) and a trial (the machine boots it once and answers healthy). A gate goes
 * only by an explicit value: when the last switch the target's journal records ran under a gate
 * and the config says nothing about it now (a key deleted, or misspelt and refused), the preview
 * stops; when the config turns it off (`bootTest: false`, `strategy: switch`), the preview says
 * the gate goes.
 */
import type { JournalEntry } from "../boot/journal";
import { InputError } from "../ramroot-error";

/** What the config says about each gate; undefined when it says nothing. */
export interface GateChoice {
  bootTest?: boolean;
  trial?: boolean;
}

const GATES = {
  bootTest: {
    key: "bootTest",
    what: "boot-tested its image in QEMU",
    off: "false",
    goes: "the image is written and DEFAULT switched without booting it in QEMU first",
  },
  trial: {
    key: "strategy",
    what: "ran as a trial (boot once, promote when healthy)",
    off: "switch",
    goes: "DEFAULT switches to the new image without a trial boot",
  },
} as const;

/**
 * Refuses (InputError) a gate that the last switch ran under and the config no longer names;
 * returns what the preview should say about gates the config turns off.
 */
export function checkGates(last: JournalEntry | undefined, said: GateChoice): string[] {
  const notes: string[] = [];
  const failures = [];
  for (const gate of ["bootTest", "trial"] as const) {
    const was = last?.gates?.[gate] === true;
    const g = GATES[gate];
    if (!was || said[gate] === true) continue;
    const at = `the last switch on this target (${last!.when}, DEFAULT ${last!.label}) ${g.what}`;
    if (said[gate] === undefined)
      failures.push({
        property: g.key,
        reason: `${g.key}: got nothing; ${at}, and a gate goes only by an explicit value: set ramroot:${g.key} again, or ramroot:${g.key}: ${g.off} to deploy without it`,
      });
    else notes.push(`${g.key}: ${g.off}: the gate goes (${at}): ${g.goes}`);
  }
  if (failures.length > 0) throw new InputError("AbSystem inputs", failures);
  return notes;
}
