#!/usr/bin/env bash
# The README's main job, offline: build a Node image and its update RPM from
# examples/offline/node.ks with the native dnf backend, inspect the image, and prove
# the upgrade path with real dnf. Needs root (the build's chroot, the %post's loop
# mounts) and what scripts/setup.sh installs; no network.
#
#   examples/offline/run.sh [OUTDIR]     (default: out/)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."
out=${1:-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /var/tmp/nodeimg-offline.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "==> building nodeimg and the repository maker (cargo --release)"
cargo build --release --locked --bin nodeimg --example offline-repo
nodeimg=$PWD/target/release/nodeimg

echo "==> the offline repository: packages from this host's files, and two placeholders"
# 4.5.6-1.el9 goes into the image and names its update RPM; 4.5.5-1.el9 is what the
# Node deployed before it has installed.
for vr in 4.5.5:1.el9 4.5.6:1.el9; do
    "$nodeimg" -q rpm placeholder --version "${vr%%:*}" --release "${vr#*:}" -o "$work/placeholder"
done
target/release/examples/offline-repo "$work/repo" "$work"/placeholder/*.rpm

echo "==> nodeimg build (dnf backend) into $out"
"$nodeimg" build examples/offline/node.ks --backend dnf --force \
    --url "file://$work/repo" --dnf-cache "$work/dnf-cache" -o "$out"

echo "==> nodeimg inspect"
image=$(ls "$out"/*.liveimg.squashfs)
"$nodeimg" inspect "$image"

echo "==> the upgrade path"
mkdir -p "$work/updates" "$work/node"
cp "$out"/ovirt-node-ng-image-update-[0-9]*.rpm "$work/updates/"
createrepo_c --quiet "$work/updates"
unshare --mount --propagation private -- \
    "$here/upgrade.sh" "$work/node" "file://$work/repo" 4.5.5-1.el9 "file://$work/updates"

echo
echo "Done: the image, the update RPM, build.json and logs are in $out."
