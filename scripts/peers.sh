# Sourced by scripts/test and .ci/run: the one list of the Debian packages the real-peer tests need, and
# the functions that find the missing ones and install them.
#
# Real vhost-user peers: DPDK 22.11's testpmd (virtio-user frontend and DPDK's own vhost backend), QEMU 7.2
# with Debian's kernel and a busybox initramfs; tshark decodes the pcap files the capture tests write;
# iproute2 makes the network namespace the TAP tests run in.
# LOOMVISOR_PEER_PACKAGES replaces the list (to try this script's paths with a package that is missing).
read -r -a peer_packages <<< "${LOOMVISOR_PEER_PACKAGES:-dpdk-dev librte-net-vhost23 librte-net-virtio23 librte-mempool-ring23 qemu-system-x86 linux-image-amd64 busybox-static tshark iproute2}"

# Sets peers_missing to the packages of peer_packages that are not installed. With dpkg the package
# database answers; without it (not Debian) nothing can be installed, so every package counts as missing.
peers_find_missing() {
  peers_missing=()
  local p status
  for p in "${peer_packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [ "${status:0:2}" = "ii" ] || peers_missing+=("$p")
  done
}

# How this user may run apt-get as root: "" (is root), "sudo -n" (passwordless sudo), or fails.
peers_privilege() {
  if [ "$(id -u)" -eq 0 ]; then
    peers_sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    peers_sudo=(sudo -n)
  else
    return 1
  fi
  command -v apt-get >/dev/null 2>&1
}

# Installs peers_missing with apt-get (no standard input, no recommends). Returns non-zero on failure.
peers_install() {
  DEBIAN_FRONTEND=noninteractive "${peers_sudo[@]}" apt-get update -q </dev/null || return 1
  DEBIAN_FRONTEND=noninteractive "${peers_sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${peers_missing[@]}" </dev/null
}
