#!/usr/bin/env bash
# Install and start pcscd with the vsmartcard virtual reader (vpcd) so that the smarthydra
# card can appear as a PC/SC reader. Runs as root on a fresh Debian machine, without systemd.
# Idempotent: re-running installs nothing new and leaves a running pcscd alone.
#
#   VPCD_PORT   TCP port vpcd listens on for the virtual card (default 35963 = 0x8C7B)
#   PCSCD_LOG   where pcscd's output goes (default /tmp/pcscd.log)
set -euo pipefail

VPCD_PORT="${VPCD_PORT:-35963}"
PCSCD_LOG="${PCSCD_LOG:-/tmp/pcscd.log}"
PACKAGES=(pcscd vsmartcard-vpcd opensc pcsc-tools libpcsclite-dev swig)

if [ "$(id -u)" -ne 0 ]; then
    echo "pcsc-setup: must run as root (installs packages, starts pcscd)" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "pcsc-setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# vpcd: the reader driver listens (DEVICENAME /dev/null) on VPCD_PORT; the card connects to it.
hex_port=$(printf '0x%X' "$VPCD_PORT")
conf=/etc/reader.conf.d/vpcd
want="FRIENDLYNAME \"Virtual PCD\"
DEVICENAME   /dev/null:${hex_port}
LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so
CHANNELID    ${hex_port}"
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
    mkdir -p /etc/reader.conf.d
    printf '%s\n' "$want" > "$conf"
    # a running pcscd read the old configuration: restart it below
    if pid=$(pgrep -x pcscd); then kill "$pid"; sleep 1; fi
fi

port_listening() {
    # /proc/net/tcp lists local addresses as hex ip:port; state 0A is LISTEN
    local hex
    hex=$(printf '%04X' "$1")
    grep -qiE ":${hex} [0-9A-F:]+ 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

if ! pgrep -x pcscd >/dev/null; then
    mkdir -p /run/pcscd
    echo "pcsc-setup: starting pcscd in the foreground (background job), log in $PCSCD_LOG"
    nohup pcscd -f >"$PCSCD_LOG" 2>&1 &
    disown || true
fi

for _ in $(seq 1 100); do
    if [ -S /run/pcscd/pcscd.comm ] && port_listening "$VPCD_PORT"; then
        echo "pcsc-setup: pcscd ready, vpcd listening on port $VPCD_PORT"
        exit 0
    fi
    sleep 0.1
done
echo "pcsc-setup: pcscd did not become ready in 10 s; see $PCSCD_LOG" >&2
exit 1
