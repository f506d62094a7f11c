#!/bin/sh
# Publishes which image runs (ramroot.image= on the kernel command line) at /run/ramroot/image-id,
# and on a trial boot the trial (ramroot.trial=) at /run/ramroot/trial.
mkdir -p /run/ramroot || exit 1
image=
trial=
read -r cmdline < /proc/cmdline
set -f # its words are parameters, never file name patterns
for word in $cmdline; do
	case $word in
	ramroot.image=*) image=${word#ramroot.image=} ;;
	ramroot.trial=*) trial=${word#ramroot.trial=} ;;
	esac
done
publish() {
	echo "$2" > "$1.tmp" && mv "$1.tmp" "$1"
}
if [ -n "$image" ]; then publish /run/ramroot/image-id "$image" || exit 1; echo "ramroot: image $image"; fi
if [ -n "$trial" ]; then publish /run/ramroot/trial "$trial" || exit 1; echo "ramroot: trial $trial"; fi
exit 0
