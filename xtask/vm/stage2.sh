#!/bin/sh
# Stage 2 of the vm-smoke guest, run by stage 1 (init.sh) as PID 1 on the overlay root (the
# host's tree). Mounts the kernel file systems, makes the downloaded kernel's modules visible,
# brings up loopback, runs the guest test program (the host-built xtask binary, mode
# `vm-smoke-guest`), records its exit code and powers off. Never returns.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
. /tb-out/job.env

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
# /tmp stays the overlay's (writes land in its tmpfs upper layer): a tmpfs mounted over it
# would hide a checkout or CARGO_TARGET_DIR under the host's /tmp.
mkdir -p /run/lock
mkdir -p /lib/modules
mount --bind "$TB_MODULES" /lib/modules
echo 1 > /proc/sys/kernel/sysrq
ip link set lo up

"$TB_GUEST" vm-smoke-guest --out /tb-out
echo $? > /tb-out/guest-exit
sync
echo o > /proc/sysrq-trigger
sleep 30
