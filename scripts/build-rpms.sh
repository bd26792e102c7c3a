#!/usr/bin/env bash
# Make nodeimg's SRPM and RPMs (nodeimg, koji-nodeimg-hub, koji-nodeimg-builder,
# koji-nodeimg-cli) from the committed HEAD, built offline from vendored crates.
#
#   scripts/build-rpms.sh [TOPDIR]      (default: target/rpmbuild)
#
# TOPDIR/SOURCES gets nodeimg-VERSION.tar.gz (the source with vendor/ and a
# .cargo/config.toml that points cargo at it), TOPDIR/SRPMS the source package and
# TOPDIR/RPMS the binary ones. Needs git, cargo (crates.io for `cargo vendor`) and
# rpmbuild. On hosts whose rpm database knows no packages (Debian), BuildRequires
# cannot be checked and rpmbuild runs with --nodeps.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/target/rpmbuild}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "build-rpms: no version in Cargo.toml" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/nodeimg-$version"

echo "build-rpms: nodeimg $version from $(git -C "$top" rev-parse --short HEAD)" >&2
git -C "$top" archive --format=tar --prefix="nodeimg-$version/" HEAD | tar -x -C "$work"
(
    cd "$src"
    mkdir -p .cargo
    # cargo prints the source replacement that makes builds use vendor/.
    if ! cargo vendor --locked vendor > .cargo/config.toml 2> "$work/vendor.log"; then
        cat "$work/vendor.log" >&2
        exit 1
    fi
)
mkdir -p "$out/SOURCES"
tar -czf "$out/SOURCES/nodeimg-$version.tar.gz" -C "$work" "nodeimg-$version"

nodeps=()
if ! rpm -q --quiet rpm 2>/dev/null; then
    echo "build-rpms: the rpm database knows no packages here: BuildRequires are not checked" >&2
    nodeps=(--nodeps)
fi
rpmbuild -ba "${nodeps[@]}" \
    --define "_topdir $out" \
    --define "crate_version $version" \
    "$top/spec/nodeimg.spec"
echo "build-rpms: packages in $out/SRPMS and $out/RPMS" >&2
