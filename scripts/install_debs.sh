#!/usr/bin/env bash
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Debian packages the test platform needs, installed only when missing (idempotent).
#   iperf3:   real bandwidth measurement between network namespaces (tests/platform/eks_sandbox/netns_datapath.py)
#   iproute2: `ip netns`, `ip link ... type veth` and `tc` (fq maxrate shaping)
#   ShellCheck: lints the shell scripts (scripts/*.sh, .ci/run, the eksctl shim): `make lint`
#   clang-19: the real cilium-agent compiles its BPF programs at run time with `clang --target=bpf`; Cilium
#             1.19/1.20 images ship LLVM 19.1.7 (images/runtime/Dockerfile: cilium-llvm:19.1.7), and bookworm's
#             clang-19 is 1:19.1.7 (tests/platform/eks_sandbox/pod_runtime.py puts /usr/lib/llvm-19/bin first)
#   iptables, ipset: the real agent installs its iptables rules (and masquerading) in each node's namespace
# netperf (the blog's tool) is not in Debian main (bookworm: no candidate), so it is not installed;
# the netperf path is covered by parser tests on recorded outputs, the real path uses iperf3.
# Usage: scripts/install_debs.sh [--check]   (--check: only report what is missing, exit 1 if anything is)
set -euo pipefail

PACKAGES=(iperf3 iproute2 shellcheck clang-19 iptables ipset)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_debs: all present (${PACKAGES[*]})"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  echo "install_debs: missing: ${missing[*]}"
  exit 1
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  SUDO=(sudo)
fi
echo "install_debs: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
