#!/usr/bin/env bash
# Prove the upgrade path of a Node image: a throw-away "deployed Node" (an installroot
# with the placeholder installed, as every Node has) is upgraded by plain `dnf upgrade`
# to the update RPM, and the update's %post hands the image to `imgbase update`.
#
#   examples/offline/upgrade.sh ROOT NODE-REPO PLACEHOLDER-VR UPDATE-REPO
#
# ROOT: an empty directory for the installroot; NODE-REPO: the repository the image was
# built from (for the deployed Node's packages); PLACEHOLDER-VR: the version-release of
# the placeholder the deployed Node has (older than the update's); UPDATE-REPO: a
# repository holding the update RPM. Run it as root, under `unshare --mount` (run.sh does): the %post
# loop-mounts the image, so the installroot gets the host's /dev and a /proc, and the
# mounts end with the namespace whatever happens.
set -euo pipefail

root=$1 node_repo=$2 deployed=$3 update_repo=$4
placeholder=ovirt-node-ng-image-update-placeholder

dnf_root() {
    dnf -y -q --releasever=9 --nogpgcheck --setopt=reposdir=/nonexistent \
        --setopt=install_weak_deps=False --installroot="$root" \
        --setopt=cachedir="$root/var/cache/dnf" "$@"
}

echo "==> a deployed Node: @core and $placeholder-$deployed in $root"
dnf_root --repofrompath=node,"$node_repo" install @core "$placeholder-$deployed"
rpm --root "$root" -q "$placeholder"

echo "==> dnf upgrade from the repository that carries the update RPM"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
dnf_root --repofrompath=update,"$update_repo" upgrade
rpm --root "$root" -q ovirt-node-ng-image-update
if rpm --root "$root" -q "$placeholder" >/dev/null; then
    echo "the placeholder is still installed: the update did not replace it" >&2
    exit 1
fi

echo "==> what the update's %post asked of imgbased (/var/log/imgbase.calls):"
cat "$root/var/log/imgbase.calls"
