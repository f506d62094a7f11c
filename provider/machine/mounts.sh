#!/bin/sh
# start: mounts the boot partition and the data disk named in /etc/ramroot/machine.conf, by label or UUID.
# stop: unmounts them (read-only when busy), so a reboot leaves both clean.
# shellcheck source=/dev/null # machine.conf is written by ramroot from the image's inputs
. /etc/ramroot/machine.conf
if [ "$1" = stop ]; then
	sync
	for dir in "$DATA_MOUNTPOINT" "$BOOT_MOUNTPOINT"; do
		if [ -z "$dir" ] || ! grep -q " $dir " /proc/mounts; then continue; fi
		umount "$dir" 2>/dev/null || mount -o remount,ro "$dir"
	done
	exit 0
fi
/usr/libexec/ramroot/coldplug
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
