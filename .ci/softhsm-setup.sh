#!/usr/bin/env bash
# Install SoftHSM2 (PKCS#11 soft token) and OpenSC (for pkcs11-tool) so that the PKCS#11
# keystore tests run. Runs as root on a fresh Debian machine. Idempotent: installs only what
# is missing and changes nothing else (each test creates its own token in a temp directory).
set -euo pipefail

PACKAGES=(softhsm2 opensc)

if [ "$(id -u)" -ne 0 ]; then
    echo "softhsm-setup: must run as root (installs packages)" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "softhsm-setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

module=""
for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*-linux-gnu/softhsm/libsofthsm2.so; do
    if [ -f "$candidate" ]; then module="$candidate"; break; fi
done
if [ -z "$module" ] || ! command -v softhsm2-util >/dev/null; then
    echo "softhsm-setup: libsofthsm2.so or softhsm2-util missing after install" >&2
    exit 1
fi
echo "softhsm-setup: ready ($module, $(softhsm2-util --version))"
