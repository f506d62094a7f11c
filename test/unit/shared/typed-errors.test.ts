import * as fs from "node:fs";
import * as path from "node:path";

// Every failure a user can meet is a typed error (provider/ramroot-error.ts): input, trust, target,
// conflict, machine, host, each with its fix, or InternalError for an invariant no input reaches. A new
// plain `throw new Error(` in provider/ fails here; the files below still hold some, each for the
// reason given, and their count may only go down (lower it here when you convert one).

const ROOT = path.join(__dirname, "..", "..", "..");

const OWNED = "in a file another change is reworking; to convert after it lands";
const ALLOWED: Record<string, { count: number; why: string }> = {
  "provider/image/image-config.ts": {
    count: 2,
    why: "caught at once and turned into a zod issue naming the field (never leaves the schema)",
  },
  "provider/boot/image-target.ts": { count: 15, why: OWNED },
  "provider/boot/layer-store.ts": { count: 5, why: OWNED },
  "provider/boot/local-target.ts": { count: 8, why: OWNED },
  "provider/boot/slot.ts": { count: 4, why: OWNED },
  "provider/boot/ssh-target.ts": { count: 13, why: OWNED },
  "provider/boot/trial.ts": { count: 3, why: OWNED },
  "provider/boot/schemes/uefi/loader-config.ts": { count: 3, why: OWNED },
  "provider/boot/schemes/uefi/once.ts": { count: 3, why: OWNED },
  "provider/deploy/ab-decision.ts": { count: 1, why: OWNED },
  "provider/deploy/ab-system-inputs.ts": { count: 1, why: OWNED },
  "provider/deploy/deployment-plan.ts": { count: 2, why: OWNED },
  "provider/deploy/image-source.ts": { count: 1, why: OWNED },
  "provider/deploy/rollback.ts": { count: 1, why: OWNED },
  "provider/qemu/boot.ts": { count: 2, why: OWNED },
  "provider/qemu/firmware.ts": { count: 1, why: OWNED },
  "provider/qemu/twin.ts": { count: 9, why: OWNED },
  "provider/resources/alpine-image-resource.ts": { count: 4, why: OWNED },
  "provider/resources/boot-slot-resource.ts": { count: 8, why: OWNED },
  "provider/resources/boot-test-resource.ts": { count: 1, why: OWNED },
  "provider/resources/component-refusal.ts": { count: 1, why: OWNED },
  "provider/resources/construct.ts": { count: 2, why: OWNED },
  "provider/resources/provider-server.ts": { count: 2, why: OWNED },
  "provider/resources/schema.ts": { count: 1, why: OWNED },
  "provider/resources/target-id.ts": { count: 1, why: OWNED },
};

function plainThrows(): Record<string, number> {
  const counts: Record<string, number> = {};
  const dir = path.join(ROOT, "provider");
  for (const rel of fs.readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!rel.endsWith(".ts")) continue;
    const n = fs.readFileSync(path.join(dir, rel), "utf8").match(/\bthrow new Error\(/g)?.length ?? 0;
    if (n > 0) counts[path.posix.join("provider", rel.split(path.sep).join("/"))] = n;
  }
  return counts;
}

test("no plain `throw new Error(` in provider/ beyond the allowlist, and the allowlist is no larger than needed", () => {
  const found = plainThrows();
  const allowed = Object.fromEntries(Object.entries(ALLOWED).map(([file, a]) => [file, a.count]));
  // a new one: make it a typed error (ramroot-error.ts); one fewer: lower its count above
  expect(found).toEqual(allowed);
});
