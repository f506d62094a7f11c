import type { TargetState } from "../../../provider/boot/inspect";
import type { SlotState } from "../../../provider/boot/slot";
import type { FailedTrial } from "../../../provider/boot/trial-log";
import { decide, slotHolding, slotWriteRefusal } from "../../../provider/deploy/ab-decision";
import { ConflictError } from "../../../provider/ramroot-error";

const SLOTS = ["a", "b"] as const;
const PLAN_1 = "1".repeat(64);
const PLAN_2 = "2".repeat(64);
const PLAN_3 = "3".repeat(64);

/** A slot as inspectTarget reports it: a manifest naming `planId`, files intact or not. */
function slot(name: string, planId: string, consistent = true, when = "2026-01-01T00:00:00.000Z"): SlotState {
  const file = (f: string) => ({ path: `${name}/${f}`, sha256: "f".repeat(64), size: 1 });
  return {
    slot: name,
    manifest: {
      slot: name,
      imageId: `image-of-${planId.slice(0, 4)}`,
      planId,
      when,
      files: { kernel: file("vmlinuz"), initramfs: file("initramfs") },
    },
    files: {
      kernel: { path: `${name}/vmlinuz`, sha256: "f".repeat(64) },
      initramfs: { path: `${name}/initramfs`, sha256: consistent ? "f".repeat(64) : "0".repeat(64) },
    },
    consistent,
  };
}

interface Situation {
  defaultSlot?: string;
  once?: string;
  running?: string;
  a?: SlotState;
  b?: SlotState;
  failedTrials?: FailedTrial[];
}

/** A target's state: DEFAULT and the once-boot name their slot's label (the trial entry for a once-boot). */
function target(s: Situation): TargetState {
  return {
    description: "disk image test.img",
    ...(s.defaultSlot ? { defaultLabel: s.defaultSlot, defaultSlot: s.defaultSlot } : {}),
    ...(s.once ? { once: "ramroot-trial", onceSlot: s.once } : {}),
    ...(s.running ? { runningSlot: s.running } : {}),
    slots: { a: s.a, b: s.b },
    journal: [],
    failedTrials: s.failedTrials ?? [],
  };
}

describe("decide: the whole table (DEFAULT x running slot x pending once x what each slot holds)", () => {
  const defaults = [undefined, "a", "b"];
  const running = [undefined, "a", "b"];
  const onces = [undefined, "a", "b"];
  /** what a slot holds: nothing, the wanted image, another image, the wanted image with a changed file */
  const contents = {
    empty: () => undefined,
    wanted: (n: string) => slot(n, PLAN_1),
    other: (n: string) => slot(n, PLAN_2),
    damaged: (n: string) => slot(n, PLAN_1, false),
  };
  const cases: [string, Situation][] = [];
  for (const d of defaults)
    for (const r of running)
      for (const o of onces)
        for (const [ca, makeA] of Object.entries(contents))
          for (const [cb, makeB] of Object.entries(contents)) {
            const a = makeA("a");
            const b = makeB("b");
            cases.push([
              `DEFAULT ${d ?? "-"}, running ${r ?? "?"}, once ${o ?? "-"}, a ${ca}, b ${cb}`,
              { ...(d ? { defaultSlot: d } : {}), ...(r ? { running: r } : {}), ...(o ? { once: o } : {}), a, b },
            ]);
          }

  test.each(cases)("%s", (_name, s) => {
    const state = target(s);
    const holder = slotHolding(state, SLOTS, PLAN_1);
    const writable = SLOTS.filter((x) => slotWriteRefusal(state, x) === undefined);
    let d: ReturnType<typeof decide>;
    try {
      d = decide(state, SLOTS, PLAN_1);
    } catch (err) {
      // Refused only when no slot holds the image and none may be written; the error names each slot's reason.
      expect(err).toBeInstanceOf(ConflictError);
      expect(holder).toBeUndefined();
      expect(writable).toEqual([]);
      expect((err as Error).message).toMatch(/no slot may receive the new image: slot "a" .*; slot "b" /);
      return;
    }
    if (d.write !== undefined) {
      // Never the running slot, never the slot a pending once-boot boots.
      expect(d.write).not.toBe(s.running);
      expect(d.write).not.toBe(s.once);
      // DEFAULT only when the machine is known to run the other slot (DEFAULT never booted), and
      // only when the other slot may not be written.
      if (d.write === s.defaultSlot) {
        expect(s.running).toBeDefined();
        expect(s.running).not.toBe(s.defaultSlot);
        expect(writable).toEqual([d.write]);
        expect(d.notes.join("\n")).toMatch(/is DEFAULT but never booted/);
      }
      expect(slotWriteRefusal(state, d.write)).toBeUndefined();
      // A slot that holds the image intact is selected, never written again.
      expect(holder).toBeUndefined();
      expect(d.active).toBe(d.write);
    } else {
      expect(holder).toBeDefined();
      expect(d.active).toBe(holder);
    }
    // Whatever is not written keeps what it holds; only a damaged slot that may be written (and is
    // not DEFAULT) is repaired.
    expect(d.keep).toEqual(SLOTS.filter((x) => x !== d.write && state.slots[x]?.manifest !== undefined));
    for (const r of d.repair) {
      expect(state.slots[r]?.consistent).toBe(false);
      expect(r).not.toBe(s.defaultSlot);
      expect(slotWriteRefusal(state, r)).toBeUndefined();
    }
    expect(d.switches).toBe(s.defaultSlot !== d.active);
  });
});

describe("decide", () => {
  test("a fresh target: the image goes to the first slot and DEFAULT switches to it", () => {
    expect(decide(target({}), SLOTS, PLAN_1)).toEqual({
      active: "a",
      write: "a",
      keep: [],
      repair: [],
      switches: true,
      notes: [],
    });
  });

  test("the image already in the DEFAULT slot: nothing is written, nothing switches", () => {
    const d = decide(target({ defaultSlot: "a", a: slot("a", PLAN_1) }), SLOTS, PLAN_1);
    expect(d).toEqual({ active: "a", keep: ["a"], repair: [], switches: false, notes: [] });
  });

  test("a new image goes to the slot that is not DEFAULT; the DEFAULT slot is kept as it is", () => {
    const d = decide(target({ defaultSlot: "a", a: slot("a", PLAN_1) }), SLOTS, PLAN_2);
    expect(d).toEqual({ active: "b", write: "b", keep: ["a"], repair: [], switches: true, notes: [] });
  });

  test("the idle slot is overwritten by a third image, never the running one", () => {
    const d = decide(target({ defaultSlot: "b", a: slot("a", PLAN_1), b: slot("b", PLAN_2) }), SLOTS, PLAN_3);
    expect(d.write).toBe("a");
    expect(d.active).toBe("a");
    expect(d.keep).toEqual(["b"]);
  });

  test("the wanted image in the idle slot: DEFAULT switches to it without a copy (a rollback)", () => {
    const d = decide(target({ defaultSlot: "b", a: slot("a", PLAN_1), b: slot("b", PLAN_2) }), SLOTS, PLAN_1);
    expect(d).toEqual({ active: "a", keep: ["a", "b"], repair: [], switches: true, notes: [] });
  });

  test("a damaged DEFAULT slot is never repaired in place", () => {
    const d = decide(target({ defaultSlot: "a", a: slot("a", PLAN_1, false), b: slot("b", PLAN_2) }), SLOTS, PLAN_2);
    expect(d.active).toBe("b");
    expect(d.write).toBeUndefined();
    expect(d.repair).toEqual([]);
  });

  test("DEFAULT a with a pending once-boot of b: neither is written, the preview fails saying how to go on", () => {
    // (decide() used to pick b here, and the slot write refused it during `up`, after the preview promised it)
    const state = target({ defaultSlot: "a", once: "b", a: slot("a", PLAN_1), b: slot("b", PLAN_2) });
    expect(() => decide(state, SLOTS, PLAN_3)).toThrow(ConflictError);
    expect(() => decide(state, SLOTS, PLAN_3)).toThrow(
      /slot "a" holds what syslinux boots by default .*; slot "b" is set to boot once \(label ramroot-trial\).*ramroot syslinux clear-once/,
    );
  });

  test("DEFAULT b never booted (the machine runs a, no reboot since the last switch): b is overwritten, not refused", () => {
    const state = target({ defaultSlot: "b", running: "a", a: slot("a", PLAN_1), b: slot("b", PLAN_2) });
    const d = decide(state, SLOTS, PLAN_3);
    expect(d.write).toBe("b");
    expect(d.active).toBe("b");
    expect(d.switches).toBe(false);
    expect(d.keep).toEqual(["a"]);
    expect(d.notes).toEqual([
      "slot b is DEFAULT but never booted (the machine runs slot a): it is rewritten, and DEFAULT goes back to slot a while it is",
    ]);
  });

  test("the machine runs the slot DEFAULT boots: the other slot is written", () => {
    const d = decide(target({ defaultSlot: "a", running: "a", a: slot("a", PLAN_1) }), SLOTS, PLAN_2);
    expect(d.write).toBe("b");
  });

  test("an image whose trial failed in its slot is not tried again by itself; a retry is asked for explicitly", () => {
    const failed: FailedTrial = {
      when: "2026-01-02T00:00:00.000Z",
      slot: "b",
      imageId: "image-of-2222",
      cause: "panic",
      seconds: 80,
      detail: "never answered",
    };
    const state = target({ defaultSlot: "a", a: slot("a", PLAN_1), b: slot("b", PLAN_2), failedTrials: [failed] });
    const d = decide(state, SLOTS, PLAN_2);
    expect(d).toMatchObject({ active: "a", keep: ["a", "b"], switches: false });
    expect(d.write).toBeUndefined();
    expect(d.notes[0]).toMatch(
      /^image image-of-222 in slot b failed its trial at 2026-01-02T00:00:00.000Z \(panic\): DEFAULT stays a; .*RAMROOT_RETRY_TRIAL=1/,
    );
    expect(decide(state, SLOTS, PLAN_2, { retryFailedTrial: true })).toMatchObject({ active: "b", switches: true });
    // Written again since the failure (a newer manifest): it is a new trial.
    const rewritten = { ...state, slots: { ...state.slots, b: slot("b", PLAN_2, true, "2026-01-03T00:00:00.000Z") } };
    expect(decide(rewritten, SLOTS, PLAN_2).active).toBe("b");
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

describe("slotWriteRefusal", () => {
  test("names why: the running slot, the once slot, DEFAULT while the machine may run it", () => {
    const state = target({ defaultSlot: "a", once: "b", a: slot("a", PLAN_1), b: slot("b", PLAN_2) });
    expect(slotWriteRefusal(state, "a")).toMatch(/^slot "a" holds what syslinux boots by default \(DEFAULT a in/);
    expect(slotWriteRefusal(state, "b")).toMatch(/^slot "b" is set to boot once \(label ramroot-trial\)/);
    expect(slotWriteRefusal(target({ running: "b" }), "b")).toMatch(/^slot "b" is the one the machine is running/);
    expect(slotWriteRefusal(target({ defaultSlot: "a", running: "b" }), "a")).toBeUndefined();
  });
});

describe("slotHolding", () => {
  test("only an intact slot holds an image", () => {
    const state = target({ a: slot("a", PLAN_1, false), b: slot("b", PLAN_1) });
    expect(slotHolding(state, SLOTS, PLAN_1)).toBe("b");
    expect(slotHolding(state, SLOTS, PLAN_2)).toBeUndefined();
  });
});
