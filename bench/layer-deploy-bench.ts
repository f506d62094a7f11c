/**
 * An overlay-edit deploy of the workload's image (gzip, ~100 MiB) with the layer store
 * (docs/layer-store.md), beside a whole-image copy of the same slot and `rsync` of the same slot
 * files. Each round edits one overlay file, builds with `ramroot build` (the package layer
 * cached), writes the slot that is not DEFAULT and switches DEFAULT to it (syslinux). Over ssh
 * (a real OpenSSH server on 127.0.0.1, reached through a counting TCP relay, so the bytes are
 * what crossed the wire, ssh's framing and ramroot's hashing round trips included) and onto a
 * syslinux disk image (mtools). Every target starts with the first image in both slots.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { withLease } from "../provider/boot/lease";
import { LAYER_DIR, layerPath } from "../provider/boot/layer-store";
import { SLOT_MANIFEST, slotEntry, writeSlot, type SlotManifest } from "../provider/boot/slot";
import { switchBootConfig } from "../provider/boot/switch-config";
import type { SyslinuxEntry } from "../provider/boot/schemes/syslinux/config";
import { withTarget, type BootTarget, type TargetSpec } from "../provider/boot/target";
import { createDisk } from "../provider/boot/disk-create";
import { recordedLayersOf } from "../provider/image/build";
import { bootPartitionDir } from "../test/fixtures/boot-partition-dir";
import { sshTarget, startSshd } from "../test/boot/sshd";
import { alternate, timeCommand, type Sample, type Variant } from "./harness";
import { cliCommand } from "./ramroot-cli";
import type { BenchContext, ResultTable, SectionResult } from "./section";
import type { Workload } from "./workload";

/** A TCP relay to `port` that counts the bytes each way. */
async function countingRelay(port: number): Promise<{ port: number; up: number; down: number; close(): void }> {
  const counts = { up: 0, down: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    client.on("data", (d: Buffer) => (counts.up += d.length));
    upstream.on("data", (d: Buffer) => (counts.down += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    get up() {
      return counts.up;
    },
    get down() {
      return counts.down;
    },
    close: () => server.close(),
  };
}

interface Built {
  kernel: string;
  initramfs: string;
}

const TEST_APPEND = "rdinit=/sbin/init console=ttyS0";

/** Seconds spent in each step of a deploy, and in each BootTarget method (calls, seconds), summed over rounds. */
type Steps = Map<string, { calls: number; seconds: number }>;

function addStep(steps: Steps, name: string, seconds: number): void {
  const s = steps.get(name) ?? { calls: 0, seconds: 0 };
  s.calls += 1;
  s.seconds += seconds;
  steps.set(name, s);
}

async function timed<T>(steps: Steps, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    addStep(steps, name, Number(process.hrtime.bigint() - t0) / 1e9);
  }
}

/** The target with each method's calls and time recorded under `target.<method>` (nested calls count in both). */
function profiled(target: BootTarget, steps: Steps): BootTarget {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver) as unknown;
      if (typeof value !== "function" || typeof prop !== "string") return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(obj, args);
        if (!(result instanceof Promise)) return result;
        return timed(steps, `target.${prop}`, () => result);
      };
    },
  });
}

/** Writes `image` into `slot` (layered or whole) and makes it DEFAULT, its entries from what the slots hold. */
async function deploy(
  target: BootTarget,
  image: Built,
  slot: string,
  layered: boolean,
  imageId: string,
  steps: Steps = new Map(),
) {
  const layers = layered ? recordedLayersOf(image.initramfs) : undefined;
  if (layered && !layers) throw new Error(`${image.initramfs}: the image cache records no layer sizes`);
  await withLease(target, { owner: "bench: layer deploy" }, async (lease) => {
    await timed(steps, "write the slot", () =>
      writeSlot(target, {
        slot,
        files: { kernel: image.kernel, initramfs: image.initramfs },
        ...(layers ? { layers } : {}),
        manifest: { imageId, planId: imageId },
      }),
    );
    // The entries from the slots' manifests, as a deploy declares them (the switch re-hashes the slot it boots).
    const entries: SyslinuxEntry[] = [];
    for (const s of ["a", "b"]) {
      const raw = await target.readFile(`${s}/${SLOT_MANIFEST}`);
      const manifest = raw === undefined ? undefined : (JSON.parse(raw.toString("utf8")) as SlotManifest);
      if (manifest) entries.push(slotEntry(s, { microcode: false, append: TEST_APPEND, layers: manifest.layers }));
    }
    await timed(steps, "switch DEFAULT", () =>
      switchBootConfig(target, { defaultLabel: slot, timeout: 0, entries }, { lease }),
    );
  });
}

export async function benchLayerDeploy(w: Workload, ctx: BenchContext): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "layer-deploy");
  fs.mkdirSync(dir, { recursive: true });
  const home = path.join(dir, "cache");
  const images = path.join(home, "images");
  const setOverlay = (value: string) => fs.writeFileSync(w.changingFile, `${value}\n`);
  let revision = 0;
  const build = async (): Promise<Built & Sample> => {
    const [node, args] = cliCommand(["build", w.config.gzip, "--cache", images]);
    const sample = await timeCommand(node, args, { env: { RAMROOT_CACHE: home } });
    const field = (name: string) => {
      const m = new RegExp(`^${name}\\s+(\\S+)`, "m").exec(sample.stdout);
      if (!m) throw new Error(`ramroot build printed no ${name} line:\n${sample.stdout}`);
      return m[1]!;
    };
    return { ...sample, kernel: field("kernel"), initramfs: field("initramfs") };
  };

  const sshd = await startSshd();
  const relay = await countingRelay(sshd.port);
  const notes: string[] = [];
  try {
    setOverlay("0");
    ctx.log("layer deploy: priming the caches (a cold build, not timed)");
    const first = await build();
    const imageBytes = fs.statSync(first.initramfs).size;
    const layerCount = recordedLayersOf(first.initramfs)?.length ?? 0;

    // ssh through the relay: the server's host key, known under the relay's port.
    const knownHosts = path.join(dir, "known_hosts");
    fs.writeFileSync(
      knownHosts,
      fs.readFileSync(sshd.knownHosts, "utf8").replaceAll(`]:${sshd.port} `, `]:${relay.port} `),
    );
    const viaRelay = (root: string): TargetSpec => ({
      ...sshTarget(sshd, root),
      port: relay.port,
      knownHostsFile: knownHosts,
    });
    const sshDir = async (name: string) => bootPartitionDir(path.join(dir, name), ["a", "b"]);
    const disk = async (name: string) => {
      const image = path.join(dir, `${name}.img`);
      await createDisk({ output: image, sizeMiB: 512, layout: "mbr", slots: ["a", "b"] });
      return image;
    };
    const targets = {
      sshLayered: viaRelay(await sshDir("ssh-layered")),
      sshWhole: viaRelay(await sshDir("ssh-whole")),
      diskLayered: { kind: "image", path: await disk("disk-layered") } as TargetSpec,
      diskWhole: { kind: "image", path: await disk("disk-whole") } as TargetSpec,
    };
    const rsyncRoot = await sshDir("ssh-rsync");
    // The A/B steady state: both slots hold the first image, DEFAULT a; each round writes the other slot.
    const idle: Record<string, string> = {};
    ctx.log("layer deploy: the first image into both slots of every target (not timed)");
    for (const [name, spec] of Object.entries(targets)) {
      const layered = name.endsWith("Layered");
      await withTarget(spec, async (target) => {
        await deploy(target, first, "b", layered, "first");
        await deploy(target, first, "a", layered, "first");
      });
      idle[name] = "b";
    }
    for (const slot of ["a", "b"]) {
      fs.copyFileSync(first.kernel, path.join(rsyncRoot, slot, "vmlinuz"));
      fs.copyFileSync(first.initramfs, path.join(rsyncRoot, slot, "initramfs"));
    }
    idle.rsync = "b";

    const sent: Record<string, { up: number; down: number }[]> = {};
    const stepsOf: Record<string, Steps> = {};
    const variant = (
      name: keyof typeof targets | "rsync",
      label: string,
      command: string,
      copy: (image: Built, slot: string, steps: Steps) => Promise<void>,
    ): Variant => ({
      label,
      command,
      before: () => setOverlay(`edit-${++revision}`),
      run: async () => {
        const built = await build();
        const steps = (stepsOf[label] ??= new Map());
        addStep(steps, "build", built.seconds);
        const slot = idle[name]!;
        const disk = name === "diskLayered" || name === "diskWhole" ? targets[name] : undefined;
        const stored = disk ? await withTarget(disk, (t) => t.list(LAYER_DIR)) : [];
        const [up0, down0, t0] = [relay.up, relay.down, process.hrtime.bigint()];
        await timed(steps, "open + write + switch", () => copy(built, slot, steps));
        const copySeconds = Number(process.hrtime.bigint() - t0) / 1e9;
        idle[name] = slot === "a" ? "b" : "a";
        const wire = { up: relay.up - up0, down: relay.down - down0 };
        (sent[label] ??= []).push(wire);
        // A disk image: the bytes of the files the deploy wrote into it (the layers new to its store, or the whole initramfs).
        const written = () => {
          const layers = recordedLayersOf(built.initramfs) ?? [];
          if (name !== "diskLayered") return fs.statSync(built.initramfs).size;
          return layers
            .filter((l) => !stored.includes(path.posix.basename(layerPath(l.sha256))))
            .reduce((n, l) => n + l.size, 0);
        };
        return {
          seconds: built.seconds + copySeconds,
          ...(built.cpuSeconds !== undefined ? { cpuSeconds: built.cpuSeconds } : {}),
          bytes: disk ? written() : wire.up,
        };
      },
    });
    const onTarget = (name: keyof typeof targets, layered: boolean) => (image: Built, slot: string, steps: Steps) =>
      withTarget(targets[name], (target) =>
        deploy(profiled(target, steps), image, slot, layered, `rev-${revision}`, steps),
      );
    const rsync = async (image: Built, slot: string) => {
      const staging = path.join(dir, "rsync-src");
      fs.rmSync(staging, { recursive: true, force: true });
      fs.mkdirSync(staging);
      fs.symlinkSync(image.kernel, path.join(staging, "vmlinuz"));
      fs.symlinkSync(image.initramfs, path.join(staging, "initramfs"));
      const keyFile = path.join(dir, "user_key");
      if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, sshd.userKey, { mode: 0o600 });
      const ssh = `ssh -p ${relay.port} -i ${keyFile} -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
      await timeCommand("rsync", [
        "-L",
        "--checksum",
        "--no-whole-file",
        "-e",
        ssh,
        path.join(staging, "vmlinuz"),
        path.join(staging, "initramfs"),
        `root@127.0.0.1:${path.join(rsyncRoot, slot)}/`,
      ]);
    };
    const sshVariants = [
      variant(
        "sshLayered",
        "layered: build + put the new layers + switch (ssh)",
        "ramroot build image-gzip.yaml; writeSlot --layers (the layers the partition lacks) + switch DEFAULT, over ssh",
        onTarget("sshLayered", true),
      ),
      variant(
        "sshWhole",
        "whole image: build + copy the initramfs + switch (ssh)",
        "ramroot build image-gzip.yaml; writeSlot (the whole initramfs into <slot>/initramfs) + switch DEFAULT, over ssh",
        onTarget("sshWhole", false),
      ),
      variant(
        "rsync",
        "rsync: build + rsync the slot files (no switch)",
        "ramroot build image-gzip.yaml; rsync -L --checksum --no-whole-file -e ssh vmlinuz initramfs root@host:BOOT/<slot>/",
        rsync,
      ),
    ];
    ctx.log(`layer deploy: over ssh, ${ctx.runs} rounds`);
    // BENCH_LAYER_TARGETS=disk (or ssh) measures one kind of target only (while working on it).
    const kinds = (process.env.BENCH_LAYER_TARGETS ?? "ssh,disk").split(",");
    const sshRows = kinds.includes("ssh") ? await alternate(sshVariants, ctx.runs, ctx.log) : [];
    const diskVariants = [
      variant(
        "diskLayered",
        "layered: build + put the new layers + switch (disk image)",
        "ramroot build image-gzip.yaml; writeSlot --layers + switch DEFAULT on a syslinux disk image (written with mtools, read straight from the FAT)",
        onTarget("diskLayered", true),
      ),
      variant(
        "diskWhole",
        "whole image: build + copy the initramfs + switch (disk image)",
        "ramroot build image-gzip.yaml; writeSlot (whole initramfs) + switch DEFAULT on a syslinux disk image (written with mtools, read straight from the FAT)",
        onTarget("diskWhole", false),
      ),
    ];
    ctx.log(`layer deploy: onto a disk image, ${ctx.runs} rounds`);
    const diskRows = kinds.includes("disk") ? await alternate(diskVariants, ctx.runs, ctx.log) : [];

    // Where each variant's time went: the mean per round of every step and target method.
    for (const [label, steps] of Object.entries(stepsOf)) {
      const parts = [...steps.entries()]
        .sort((x, y) => y[1].seconds - x[1].seconds)
        .map(([step, s]) => `${step} ${(s.seconds / ctx.runs).toFixed(2)} s (${s.calls / ctx.runs} calls)`);
      notes.push(`${label}, mean per round: ${parts.join("; ")}.`);
      ctx.log(`layer deploy: ${label}: ${parts.join("; ")}`);
    }
    const diskLayered = diskRows.find((r) => r.label === diskVariants[0]!.label);
    if (diskLayered) {
      const line = `build + copy + switch on a disk image (layered, overlay edit): median ${diskLayered.medianSeconds.toFixed(2)} s over ${ctx.runs} rounds (target: at most 5 s)`;
      ctx.log(`layer deploy: ${line}`);
      process.stdout.write(`[bench] ${line}\n`);
      notes.unshift(`**${line}.**`);
    }
    const pct = (n: number) => `${((100 * n) / imageBytes).toFixed(2)}%`;
    for (const [label, wires] of Object.entries(sent)) {
      if (label.includes("disk image")) continue;
      const ups = wires.map((x) => x.up).sort((a, b) => a - b);
      const downs = wires.map((x) => x.down).sort((a, b) => a - b);
      notes.push(
        `${label}: sent ${ups.map((n) => `${(n / 1024).toFixed(0)} KiB`).join(", ")} up the ssh connection (median ${pct(ups[Math.floor(ups.length / 2)]!)} of the ${(imageBytes / 2 ** 20).toFixed(1)} MiB initramfs), received ${downs.map((n) => `${(n / 1024).toFixed(0)} KiB`).join(", ")}.`,
      );
    }
    notes.push(
      `The image is ${layerCount} layers (packages, overlay). An edit of one overlay file changes only the overlay layer: the layered deploy puts that layer (the package layer is in the store already, checked by hash on the partition), keeps the kernel the idle slot already holds (same hash), writes the manifest and the syslinux config. The whole-image copy sends the initramfs again. rsync's delta transfer finds the unchanged package layer in the idle slot's old initramfs (a gzip stream whose prefix is unchanged) and sends little more, but it copies files only: no hash read back under the final name, no manifest, no switch of DEFAULT.`,
      "Time is the build (`ramroot build`, the package layer from the layer cache) plus the copy and the switch; the output column is the bytes sent up the ssh connection (client to server), or for the disk image the bytes of files written into it.",
    );
    const tables: ResultTable[] = (
      [
        {
          caption: "an overlay edit deployed over ssh",
          baseline: sshVariants[1]!.label,
          rows: sshRows,
          showBytes: true,
          runs: ctx.runs,
        },
        {
          caption: "an overlay edit deployed onto a disk image",
          baseline: diskVariants[1]!.label,
          rows: diskRows,
          showBytes: true,
          runs: ctx.runs,
        },
      ] satisfies ResultTable[]
    ).filter((t) => t.rows.length > 0);
    return {
      id: "layer-deploy",
      title: "Deploy of an overlay edit: the layer store beside a whole-image copy and rsync",
      intro:
        "The workload's gzip image (packages, overlay; ~100 MiB) with one overlay file edited each round, built and deployed to the idle slot of a boot partition that holds the previous images in both slots, then DEFAULT switched to it. The target is at most 1% of the image's bytes sent over ssh, and at most 5 s for build + copy + switch on a disk image.",
      tables,
      notes,
    };
  } finally {
    setOverlay("0");
    relay.close();
    await sshd.stop();
  }
}
