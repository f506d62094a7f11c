#!/bin/sh
# Loads the drivers of the devices present, as Alpine's hwdrivers does, again while loading
# reveals new devices (virtio_pci, say, reveals the disks and NICs behind it).
[ -d "/lib/modules/$(uname -r)" ] || exit 0
before=
for _ in 1 2 3 4; do
	aliases=$(find /sys/devices -name modalias -type f -exec cat {} + 2>/dev/null | sort -u)
	[ "$aliases" = "$before" ] && break
	before=$aliases
	for alias in $aliases; do modprobe -q "$alias" 2>/dev/null; done
done
exit 0
