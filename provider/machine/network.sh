#!/bin/sh
# Brings up $NET_IF from /etc/ramroot/machine.conf: DHCP through busybox udhcpc (which stays to renew
# the lease), or a static address, gateway and name servers.
# shellcheck source=/dev/null # machine.conf is written by ramroot from the image's inputs
. /etc/ramroot/machine.conf
/usr/libexec/ramroot/coldplug
ip link set lo up
tries=0
while [ ! -e "/sys/class/net/$NET_IF" ] && [ $tries -lt 15 ]; do
	tries=$((tries + 1))
	sleep 1
done
if [ ! -e "/sys/class/net/$NET_IF" ]; then
	echo "ramroot: network interface $NET_IF not found (present: $(cd /sys/class/net && echo *))" >&2
	exit 1
fi
ip link set "$NET_IF" up || exit 1
case $NET_MODE in
dhcp)
	mkdir -p /run/ramroot
	udhcpc -i "$NET_IF" -s /usr/libexec/ramroot/udhcpc.script -p "/run/ramroot/udhcpc.$NET_IF.pid" -t 10 -T 2 -b || exit 1
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
