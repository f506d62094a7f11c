#!/bin/sh
# The health guard. "start" runs it in the background: every $HEALTH_INTERVAL s it runs the
# checks in /etc/ramroot/health.d (each a shell script, in name order, at most 30 s each) until all exit 0 or
# $HEALTH_TIMEOUT s have passed since the kernel started, and publishes each round at
# /run/ramroot/health:
#   image <id>          the image this boot runs (ramroot.image=)
#   trial yes|no        whether this boot is a trial (ramroot.trial= on the command line)
#   status checking|healthy|unhealthy
#   check <name> ok|failed (exit N), then the check's output, each line indented by two spaces
# A trial boot that is not healthy in time copies the report to the boot partition
# (ramroot-trial-report) and reboots: the once-boot is consumed, so the next boot is DEFAULT. On a
# trial boot the watchdog (/dev/watchdog) is fed from the start, so a hung kernel resets too.
# (RAMROOT_CONF, RAMROOT_RUN and RAMROOT_CHECKS move its files, for a test off the machine.)
# shellcheck source=/dev/null # machine.conf is written by ramroot from the image's inputs
. "${RAMROOT_CONF:-/etc/ramroot/machine.conf}"
run=${RAMROOT_RUN:-/run/ramroot}
checks=${RAMROOT_CHECKS:-/etc/ramroot/health.d}
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
	[ -x /usr/libexec/ramroot/coldplug ] && /usr/libexec/ramroot/coldplug
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
			name=${check##*/}
			name=${name#*-}
			out=$(timeout 30 sh "$check" 2>&1 < /dev/null)
			rc=$?
			if [ $rc -eq 0 ]; then
				echo "check $name ok"
			else
				echo "check $name failed (exit $rc)"
				failed=1
			fi
			[ -n "$out" ] && printf '%s\n' "$out" | head -c 4000 | sed 's/^/  /'
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
	cp "$run/health" "$BOOT_MOUNTPOINT/ramroot-trial-report.tmp" && mv "$BOOT_MOUNTPOINT/ramroot-trial-report.tmp" "$BOOT_MOUNTPOINT/ramroot-trial-report"
fi
sync
echo "ramroot-guard: trial of image $image not healthy within $HEALTH_TIMEOUT s of boot: rebooting to DEFAULT"
reboot
sleep 60
echo "ramroot-guard: the reboot did not happen in 60 s: forcing it"
sync
reboot -f
