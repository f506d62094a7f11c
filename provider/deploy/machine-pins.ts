/**
 * Rollback pins, one per machine. `ramroot rollback <machine>` writes the machine's pin under
 * `ramroot:pins` (machine name -> pin) and `ramroot release <machine>` removes it, so two
 * AbSystems in one stack are pinned and released independently. A stack pinned before machines
 * had names holds one `ramroot:pin`: it is read as before, for every machine of the stack that
 * has no pin of its own, until `ramroot release` hands it on to the other machines.
 */
import { z } from "zod";
import { parseInput } from "../input-error";
import { parsePin, PIN_CONFIG_KEY, pinSchema, type Pin } from "./ab-system-inputs";

/** The stack config key of the per-machine pins. */
export const PINS_CONFIG_KEY = "ramroot:pins";

export const pinsSchema = z.record(z.string(), pinSchema);

export type Pins = Record<string, Pin>;

/** The per-machine pins from the stack config's JSON text (none when unset). */
export function parsePins(json: string | undefined): Pins {
  if (json === undefined || json === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    value = json;
  }
  return parseInput(pinsSchema, value, PINS_CONFIG_KEY);
}

/** The pin that holds `machine`: its own, else the stack's pin from before machines had names. */
export function machinePin(config: { get(key: string): string | undefined }, machine: string): Pin | undefined {
  return parsePins(config.get(PINS_CONFIG_KEY))[machine] ?? parsePin(config.get(PIN_CONFIG_KEY));
}
