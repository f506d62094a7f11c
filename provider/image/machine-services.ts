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
 * service is a plain script under /usr/libexec/ramroot (the values it needs in
 * /etc/ramroot/machine.conf) behind an /etc/init.d/ramroot-<name> wrapper in the `boot`
 * runlevel (the guard: `default`): an OpenRC script when the image has OpenRC, else a
 * `<script> start` runner script. Within the runlevel they run in name order: image-id, mounts,
 * network, ssh-host-keys.
 */
import { sha256Hex } from "../file-hash";
import type { ImageConfig } from "./image-config";
import type { OverlayEntry } from "./overlay";

/** Where the running machine publishes its image id and trial status. */
export const IMAGE_ID_PATH = "/run/ramroot/image-id";
export const TRIAL_PATH = "/run/ramroot/trial";
/** The guard's report: the image id, whether this boot is a trial, the status and each check's output. */
export const HEALTH_PATH = "/run/ramroot/health";
/**
 * Where a trial boot that failed leaves its last report before it reboots: the boot partition's
 * root (relative to its mountpoint, which is the ssh target's path), so the deploy that waits for
 * it can read it from the machine back on DEFAULT.
 */
export const TRIAL_REPORT_FILE = "ramroot-trial-report";
/** The guard's script: an image that has it reports its health (a deploy waits for that report). */
export const GUARD_PATH = "/usr/libexec/ramroot/guard";
/** The kernel command line parameter that marks a trial boot (only the trial entry sets it). */
export const TRIAL_PARAMETER = "ramroot.trial";
const LIBEXEC = "usr/libexec/ramroot";
const CONF = "etc/ramroot/machine.conf";
const CHECKS_DIR = "etc/ramroot/health.d";

interface MachineService {
  name: string;
  description: string;
  /** OpenRC depend() body */
  depend: string;
  /** run with "start", and with "stop" when `stops` */
  script: string;
  /** the script undoes its work on "stop" (OpenRC's stop(); a shutdown-runlevel service otherwise) */
  stops?: boolean;
  /** the runlevel it starts in (default boot) */
  runlevel?: "boot" | "default";
}

const IMAGE_ID: MachineService = {
  name: "image-id",
  description: "publish the image id (ramroot.image=) and trial status (ramroot.trial=) under /run/ramroot",
  depend: "before net sshd dropbear",
  script: `#!/bin/sh
# Publishes which image runs (ramroot.image= on the kernel command line) at ${IMAGE_ID_PATH},
# and on a trial boot the trial (ramroot.trial=) at ${TRIAL_PATH}.
mkdir -p /run/ramroot || exit 1
image=
trial=
for word in $(cat /proc/cmdline); do
	case $word in
	ramroot.image=*) image=\${word#ramroot.image=} ;;
	ramroot.trial=*) trial=\${word#ramroot.trial=} ;;
	esac
done
publish() {
	echo "$2" > "$1.tmp" && mv "$1.tmp" "$1"
}
if [ -n "$image" ]; then publish ${IMAGE_ID_PATH} "$image" || exit 1; echo "ramroot: image $image"; fi
if [ -n "$trial" ]; then publish ${TRIAL_PATH} "$trial" || exit 1; echo "ramroot: trial $trial"; fi
exit 0
`,
};

const COLDPLUG = `#!/bin/sh
# Loads the drivers of the devices present, as Alpine's hwdrivers does, again while loading
# reveals new devices (virtio_pci, say, reveals the disks and NICs behind it).
[ -d "/lib/modules/$(uname -r)" ] || exit 0
before=
for round in 1 2 3 4; do
	aliases=$(find /sys/devices -name modalias -type f 2>/dev/null | xargs cat 2>/dev/null | sort -u)
	[ "$aliases" = "$before" ] && break
	before=$aliases
	for alias in $aliases; do modprobe -q "$alias" 2>/dev/null; done
done
exit 0
`;

const MOUNTS: MachineService = {
  name: "mounts",
  description: "mount the boot partition and the data disk by label",
  depend: "after hwdrivers modules localmount; before netmount sshd dropbear",
  stops: true,
  script: `#!/bin/sh
# start: mounts the boot partition and the data disk named in ${"/" + CONF}, by label or UUID.
# stop: unmounts them (read-only when busy), so a reboot leaves both clean.
. /${CONF}
if [ "$1" = stop ]; then
	sync
	for dir in "$DATA_MOUNTPOINT" "$BOOT_MOUNTPOINT"; do
		[ -n "$dir" ] && grep -q " $dir " /proc/mounts || continue
		umount "$dir" 2>/dev/null || mount -o remount,ro "$dir"
	done
	exit 0
fi
/${LIBEXEC}/coldplug
mount_by() { # SPEC FS DIR OPTIONS
	grep -q " $3 " /proc/mounts && return 0
	modprobe -q "$2" 2>/dev/null
	dev=
	tries=0
	while [ $tries -lt 15 ]; do
		dev=$(findfs "$1" 2>/dev/null) && [ -n "$dev" ] && break
		tries=$((tries + 1))
		sleep 1
	done
	if [ -z "$dev" ]; then
		echo "ramroot: no filesystem with $1: $3 not mounted" >&2
		return 1
	fi
	mkdir -p "$3" || return 1
	if ! mount -t "$2" -o "$4" "$dev" "$3"; then
		echo "ramroot: mounting $1 ($dev, $2) on $3 failed" >&2
		return 1
	fi
	echo "ramroot: mounted $1 ($dev) on $3"
}
rc=0
# shortname=lower: a name FAT holds only as 8.3 (mtools writes "vmlinuz" as VMLINUZ) reads back
# in lower case, as the boot target names it, instead of the default's VMLINUZ.
if [ -n "$BOOT_SPEC" ]; then mount_by "$BOOT_SPEC" vfat "$BOOT_MOUNTPOINT" rw,noatime,shortname=lower || rc=1; fi
if [ -n "$DATA_LABEL" ]; then mount_by "LABEL=$DATA_LABEL" "$DATA_FS" "$DATA_MOUNTPOINT" "$DATA_OPTIONS" || rc=1; fi
exit $rc
`,
};

const NETWORK: MachineService = {
  name: "network",
  description: "bring up the network (DHCP with busybox udhcpc, or a static address)",
  depend: "provide net; after hwdrivers modules",
  script: `#!/bin/sh
# Brings up $NET_IF from ${"/" + CONF}: DHCP through busybox udhcpc (which stays to renew
# the lease), or a static address, gateway and name servers.
. /${CONF}
/${LIBEXEC}/coldplug
ip link set lo up
tries=0
while [ ! -e "/sys/class/net/$NET_IF" ] && [ $tries -lt 15 ]; do
	tries=$((tries + 1))
	sleep 1
done
if [ ! -e "/sys/class/net/$NET_IF" ]; then
	echo "ramroot: network interface $NET_IF not found (present: $(ls /sys/class/net | tr '\\n' ' '))" >&2
	exit 1
fi
ip link set "$NET_IF" up || exit 1
case $NET_MODE in
dhcp)
	mkdir -p /run/ramroot
	udhcpc -i "$NET_IF" -s /${LIBEXEC}/udhcpc.script -p "/run/ramroot/udhcpc.$NET_IF.pid" -t 10 -T 2 -b || exit 1
	;;
static)
	ip addr replace "$NET_ADDRESS" dev "$NET_IF" || exit 1
	if [ -n "$NET_GATEWAY" ]; then ip route replace default via "$NET_GATEWAY" dev "$NET_IF" || exit 1; fi
	if [ -n "$NET_DNS" ]; then
		for server in $NET_DNS; do echo "nameserver $server"; done > /etc/resolv.conf
	fi
	;;
esac
echo "ramroot: network $NET_IF up ($NET_MODE) $(ip -4 -o addr show dev "$NET_IF" | awk '{print $4}')"
`,
};

const UDHCPC_SCRIPT = `#!/bin/sh
# busybox udhcpc's event script: configures $interface from the lease.
case $1 in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip addr replace "$ip/\${mask:-24}" dev "$interface"
	for gateway in $router; do ip route replace default via "$gateway" dev "$interface" && break; done
	if [ -n "$dns" ]; then
		{
			[ -n "$domain" ] && echo "search $domain"
			for server in $dns; do echo "nameserver $server"; done
		} > /etc/resolv.conf
	fi
	;;
esac
exit 0
`;

const SSH_HOST_KEYS: MachineService = {
  name: "ssh-host-keys",
  description: "keep the SSH host keys on the data disk (made once) and link them where sshd and dropbear look",
  depend: "need ramroot-mounts; before sshd dropbear",
  script: `#!/bin/sh
# The machine's SSH host keys live on the data disk so that every image deployed to it, and
# every boot, presents the same keys (strict host key checking keeps working across deploys).
# They are made on the machine the first time and never leave it; OpenSSH's sshd and dropbear
# find them through links in /etc/ssh and /etc/dropbear. Their public halves go to the
# console, where a first connection can learn them.
. /${CONF}
dir=$SSH_KEYS_DIR
if ! grep -q " $DATA_MOUNTPOINT " /proc/mounts; then
	echo "ramroot: the data disk is not mounted on $DATA_MOUNTPOINT: SSH host keys made now are lost at the next boot" >&2
	dir=/run/ramroot/ssh-host-keys
fi
mkdir -p "$dir" && chmod 700 "$dir" || exit 1
made=
if [ -x /usr/sbin/sshd ]; then
	mkdir -p /etc/ssh
	for type in ed25519 ecdsa; do
		key=$dir/ssh_host_\${type}_key
		if [ ! -s "$key" ]; then
			rm -f "$key.new" "$key.new.pub"
			ssh-keygen -q -t "$type" -N "" -C "" -f "$key.new" && mv "$key.new.pub" "$key.pub" && mv "$key.new" "$key" || exit 1
			made=1
		fi
		ln -sf "$key" "/etc/ssh/ssh_host_\${type}_key"
		ln -sf "$key.pub" "/etc/ssh/ssh_host_\${type}_key.pub"
		echo "ramroot: ssh host key $(cut -d' ' -f1,2 "$key.pub")"
	done
fi
if [ -x /usr/sbin/dropbear ]; then
	mkdir -p /etc/dropbear
	for type in ed25519 ecdsa; do
		key=$dir/dropbear_\${type}_host_key
		if [ ! -s "$key" ]; then
			rm -f "$key.new"
			dropbearkey -t "$type" -f "$key.new" > /dev/null && mv "$key.new" "$key" || exit 1
			made=1
		fi
		ln -sf "$key" "/etc/dropbear/dropbear_\${type}_host_key"
		echo "ramroot: ssh host key $(dropbearkey -y -f "$key" | grep -E '^(ssh|ecdsa)-' | cut -d' ' -f1,2)"
	done
fi
[ -z "$made" ] || sync
exit 0
`,
};

const GUARD: MachineService = {
  name: "guard",
  description: "run the health checks; a trial boot that is not healthy in time reboots to DEFAULT",
  depend: "after *",
  runlevel: "default",
  script: `#!/bin/sh
# The health guard. "start" runs it in the background: every $HEALTH_INTERVAL s it runs the
# checks in /${CHECKS_DIR} (each a shell script, in name order, at most 30 s each) until all exit 0 or
# $HEALTH_TIMEOUT s have passed since the kernel started, and publishes each round at
# ${HEALTH_PATH}:
#   image <id>          the image this boot runs (ramroot.image=)
#   trial yes|no        whether this boot is a trial (ramroot.trial= on the command line)
#   status checking|healthy|unhealthy
#   check <name> ok|failed (exit N), then the check's output, each line indented by two spaces
# A trial boot that is not healthy in time copies the report to the boot partition
# (${TRIAL_REPORT_FILE}) and reboots: the once-boot is consumed, so the next boot is DEFAULT. On a
# trial boot the watchdog (/dev/watchdog) is fed from the start, so a hung kernel resets too.
# (RAMROOT_CONF, RAMROOT_RUN and RAMROOT_CHECKS move its files, for a test off the machine.)
. "\${RAMROOT_CONF:-/${CONF}}"
run=\${RAMROOT_RUN:-/run/ramroot}
checks=\${RAMROOT_CHECKS:-/${CHECKS_DIR}}
case $1 in
start)
	mkdir -p "$run" || exit 1
	setsid "$0" run < /dev/null > /dev/console 2>&1 &
	exit 0
	;;
run) ;;
*) exit 0 ;;
esac
image=$(cat "$run/image-id" 2> /dev/null)
trial=no
[ -s "$run/trial" ] && trial=yes
uptime_s() { cut -d. -f1 /proc/uptime; }
deadline=$((HEALTH_TIMEOUT))
if [ "$trial" = yes ] && [ "$HEALTH_WATCHDOG" = yes ]; then
	[ -x /${LIBEXEC}/coldplug ] && /${LIBEXEC}/coldplug
	if [ -c /dev/watchdog ]; then
		watchdog -T 60 -t 5 /dev/watchdog && echo "ramroot-guard: watchdog armed (60 s)"
	fi
fi
round() { # writes one report to $run/health, returns 0 when every check passed
	failed=0
	{
		echo "image $image"
		echo "trial $trial"
		for check in "$checks"/*; do
			[ -f "$check" ] || continue
			name=\${check##*/}
			name=\${name#*-}
			out=$(timeout 30 sh "$check" 2>&1 < /dev/null)
			rc=$?
			if [ $rc -eq 0 ]; then
				echo "check $name ok"
			else
				echo "check $name failed (exit $rc)"
				failed=1
			fi
			[ -n "$out" ] && printf '%s\\n' "$out" | head -c 4000 | sed 's/^/  /'
		done
		echo "failed $failed"
	} > "$run/health.round"
	grep -q '^failed 0$' "$run/health.round"
}
publish() { # STATUS
	{
		sed -n '1,2p' "$run/health.round"
		echo "status $1"
		echo "uptime $(uptime_s)"
		sed -n '3,$p' "$run/health.round" | grep -v '^failed [01]$'
	} > "$run/health.tmp" && mv "$run/health.tmp" "$run/health"
}
echo "ramroot-guard: checking image $image (trial: $trial) until $deadline s after boot"
while :; do
	if round; then
		publish healthy
		echo "ramroot-guard: healthy at $(uptime_s) s"
		exit 0
	fi
	if [ "$(uptime_s)" -ge "$deadline" ]; then break; fi
	publish checking
	sleep "$HEALTH_INTERVAL"
done
publish unhealthy
echo "ramroot-guard: unhealthy at $(uptime_s) s:"
sed 's/^/ramroot-guard: | /' "$run/health"
[ "$trial" = yes ] || exit 0
if [ -n "$BOOT_MOUNTPOINT" ] && grep -q " $BOOT_MOUNTPOINT " /proc/mounts; then
	cp "$run/health" "$BOOT_MOUNTPOINT/${TRIAL_REPORT_FILE}.tmp" && mv "$BOOT_MOUNTPOINT/${TRIAL_REPORT_FILE}.tmp" "$BOOT_MOUNTPOINT/${TRIAL_REPORT_FILE}"
fi
sync
echo "ramroot-guard: trial of image $image not healthy within $HEALTH_TIMEOUT s of boot: rebooting to DEFAULT"
reboot
sleep 60
echo "ramroot-guard: the reboot did not happen in 60 s: forcing it"
sync
reboot -f
`,
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

function file(path: string, content: string, mode: number): OverlayEntry {
  const bytes = Buffer.from(content, "utf8");
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
  if (services.length > 1) entries.push(file(`${LIBEXEC}/coldplug`, COLDPLUG, 0o755));
  if (config.network?.mode === "dhcp") entries.push(file(`${LIBEXEC}/udhcpc.script`, UDHCPC_SCRIPT, 0o755));
  for (const s of services) {
    entries.push(file(`${LIBEXEC}/${s.name}`, s.script, 0o755));
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
