#!/bin/busybox sh
# Stage 1 of the vm-smoke guest: /init of the initramfs built by `cargo xtask vm-smoke`.
# Loads the virtio/9p/overlay modules, mounts the host's / (read-only 9p) under a tmpfs
# overlay, mounts the writable result share at /tb-out, and switches to stage 2
# (xtask/vm/stage2.sh, read from the host's tree). Any failure powers the guest off, so
# the host sees a missing report instead of a hang.
/bin/busybox mkdir -p /bin /proc /sys /dev /ro /rw /newroot
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null

die() {
    echo "vm-smoke init: $*" >/dev/console
    echo o >/proc/sysrq-trigger
    sleep 30
}

while read -r m; do
    [ -n "$m" ] || continue
    insmod "/modules/$m" || die "insmod $m failed"
done </modules/order

mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose root /ro \
    || die "cannot mount the host root (9p tag 'root')"
mount -t tmpfs -o size=75% tmpfs /rw || die "cannot mount tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work /newroot \
    || die "cannot mount the overlay root"
mkdir -p /newroot/tb-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /newroot/tb-out \
    || die "cannot mount the result share (9p tag 'out')"
[ -r /newroot/tb-out/job.env ] || die "no job.env in the result share"
. /newroot/tb-out/job.env
[ -n "$TB_STAGE2" ] || die "job.env names no TB_STAGE2"

umount /proc
umount /dev 2>/dev/null
exec switch_root /newroot /bin/sh "$TB_STAGE2"
