#!/usr/bin/env bash
# System packages the build needs on Debian/Ubuntu: cmake (>= 3.24) and
# BLAS/LAPACK for the FAISS build (g++, make and libgomp are assumed, as on
# any machine with a C++ toolchain). Idempotent; run as root or with sudo.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
# Tests: the partition test drops a node's packets with iptables; the chaos
# suite also shapes a node's link with tc and gives a node a small ext4
# filesystem of its own (mkfs.ext4, a loop mount).
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
