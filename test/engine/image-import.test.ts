import * as fs from "node:fs";
import * as path from "node:path";
import { AlpineImage } from "../../components/resources";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { engineStack, type EngineStack } from "./pulumi-harness";

// An AlpineImage built by one stack is adopted by another with `import: <planId>` from the local
// image cache; the same config then previews no change. A planId the cache does not hold is a
// clear error. The real pulumi CLI, file backends, a signed repository of Debian binaries.
jest.setTimeout(900_000);

let builder: EngineStack;
let repo: ImageRepo;
let importId: string | undefined;

const config = () => ({
  repositories: [repo.repository],
  keys: [repo.keysDir],
  packages: ["alpine-baselayout", "busybox"],
  kernel: "none" as const,
  hostname: "imported",
  epoch: 1700000000,
});

const program = async () => {
  const image = new AlpineImage("image", config(), importId ? { import: importId } : {});
  return { planId: image.planId, imageId: image.imageId };
};

beforeAll(async () => {
  builder = await engineStack("image-build", program);
  process.env.RAMROOT_IMAGE_CACHE = path.join(builder.dir, "images");
  repo = await buildImageRepo(path.join(builder.dir, "repo"));
});
afterAll(async () => builder?.cleanup());

test("import by planId adopts the cached build; the same config then previews no change", async () => {
  const built = await builder.stack.up();
  const planId = built.outputs.planId!.value as string;
  const imageId = built.outputs.imageId!.value as string;
  expect(fs.existsSync(path.join(builder.dir, "images", planId))).toBe(true);

  const adopter = await engineStack("image-import", program);
  try {
    importId = planId;
    const up = await adopter.stack.up();
    expect(up.summary.resourceChanges?.import).toBe(1);
    expect(up.outputs.imageId!.value).toBe(imageId);
    importId = undefined;
    const preview = await adopter.stack.preview({ diff: true });
    expect(preview.changeSummary.same).toBe(2);
    expect(preview.changeSummary.update ?? 0).toBe(0);
  } finally {
    importId = undefined;
    await adopter.cleanup();
  }
});

test("a planId the cache does not hold is refused, saying what to do", async () => {
  const adopter = await engineStack("image-import-missing", program);
  try {
    importId = "0".repeat(64);
    await expect(adopter.stack.up()).rejects.toThrow(
      /id: image plan 000000000000 is not in the local image cache .*build it with `pulumi up`/,
    );
  } finally {
    importId = undefined;
    await adopter.cleanup();
  }
});
