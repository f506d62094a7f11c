/**
 * What a real machine needs from its image, made from the image's inputs rather than user files:
 * the image id published at /run/ramroot/image-id (always), and on request networking
 * (`network`), the boot partition and a data disk mounted by label (`bootPartition`,
 * `dataDisk`), SSH host keys kept on the data disk (`sshHostKeys`) and the health guard
 * (`health`: the checks run at every boot, their result at /run/ramroot/health; a trial boot
 * that is not healthy in time reboots to DEFAULT).
 *
 * They are generated overlay entries, laid before the user's overlay (a user file of the same
 * path wins), so they enter the plan's overlay digest and show in previews like any file. Each
 * service is a plain script under /usr/libexec/ramroot (provider/machine/*.sh; the values it needs in
 * /etc/ramroot/machine.conf) behind an /etc/init.d/ramroot-<name> wrapper in the `boot`
 * runlevel (the guard: `default`): an OpenRC script when the image has OpenRC, else a
 * `<script> start` runner script. Within the runlevel they run in name order: image-id, mounts,
 * network, ssh-host-keys.
 */
import { sha256Hex } from "../file-hash";
import { CHECKS_DIR, CONF, LIBEXEC, machineScript } from "../machine/scripts";
import type { ImageConfig } from "./image-config";
import type { OverlayEntry } from "./overlay";

interface MachineService {
  /** its script (machine/scripts.ts) is run with "start", and with "stop" when `stops` */
  name: "image-id" | "mounts" | "network" | "ssh-host-keys" | "guard";
  description: string;
  /** OpenRC depend() body */
  depend: string;
  /** the script undoes its work on "stop" (OpenRC's stop(); a shutdown-runlevel service otherwise) */
  stops?: boolean;
  /** the runlevel it starts in (default boot) */
  runlevel?: "boot" | "default";
}

const IMAGE_ID: MachineService = {
  name: "image-id",
  description: "publish the image id (ramroot.image=) and trial status (ramroot.trial=) under /run/ramroot",
  depend: "before net sshd dropbear",
};

const MOUNTS: MachineService = {
  name: "mounts",
  description: "mount the boot partition and the data disk by label",
  depend: "after hwdrivers modules localmount; before netmount sshd dropbear",
  stops: true,
};

const NETWORK: MachineService = {
  name: "network",
  description: "bring up the network (DHCP with busybox udhcpc, or a static address)",
  depend: "provide net; after hwdrivers modules",
};

const SSH_HOST_KEYS: MachineService = {
  name: "ssh-host-keys",
  description: "keep the SSH host keys on the data disk (made once) and link them where sshd and dropbear look",
  depend: "need ramroot-mounts; before sshd dropbear",
};

const GUARD: MachineService = {
  name: "guard",
  description: "run the health checks; a trial boot that is not healthy in time reboots to DEFAULT",
  depend: "after *",
  runlevel: "default",
};

function shellValue(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** /etc/ramroot/machine.conf: the values the service scripts read, as shell assignments. */
function machineConf(config: ImageConfig): string {
  const lines = [
    "# Written by ramroot from the image's network, dataDisk, bootPartition, sshHostKeys and health inputs.",
  ];
  const set = (name: string, value: string) => lines.push(`${name}=${shellValue(value)}`);
  if (config.network) {
    set("NET_IF", config.network.interface);
    set("NET_MODE", config.network.mode);
    set("NET_ADDRESS", config.network.address ?? "");
    set("NET_GATEWAY", config.network.gateway ?? "");
    set("NET_DNS", (config.network.dns ?? []).join(" "));
  }
  if (config.bootPartition) {
    const b = config.bootPartition;
    set("BOOT_SPEC", b.label !== undefined ? `LABEL=${b.label}` : `UUID=${b.uuid}`);
    set("BOOT_MOUNTPOINT", b.mountpoint);
  }
  if (config.dataDisk) {
    set("DATA_LABEL", config.dataDisk.label);
    set("DATA_MOUNTPOINT", config.dataDisk.mountpoint);
    set("DATA_FS", config.dataDisk.fs);
    set("DATA_OPTIONS", config.dataDisk.options);
    if (config.sshHostKeys) set("SSH_KEYS_DIR", config.sshHostKeys.dir ?? sshHostKeysDir(config.dataDisk.mountpoint));
  }
  if (config.health) {
    set("HEALTH_TIMEOUT", String(config.health.timeoutSeconds));
    set("HEALTH_INTERVAL", String(config.health.intervalSeconds));
    set("HEALTH_WATCHDOG", config.health.watchdog ? "yes" : "no");
  }
  return `${lines.join("\n")}\n`;
}

/** Where host keys are kept when `sshHostKeys.dir` is not given. */
export function sshHostKeysDir(dataMountpoint: string): string {
  return `${dataMountpoint.replace(/\/+$/, "")}/.ramroot/ssh-host-keys`;
}

function initScript(service: MachineService, openrc: boolean): string {
  const run = `/${LIBEXEC}/${service.name}`;
  if (openrc) {
    return [
      "#!/sbin/openrc-run",
      `description=${shellValue(service.description)}`,
      "",
      "depend() {",
      ...service.depend.split("; ").map((d) => `\t${d}`),
      "}",
      "",
      "start() {",
      `\tebegin ${shellValue(service.description)}`,
      `\t${run} start`,
      "\teend $?",
      "}",
      ...(service.stops
        ? ["", "stop() {", `\tebegin ${shellValue(`undo: ${service.description}`)}`, `\t${run} stop`, "\teend $?", "}"]
        : []),
      "",
    ].join("\n");
  }
  return [
    "#!/bin/sh",
    `# ramroot-${service.name}: ${service.description}`,
    "case $1 in",
    `start) exec ${run} start ;;`,
    ...(service.stops ? [`stop) exec ${run} stop ;;`] : []),
    "esac",
    "exit 0",
    "",
  ].join("\n");
}

/** Without OpenRC, the shutdown runlevel's services are started: this one stops a service. */
function shutdownScript(service: MachineService): string {
  return [
    "#!/bin/sh",
    `# ramroot-${service.name}-stop: at shutdown, undo: ${service.description}`,
    "case $1 in",
    `start) exec /${LIBEXEC}/${service.name} stop ;;`,
    "esac",
    "exit 0",
    "",
  ].join("\n");
}

function file(path: string, content: string | Buffer, mode: number): OverlayEntry {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content, "utf8");
  return { path, type: "file", mode, size: bytes.length, source: bytes, sha256: sha256Hex(bytes) };
}

function symlink(path: string, linkTarget: string): OverlayEntry {
  return { path, type: "symlink", mode: 0o777, linkTarget, sha256: sha256Hex(linkTarget) };
}

function dir(path: string): OverlayEntry {
  return { path, type: "dir", mode: 0o755 };
}

/**
 * The machine services for an image as overlay entries. `packages` are the names in the lock:
 * OpenRC's presence decides the init script style.
 */
export function machineEntries(config: ImageConfig, packages: readonly string[]): OverlayEntry[] {
  const openrc = packages.includes("openrc");
  const services: MachineService[] = [IMAGE_ID];
  if (config.bootPartition || config.dataDisk) services.push(MOUNTS);
  if (config.network) services.push(NETWORK);
  if (config.sshHostKeys) services.push(SSH_HOST_KEYS);
  if (config.health) services.push(GUARD);
  const dirs = [
    "etc",
    "etc/init.d",
    "etc/ramroot",
    "etc/runlevels",
    "etc/runlevels/boot",
    "usr",
    "usr/libexec",
    LIBEXEC,
  ];
  if (!openrc && services.some((s) => s.stops)) dirs.push("etc/runlevels/shutdown");
  if (config.health) dirs.push("etc/runlevels/default", CHECKS_DIR);
  const entries: OverlayEntry[] = dirs.sort().map(dir);
  entries.push(file(CONF, machineConf(config), 0o644));
  if (services.length > 1) entries.push(file(`${LIBEXEC}/coldplug`, machineScript("coldplug"), 0o755));
  if (config.network?.mode === "dhcp")
    entries.push(file(`${LIBEXEC}/udhcpc.script`, machineScript("udhcpc.script"), 0o755));
  for (const s of services) {
    entries.push(file(`${LIBEXEC}/${s.name}`, machineScript(s.name), 0o755));
    entries.push(file(`etc/init.d/ramroot-${s.name}`, initScript(s, openrc), 0o755));
    entries.push(symlink(`etc/runlevels/${s.runlevel ?? "boot"}/ramroot-${s.name}`, `/etc/init.d/ramroot-${s.name}`));
    if (s.stops && !openrc) {
      entries.push(file(`etc/init.d/ramroot-${s.name}-stop`, shutdownScript(s), 0o755));
      entries.push(symlink(`etc/runlevels/shutdown/ramroot-${s.name}-stop`, `/etc/init.d/ramroot-${s.name}-stop`));
    }
  }
  // The checks, one script each, numbered in the config's order (the guard runs them by name).
  config.health?.checks.forEach((check, i) => {
    entries.push(file(`${CHECKS_DIR}/${String(i + 1).padStart(2, "0")}-${check.name}`, `${check.command}\n`, 0o644));
  });
  return entries;
}
