import type { UpdateKind, UpdateResult, UpdateSummary } from "@pulumi/pulumi/automation";
import type { JournalEntry } from "../../../provider/boot/journal";
import { deployedBy, numberHistory, readHistory } from "../../../provider/deploy/history";
import { chooseRollback } from "../../../provider/deploy/rollback";

const PLAN = (n: number) => String(n).repeat(64).slice(0, 64);

/** A history entry as `pulumi stack history --json` gives it on the file backend (version 0). */
function entry(
  kind: UpdateKind,
  minute: number,
  opts: { result?: UpdateResult; version?: number; env?: Record<string, string> } = {},
): UpdateSummary {
  return {
    version: opts.version ?? 0,
    kind,
    startTime: new Date(Date.UTC(2026, 0, 1, 0, minute, 0)),
    endTime: new Date(Date.UTC(2026, 0, 1, 0, minute, 30)),
    message: `${kind} at ${minute}`,
    environment: opts.env ?? {},
    config: {},
    result: opts.result ?? "succeeded",
  };
}

/** A switch the journal records at minute:10 of an update. */
function switched(minute: number, plan: number, how = "switch"): JournalEntry {
  return {
    when: new Date(Date.UTC(2026, 0, 1, 0, minute, 10)).toISOString(),
    label: plan % 2 ? "a" : "b",
    slot: plan % 2 ? "a" : "b",
    planId: PLAN(plan),
    imageId: `image${plan}`,
    how,
  };
}

describe("numberHistory", () => {
  test("only updates are numbered, oldest first; refreshes and destroys are listed without a number", () => {
    const h = numberHistory(
      [entry("update", 3), entry("refresh", 2), entry("update", 1), entry("destroy", 4)].reverse(),
    );
    expect(h.map((u) => [u.kind, u.number])).toEqual([
      ["update", 1],
      ["refresh", undefined],
      ["update", 2],
      ["destroy", undefined],
    ]);
  });

  test("numbers never move: appending refreshes and updates keeps every given number", () => {
    const early = [entry("update", 1), entry("update", 2, { result: "failed" }), entry("update", 3)];
    const later = [
      ...early,
      entry("refresh", 4),
      entry("update", 5),
      entry("refresh", 6),
      ...Array.from({ length: 10 }, (_, i) => entry("update", 7 + i)),
    ];
    const before = numberHistory(early);
    const after = numberHistory(later);
    for (const u of before) expect(after.find((a) => a.startTime === u.startTime)?.number).toBe(u.number);
    expect(after.filter((u) => u.number !== undefined)).toHaveLength(14);
  });

  test("a backend that numbers its operations keeps its own numbers", () => {
    const h = numberHistory([entry("update", 1, { version: 7 }), entry("refresh", 2, { version: 8 })]);
    expect(h.map((u) => u.number)).toEqual([7, 8]);
  });

  test("the git commit carries +dirty when Pulumi recorded uncommitted changes", () => {
    const h = numberHistory([
      entry("update", 1, { env: { "git.head": "abc123", "git.dirty": "true" } }),
      entry("update", 2, { env: { "git.head": "def456", "git.dirty": "false" } }),
    ]);
    expect(h.map((u) => u.commit)).toEqual(["abc123+dirty", "def456"]);
  });

  test("entries order by their full start time, milliseconds included", () => {
    const a: UpdateSummary = { ...entry("update", 1), startTime: new Date(Date.UTC(2026, 0, 1, 0, 1, 0, 500)) };
    const b: UpdateSummary = {
      ...entry("update", 1),
      startTime: new Date(Date.UTC(2026, 0, 1, 0, 1, 0, 100)),
      message: "first",
    };
    expect(numberHistory([a, b])[0]?.message).toBe("first");
  });
});

describe("readHistory", () => {
  test("reads every page until a short one", async () => {
    const all = Array.from({ length: 25 }, (_, i) => entry("update", i));
    const asked: [number, number][] = [];
    const stack = {
      history: async (pageSize?: number, page?: number) => {
        asked.push([pageSize!, page!]);
        return all.slice((page! - 1) * pageSize!, page! * pageSize!);
      },
    };
    expect(await readHistory(stack, 10)).toHaveLength(25);
    expect(asked).toEqual([
      [10, 1],
      [10, 2],
      [10, 3],
    ]);
  });
});

describe("deployedBy and chooseRollback", () => {
  const history = numberHistory([
    entry("update", 1),
    entry("update", 2),
    entry("refresh", 3),
    entry("update", 4),
    entry("update", 5, { result: "failed" }),
  ]);
  const journal = [switched(1, 1), switched(2, 2), switched(4, 3)];

  test("what an update left running is the last switch before it ended, its own or an earlier one", () => {
    expect(deployedBy(history[0]!, journal)?.planId).toBe(PLAN(1));
    expect(deployedBy(history[3]!, journal)?.planId).toBe(PLAN(3));
  });

  test("--to N goes to update N", () => {
    expect(chooseRollback(history, journal, PLAN(3), 1).deployed.planId).toBe(PLAN(1));
  });

  test("no argument: the newest earlier update that left another image running", () => {
    expect(chooseRollback(history, journal, PLAN(3)).update.number).toBe(2);
    // after going back to 2, the next rollback does not pick 2 again (it deployed what runs now)
    expect(chooseRollback(history, journal, PLAN(2)).update.number).toBe(3);
  });

  test("--to 99 says there is no update 99", () => {
    expect(() => chooseRollback(history, journal, PLAN(3), 99)).toThrow(
      /--to: no update 99 in this stack \(its updates are numbered 1 to 4/,
    );
  });

  test("a failed update is refused as a rollback target", () => {
    // updates 1, 2, 3 (the refresh between took no number) and 4, which failed
    expect(chooseRollback(history, journal, PLAN(1), 3).deployed.planId).toBe(PLAN(3));
    expect(() => chooseRollback(history, journal, PLAN(3), 4)).toThrow(/--to: update 4 failed/);
  });

  test("each refusal is typed: a bad --to is an input error on --to, nothing to go back to a conflict, each with its fix", () => {
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      throw new Error("not refused");
    };
    expect(refusal(() => chooseRollback(history, journal, PLAN(3), 4))).toMatchObject({
      kind: "input",
      property: "--to",
      fix: "pick a succeeded update (see `ramroot history`)",
    });
    const only = numberHistory([entry("update", 1)]);
    expect(refusal(() => chooseRollback(only, [switched(1, 1)], PLAN(1)))).toMatchObject({
      kind: "conflict",
      fix: "see `ramroot history`",
    });
  });
});
