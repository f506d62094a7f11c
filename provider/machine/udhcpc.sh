#!/bin/sh
# busybox udhcpc's event script: configures $interface from the lease.
# shellcheck disable=SC2154 # udhcpc sets interface, ip, mask, router, dns and domain
case $1 in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip addr replace "$ip/${mask:-24}" dev "$interface"
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
