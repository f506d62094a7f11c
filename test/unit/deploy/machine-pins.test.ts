import { machinePin, parsePins } from "../../../provider/deploy/machine-pins";
import { InputError } from "../../../provider/ramroot-error";

// Each machine of a stack its own pin (`ramroot:pins`); a stack's pin from before machines had
// names (`ramroot:pin`) still holds every machine that has none of its own.

const pin = (update: number) => ({ update, planId: String(update).repeat(64) });
const config = (values: Record<string, unknown>) => {
  const map = new Map(Object.entries(values).map(([k, v]) => [`ramroot:${k}`, JSON.stringify(v)]));
  return { get: (key: string) => map.get(key) };
};

test("each machine reads its own pin; one without a pin is not pinned", () => {
  const c = config({ pins: { nas: pin(1), router: pin(3) } });
  expect(machinePin(c, "nas")).toEqual(pin(1));
  expect(machinePin(c, "router")).toEqual(pin(3));
  expect(machinePin(c, "machine")).toBeUndefined();
  expect(machinePin(config({}), "machine")).toBeUndefined();
});

test("a stack's pin from before machines had names holds every machine without its own", () => {
  const legacy = config({ pin: pin(2) });
  expect(machinePin(legacy, "machine")).toEqual(pin(2));
  expect(machinePin(legacy, "nas")).toEqual(pin(2));
  const both = config({ pin: pin(2), pins: { nas: pin(5) } });
  expect(machinePin(both, "nas")).toEqual(pin(5));
  expect(machinePin(both, "router")).toEqual(pin(2));
});

test("a malformed pins value is refused naming the machine and the field", () => {
  expect(parsePins(undefined)).toEqual({});
  let caught: unknown;
  try {
    parsePins(JSON.stringify({ nas: { update: 0, planId: "x" } }));
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InputError);
  const message = (caught as Error).message;
  expect(message).toContain("ramroot:pins");
  expect(message).toMatch(/nas\.update: got 0; expected an update number \(1 or more\)/);
  expect(message).toMatch(/nas\.planId: got "x"; expected the pinned image's plan id \(64 hex digits\)/);
});
