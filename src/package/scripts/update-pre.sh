# A storage domain kept on this host's own root filesystem lives in the current
# layer and would not follow the host into the new one (BZ 1550205, BZ 1850378).
# Refuse the upgrade while one exists; /rhev holds only mount points of remote ones.
found=$(find / -xdev -path /rhev -prune -o -type f -path '*/dom_md/metadata' -size +0 -print 2>/dev/null | head -n 1)
if [ -n "$found" ]; then
    echo "ovirt-node-ng-image-update: this host keeps a storage domain on its root filesystem ($found)." >&2
    echo "Upgrading the image would lose it. Move the domain off the host first;" >&2
    echo "see https://bugzilla.redhat.com/show_bug.cgi?id=1550205#c3" >&2
    exit 1
fi
