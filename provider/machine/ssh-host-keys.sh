#!/bin/sh
# The machine's SSH host keys live on the data disk so that every image deployed to it, and
# every boot, presents the same keys (strict host key checking keeps working across deploys).
# They are made on the machine the first time and never leave it; OpenSSH's sshd and dropbear
# find them through links in /etc/ssh and /etc/dropbear. Their public halves go to the
# console, where a first connection can learn them.
# shellcheck source=/dev/null # machine.conf is written by ramroot from the image's inputs
. /etc/ramroot/machine.conf
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
		key=$dir/ssh_host_${type}_key
		if [ ! -s "$key" ]; then
			rm -f "$key.new" "$key.new.pub"
			ssh-keygen -q -t "$type" -N "" -C "" -f "$key.new" && mv "$key.new.pub" "$key.pub" && mv "$key.new" "$key" || exit 1
			made=1
		fi
		ln -sf "$key" "/etc/ssh/ssh_host_${type}_key"
		ln -sf "$key.pub" "/etc/ssh/ssh_host_${type}_key.pub"
		echo "ramroot: ssh host key $(cut -d' ' -f1,2 "$key.pub")"
	done
fi
if [ -x /usr/sbin/dropbear ]; then
	mkdir -p /etc/dropbear
	for type in ed25519 ecdsa; do
		key=$dir/dropbear_${type}_host_key
		if [ ! -s "$key" ]; then
			rm -f "$key.new"
			dropbearkey -t "$type" -f "$key.new" > /dev/null && mv "$key.new" "$key" || exit 1
			made=1
		fi
		ln -sf "$key" "/etc/dropbear/dropbear_${type}_host_key"
		echo "ramroot: ssh host key $(dropbearkey -y -f "$key" | grep -E '^(ssh|ecdsa)-' | cut -d' ' -f1,2)"
	done
fi
[ -z "$made" ] || sync
exit 0
