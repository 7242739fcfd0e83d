"""Pinned versions of everything the local platform builds or fetches. One place, one table.

Bump a version here and the next ``python -m eks_sandbox build`` builds it into its own
cache folder; the old one stays until ``python -m eks_sandbox clean``.
"""

# Go-built tools: name -> version. Filled in by gobuild.py recipes.
KUBERNETES = "v1.34.4"
ETCD = "v3.6.16"
KWOK = "v0.8.0"
HELM = "v3.19.5"
# The cilium CLI lives in github.com/cilium/cilium under cilium-cli/ since Cilium 1.16, but
# the release module zips on the proxy (v1.16.0 ... v1.20.2) hold no cilium-cli/ folder;
# this main-branch pseudo-version (after v1.20.0-pre.1) is the newest that does.
CILIUM_CLI = "v1.20.0-pre.1.0.20260419120955-62bccdec3fb9"
# eksctl's Go module is still github.com/weaveworks/eksctl (its go.mod at v0.225.0); the proxy
# refuses the github.com/eksctl-io/eksctl path (403). v0.225.0 is not in the proxy's /@v/list
# (only v0.143.0 and v0.215.0 are) but is served by exact version. The tools role pins the same.
EKSCTL = "v0.225.0"
# What eksctl's kubeconfigs run to log in (an exec user: aws-iam-authenticator when on PATH, else
# `aws eks get-token`; eksctl pkg/utils/kubeconfig/kubeconfig.go). The tools role pins the same.
AWS_IAM_AUTHENTICATOR = "v0.7.8"

# Cilium releases whose chart (and CRDs) the platform fetches. Keys are minor versions.
# Each value is the newest patch of that minor that the Go module proxy serves in full
# (.info, .mod and .zip of github.com/cilium/cilium); the chart and the CRDs come from
# that module, see charts.py. 1.13.4 is the version the blog posts use.
CILIUM_CHARTS = {
    "1.13": "1.13.4",
    "1.14": "1.14.19",  # 1.14.20 not served (1.14 is end-of-life)
    "1.15": "1.15.19",  # 1.15.20 not served (1.15 is end-of-life)
    "1.16": "1.16.19",  # 1.16.20-1.16.22 not served
    "1.17": "1.17.17",  # 1.17.18+ not served
    "1.18": "1.18.11",  # 1.18.12-1.18.18 not served
    "1.19": "1.19.7",  # 1.19.8 has .info but its .mod/.zip are not served
    "1.20": "1.20.2",  # 1.20.3+ not served
}

# Cilium releases whose agent, cilium-dbg, CNI plugin and AWS operator the platform builds and runs
# for real (gobuild.py recipe "cilium", one cache folder per version). The first is the default: the
# collection's default Cilium. 1.19.7 is there for 1.19 -> 1.20 upgrades on real agents.
# 1.13 - 1.18 cannot be built here: their go.mod replaces k8s.io/apimachinery with a
# github.com/cilium/apimachinery fork whose module zip the proxy refuses (403), e.g.
# v1.18.11 `replace k8s.io/apimachinery => github.com/cilium/apimachinery v0.33.3-1`. Those
# versions run on the recorded-output replay (agent_replay.py).
CILIUM_AGENTS = ("1.20.2", "1.19.7")
# First 8 hex digits of each release commit, stamped into the binaries as Cilium's Makefile.defs does
# (`ciliumVersion=$(VERSION) $(GIT_VERSION)`, GIT_VERSION = `git show -s --format='format:%h %aI'`).
# The proxy's .info of these versions carries no Origin, so the commit comes from elsewhere:
# 1.20.2 from a published `cilium status` line (tests/recordings/cilium/SOURCES.md); 1.19.7's was not
# found, and 00000000 says so.
CILIUM_REVISIONS = {"1.20.2": "e0dc92bd", "1.19.7": "00000000"}

# The AWS VPC CNI of the sandbox's EKS add-on (eks_objects.VPC_CNI_TAG v1.19.2-eksbuild.1), built from
# github.com/aws/amazon-vpc-cni-k8s so that the aws-node pods of a sandbox with vpc_cni_runtime="real" run for real
# (the cluster's CNI before Cilium, and the first CNI of Cilium's aws-cni chaining), with the core CNI plugins its
# init image ships (Makefile target `plugins`: containernetworking/plugins v1.5.1). Both are built on first use.
AWS_VPC_CNI = "v1.19.2"
CNI_PLUGINS = "v1.5.1"
