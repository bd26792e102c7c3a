#!/usr/bin/env bash
# Install everything nodeimg and its test suite need, on Debian/Ubuntu (apt) or
# Fedora/EL (dnf). Safe to run again: it installs only what is missing and finishes
# in about a second when everything is there.
#
#   scripts/setup.sh            system packages, Rust check, Python venv in .venv/
#
# The Python venv (.venv/, git-ignored) holds pykickstart, koji and pytest from PyPI
# at the versions in tests/requirements.txt.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$top/.venv"
requirements="$top/tests/requirements.txt"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $* (run as root or install sudo)"
    fi
}

# Tools and libraries: rpm tooling (rpmsign and gpg sign test packages; rpm2cpio and
# cpio unpack payloads), dnf (the native installer), systemctl and setfiles (it applies
# services and SELinux labels to the tree), createrepo, squashfs-tools, e2fsprogs,
# partitioning tools, static busybox (the /bin/sh of the dnf tests' chroot), OpenSSL and
# pkg-config for the Rust TLS stack, the openssl tool (the koji tests make certificates
# with it), the MIT GSSAPI headers and libclang (nodeimg's Kerberos login binds
# libgssapi_krb5 through bindgen; python-gssapi, which koji pulls in, builds against
# krb5-config too), MIT's KDC, kadmin.local and kinit (the Kerberos tests run a real
# realm) and libfaketime (their clock-skew case). The real-koji tests (tests/realkoji/)
# run kojihub on PostgreSQL under Apache httpd with mod_wsgi, kojira, kojid and mock
# from their sources on the system's python3 with the modules they import (dnf,
# librepo, Cheetah, psycopg2, jsonschema, jinja2, pyroute2, backoff, distro, …).
debian_packages=(
    rpm rpm2cpio cpio python3-rpm dnf systemd policycoreutils busybox-static createrepo-c
    squashfs-tools e2fsprogs fdisk gdisk mount gpg qemu-utils openssl libssl-dev pkg-config
    libkrb5-dev libclang-dev gcc python3-venv python3-dev
    krb5-kdc krb5-admin-server krb5-user faketime apache2 libapache2-mod-auth-gssapi
    libapache2-mod-wsgi-py3 python3-jsonschema
    postgresql util-linux passwd python3-dnf python3-librepo python3-cheetah
    python3-defusedxml python3-six python3-dateutil python3-requests python3-psycopg2
    python3-jinja2 python3-pyroute2 python3-backoff python3-distro
)
fedora_packages=(
    rpm rpm-build rpm-sign cpio python3-rpm dnf systemd policycoreutils busybox createrepo_c
    squashfs-tools e2fsprogs util-linux gdisk gnupg2 qemu-img openssl openssl-devel
    pkgconf-pkg-config krb5-devel clang-devel gcc python3 python3-devel
    krb5-server krb5-workstation libfaketime httpd mod_ssl mod_auth_gssapi python3-mod_wsgi
    python3-jsonschema
    postgresql-server shadow-utils python3-dnf python3-librepo python3-cheetah
    python3-defusedxml python3-six python3-dateutil python3-requests python3-psycopg2
    python3-jinja2 python3-pyroute2 python3-backoff python3-distro
)

install_system_packages() {
    if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
        local missing=()
        for pkg in "${debian_packages[@]}"; do
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
                missing+=("$pkg")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            say "installing with apt-get: ${missing[*]}"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
        fi
    elif command -v dnf >/dev/null && command -v rpm >/dev/null; then
        local missing=()
        for pkg in "${fedora_packages[@]}"; do
            rpm -q --quiet "$pkg" || missing+=("$pkg")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            say "installing with dnf: ${missing[*]}"
            as_root dnf install -y "${missing[@]}"
        fi
    else
        die "neither apt-get nor dnf found: install by hand: ${fedora_packages[*]}"
    fi
}

check_rust() {
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null; then
        if command -v dnf >/dev/null && ! command -v apt-get >/dev/null; then
            say "installing Rust with dnf"
            as_root dnf install -y cargo rust clippy rustfmt
        else
            die "cargo not found: install a Rust toolchain (1.90 or newer) with rustup"
        fi
    fi
    for component in clippy fmt; do
        cargo "$component" --version >/dev/null 2>&1 ||
            die "cargo $component is missing: rustup component add ${component/fmt/rustfmt}"
    done
}

setup_venv() {
    # The distribution's interpreter, with its site packages visible: the rpm bindings
    # (python3-rpm) are not on PyPI, and koji's header code needs them.
    local python=/usr/bin/python3
    [ -x "$python" ] || python=$(command -v python3) || die "python3 is missing"
    local stamp="$venv/.requirements.sha256"
    local want
    want=$({ cat "$requirements"; echo "venv: $python --system-site-packages"; } | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
        return
    fi
    say "creating the Python venv in $venv from $python (pykickstart, koji, pytest; system rpm bindings)"
    "$python" -m venv --clear --system-site-packages "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    "$venv/bin/python" -c "import rpm" 2>/dev/null ||
        die "the rpm Python bindings are not importable from $venv: install python3-rpm"
    echo "$want" >"$stamp"
}

install_system_packages
check_rust
setup_venv
say "ready"
