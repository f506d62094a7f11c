import type { UpdateSummary } from "@pulumi/pulumi/automation";
import type { TargetState } from "../../../provider/boot/inspect";
import type { FailedTrial } from "../../../provider/boot/trial-log";
import type { JournalEntry } from "../../../provider/boot/journal";
import type { SlotState } from "../../../provider/boot/slot";
import { parseHealthReport } from "../../../provider/machine/health-report";
import { renderStatus } from "../../../provider/cli/stack-command";
import { numberHistory } from "../../../provider/deploy/history";

// `ramroot status` says which update wrote each slot from what the slot holds (its manifest's
// write time within the stack's history), and names a rollback on the DEFAULT mark: a rollback
// that only switched DEFAULT wrote nothing, so it must not be named as the slot's writer.

const at = (minute: number, second = 0) => new Date(Date.UTC(2026, 0, 1, 0, minute, second)).toISOString();
const PLAN = (n: number) => String(n).repeat(64);

/** A `pulumi up` as the file backend records it (version 0), from minute:00 to minute:30. */
function up(minute: number): UpdateSummary {
  return {
    version: 0,
    kind: "update",
    startTime: new Date(at(minute)),
    endTime: new Date(at(minute, 30)),
    message: "",
    environment: {},
    config: {},
    result: "succeeded",
  };
}

function slot(name: string, plan: number, writtenAt: string): SlotState {
  return {
    slot: name,
    manifest: { slot: name, imageId: `image${plan}`.padEnd(64, "0"), planId: PLAN(plan), when: writtenAt, files: {} },
    files: {},
    consistent: true,
  };
}

function switched(minute: number, slotName: string, plan: number, extra: Partial<JournalEntry> = {}): JournalEntry {
  return {
    when: at(minute, 20),
    label: slotName,
    slot: slotName,
    planId: PLAN(plan),
    imageId: `image${plan}`,
    how: "switch",
    ...extra,
  };
}

const slotLine = (out: string, name: string) => out.split("\n").find((l) => l.startsWith(`slot ${name} `));

// updates 1 (writes a, switches), 2 (no change), 3 (writes b, switches), 4 (rollback: switches back to a)
const history = numberHistory([up(1), up(2), up(3), up(4)]);
const state = (journal: JournalEntry[], defaultSlot: string): TargetState => ({
  description: "image:/tmp/disk.img",
  defaultLabel: defaultSlot,
  defaultSlot,
  slots: { a: slot("a", 1, at(1, 10)), b: slot("b", 2, at(3, 10)) },
  journal,
  failedTrials: [],
});

test("after a rollback, slot a is still written by update 1, and its DEFAULT mark names the rollback", () => {
  const out = renderStatus(
    state([switched(1, "a", 1), switched(3, "b", 2), switched(4, "a", 1, { how: "rollback", update: 1 })], "a"),
    history,
  );
  expect(slotLine(out, "a")).toMatch(
    /^slot a +image image1\S* +plan 1{12} +written 2026-01-01T00:01:10\.000Z by update 1 +\[DEFAULT since update 4: rollback to update 1\]$/,
  );
  expect(slotLine(out, "b")).toMatch(/written 2026-01-01T00:03:10\.000Z by update 3$/);
  expect(out).not.toMatch(/by update 4/);
  expect(out).toContain("DEFAULT a (slot a, image image1)  rollback to update 1  update 4");
});

test("before the rollback: each slot written by the update that switched to it, a plain [DEFAULT] mark", () => {
  const out = renderStatus(state([switched(1, "a", 1), switched(3, "b", 2)], "b"), history);
  expect(slotLine(out, "a")).toMatch(/written 2026-01-01T00:01:10\.000Z by update 1$/);
  expect(slotLine(out, "b")).toMatch(/written 2026-01-01T00:03:10\.000Z by update 3 +\[DEFAULT\]$/);
});

test("a slot written by hand (outside any update) and switched to by a later update", () => {
  const handWritten: TargetState = {
    ...state([switched(2, "a", 1)], "a"),
    slots: { a: slot("a", 1, at(0, 5)), b: undefined },
  };
  const out = renderStatus(handWritten, history);
  expect(slotLine(out, "a")).toMatch(/written 2026-01-01T00:00:05\.000Z +\[DEFAULT since update 2\]$/);
  expect(slotLine(out, "b")).toBe("slot b   empty");
});

// Over ssh, status also asks the running machine (provider/boot/machine-observe.ts) and reads the
// report a failed trial's guard left on the boot partition; both are in the guard's own format.
const report = (image: string, status: string, checks: string) =>
  parseHealthReport(`image ${image}\ntrial no\nstatus ${status}\nuptime 95\n${checks}`)!;

test("the running machine's slot, image, uptime and health; a failed check's output under it", () => {
  const machine = (health: string, checks: string): TargetState => ({
    ...state([switched(1, "a", 1)], "a"),
    machine: {
      bootId: "boot",
      imageId: "image1".padEnd(64, "0"),
      health: report("image1".padEnd(64, "0"), health, checks),
      guarded: true,
      slot: "a",
      uptimeSeconds: 120,
    },
  });
  expect(renderStatus(machine("healthy", "check sshd ok\ncheck data ok\n"), history)).toContain(
    "machine  runs slot a, image image1000000, up 120 s; health healthy (sshd ok, data ok)",
  );
  const failing = renderStatus(
    machine("unhealthy", "check sshd failed (exit 1)\n  nothing listens on port 22\n"),
    history,
  );
  expect(failing).toContain(
    "machine  runs slot a, image image1000000, up 120 s; health unhealthy (sshd failed (exit 1))",
  );
  expect(failing).toContain("\n         check sshd failed (exit 1):\n             nothing listens on port 22");
  const unguarded = machine("healthy", "");
  unguarded.machine = { ...unguarded.machine!, guarded: false, health: undefined };
  expect(renderStatus(unguarded, history)).toContain("image image1000000, up 120 s; no health checks in this image");
});

test("a failed trial's report on the boot partition is shown with its image and the failed check", () => {
  const out = renderStatus(
    {
      ...state([switched(1, "a", 1)], "a"),
      trialReport: report("image2".padEnd(64, "0"), "unhealthy", "check sshd failed (exit 1)\n  nothing listens\n"),
    },
    history,
  );
  expect(out).toContain(
    "TRIAL    image image2000000 failed its last trial: unhealthy at 95 s after boot (sshd failed (exit 1); the report its guard left on the boot partition)",
  );
  expect(out).toContain("         check sshd failed (exit 1):\n             nothing listens");
  // Without a report, or a disk-image target (no machine to ask), neither line is there.
  expect(renderStatus(state([switched(1, "a", 1)], "a"), history)).not.toMatch(/^(machine|TRIAL) /m);
});

test("every failed trial the target records is listed: when, slot, image, cause and after how long", () => {
  const trial = (when: string, cause: FailedTrial["cause"], seconds: number, detail: string): FailedTrial => ({
    when,
    slot: "b",
    imageId: "image2".padEnd(64, "0"),
    cause,
    seconds,
    detail,
  });
  const out = renderStatus(
    {
      ...state([switched(1, "a", 1)], "a"),
      failedTrials: [
        trial("2026-01-02T00:00:00.000Z", "panic", 81, "image image2000000 never answered: the machine came back"),
        trial("2026-01-03T00:00:00.000Z", "unhealthy", 130, "image image2000000 booted but was not healthy\ncheck x"),
        trial("2026-01-04T00:00:00.000Z", "hung", 200, "it stopped answering"),
        trial("2026-01-05T00:00:00.000Z", "timeout", 600, "no answer over ssh"),
      ],
    },
    history,
  );
  expect(out).toContain(
    [
      "failed trials (newest last; DEFAULT stayed each time):",
      "  2026-01-02T00:00:00.000Z  slot b  image image2000000  panic after 81 s: image image2000000 never answered: the machine came back",
      "  2026-01-03T00:00:00.000Z  slot b  image image2000000  unhealthy after 130 s: image image2000000 booted but was not healthy",
      "  2026-01-04T00:00:00.000Z  slot b  image image2000000  hung after 200 s: it stopped answering",
      "  2026-01-05T00:00:00.000Z  slot b  image image2000000  timeout after 600 s: no answer over ssh",
    ].join("\n"),
  );
});

test("the status of one machine of several names it, and its pin is released by that name", () => {
  const pin = { update: 1, planId: "1".repeat(64), imageId: "image1".padEnd(64, "0") };
  const out = renderStatus(state([switched(1, "a", 1)], "a"), history, pin, "router");
  const lines = out.split("\n");
  expect(lines[0]).toBe("name     router");
  expect(lines[1]).toMatch(/^target   /);
  expect(out).toContain(
    "PINNED   to update 1 (image image1000000) by `ramroot rollback`; `ramroot release router` lets the config's image deploy again",
  );
});
