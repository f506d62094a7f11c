import type { TargetState } from "../../../provider/boot/inspect";
import type { SlotState } from "../../../provider/boot/slot";
import { decide, slotHolding } from "../../../provider/deploy/ab-decision";

const SLOTS = ["a", "b"] as const;
const PLAN_1 = "1".repeat(64);
const PLAN_2 = "2".repeat(64);
const PLAN_3 = "3".repeat(64);

/** A slot as inspectTarget reports it: a manifest naming `planId`, files intact or not. */
function slot(name: string, planId: string, consistent = true): SlotState {
  const file = (f: string) => ({ path: `${name}/${f}`, sha256: "f".repeat(64), size: 1 });
  return {
    slot: name,
    manifest: {
      slot: name,
      imageId: `image-of-${planId.slice(0, 4)}`,
      planId,
      when: "2026-01-01T00:00:00.000Z",
      files: { kernel: file("vmlinuz"), initramfs: file("initramfs") },
    },
    files: {
      kernel: { path: `${name}/vmlinuz`, sha256: "f".repeat(64) },
      initramfs: { path: `${name}/initramfs`, sha256: consistent ? "f".repeat(64) : "0".repeat(64) },
    },
    consistent,
  };
}

function target(opts: { defaultSlot?: string; once?: string; a?: SlotState; b?: SlotState }): TargetState {
  return {
    description: "disk image test.img",
    ...(opts.defaultSlot ? { defaultLabel: opts.defaultSlot, defaultSlot: opts.defaultSlot } : {}),
    ...(opts.once ? { once: opts.once } : {}),
    slots: { a: opts.a, b: opts.b },
    journal: [],
  };
}

describe("decide", () => {
  test("a fresh target: the image goes to the first slot and DEFAULT switches to it", () => {
    expect(decide(target({}), SLOTS, PLAN_1)).toEqual({
      active: "a",
      write: "a",
      keep: [],
      repair: [],
      switches: true,
    });
  });

  test("the image already in the DEFAULT slot: nothing is written, nothing switches", () => {
    const d = decide(target({ defaultSlot: "a", a: slot("a", PLAN_1) }), SLOTS, PLAN_1);
    expect(d).toEqual({ active: "a", keep: ["a"], repair: [], switches: false });
  });

  test("a new image goes to the slot that is not DEFAULT; the DEFAULT slot is kept as it is", () => {
    const d = decide(target({ defaultSlot: "a", a: slot("a", PLAN_1) }), SLOTS, PLAN_2);
    expect(d).toEqual({ active: "b", write: "b", keep: ["a"], repair: [], switches: true });
  });

  test("the idle slot is overwritten by a third image, never the running one", () => {
    const d = decide(target({ defaultSlot: "b", a: slot("a", PLAN_1), b: slot("b", PLAN_2) }), SLOTS, PLAN_3);
    expect(d.write).toBe("a");
    expect(d.active).toBe("a");
    expect(d.keep).toEqual(["b"]);
  });

  test("the wanted image in the idle slot: DEFAULT switches to it without a copy (a rollback)", () => {
    const d = decide(target({ defaultSlot: "b", a: slot("a", PLAN_1), b: slot("b", PLAN_2) }), SLOTS, PLAN_1);
    expect(d).toEqual({ active: "a", keep: ["a", "b"], repair: [], switches: true });
  });

  test("a slot whose files changed does not count as holding the image: it is written again", () => {
    const d = decide(target({ defaultSlot: "b", a: slot("a", PLAN_1, false), b: slot("b", PLAN_2) }), SLOTS, PLAN_1);
    expect(d.write).toBe("a");
    expect(d.keep).toEqual(["b"]);
  });

  test("a damaged idle slot that is kept is marked for repair from the cache", () => {
    const d = decide(target({ defaultSlot: "a", a: slot("a", PLAN_1), b: slot("b", PLAN_2, false) }), SLOTS, PLAN_1);
    expect(d).toEqual({ active: "a", keep: ["a", "b"], repair: ["b"], switches: false });
  });

  test("a damaged DEFAULT slot is never repaired in place (it is the running slot)", () => {
    const d = decide(target({ defaultSlot: "a", a: slot("a", PLAN_1, false), b: slot("b", PLAN_2) }), SLOTS, PLAN_2);
    expect(d.active).toBe("b");
    expect(d.write).toBeUndefined();
    expect(d.repair).toEqual([]);
  });

  test("a slot set to boot once is not written when DEFAULT names no slot of ours", () => {
    const d = decide(target({ once: "a", a: slot("a", PLAN_1) }), SLOTS, PLAN_2);
    expect(d.write).toBe("b");
    expect(d.repair).toEqual([]);
  });

  test("the image already in a slot that DEFAULT does not name yet: a switch without a write", () => {
    const d = decide(target({ a: slot("a", PLAN_1) }), SLOTS, PLAN_1);
    expect(d).toEqual({ active: "a", keep: ["a"], repair: [], switches: true });
  });

  test("other slot names work the same way", () => {
    const d = decide(target({}), ["x", "y"], PLAN_1);
    expect(d.write).toBe("x");
  });

  test("two equal slot names are refused, naming the field", () => {
    expect(() => decide(target({}), ["a", "a"], PLAN_1)).toThrow(
      /slots: got \["a","a"\]; expected two different slot names/,
    );
  });
});

describe("slotHolding", () => {
  test("only an intact slot holds an image", () => {
    const state = target({ a: slot("a", PLAN_1, false), b: slot("b", PLAN_1) });
    expect(slotHolding(state, SLOTS, PLAN_1)).toBe("b");
    expect(slotHolding(state, SLOTS, PLAN_2)).toBeUndefined();
  });
});
