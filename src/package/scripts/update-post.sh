set -e
image="@IMAGE@"
# imgbased records this package in the new layer's rpmdb and needs the package file
# that dnf or rpm (our parent) is installing from (BZ 1747410).
IMGBASED_IMAGE_UPDATE_RPM=$(lsof -Fn -p "$PPID" 2>/dev/null | sed -n 's|^n\(/.*/ovirt-node-ng-image-update-[^/]*\.rpm\)$|\1|p' | head -n 1) || true
export IMGBASED_IMAGE_UPDATE_RPM
mnt=$(mktemp -d)
cleanup() {
    umount "$mnt" 2>/dev/null || true
    umount "$mnt" 2>/dev/null || true
    rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
# Run the imgbased that comes with the new image, on the host's Python: the update
# logic then always matches the image it installs.
mount -o loop,ro "$image" "$mnt"
mount -o loop,ro "$mnt/LiveOS/rootfs.img" "$mnt"
module=$(ls -d "$mnt"/usr/lib/python3*/site-packages/imgbased 2>/dev/null | sort -V | tail -n 1)
if [ -n "$module" ]; then
    PYTHONPATH="$(dirname "$module")${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONPATH
fi
imgbase --debug update --format liveimg "$image" >>/var/log/imgbased.log 2>&1
