"""Build the platform's Go tools from the Go module proxy into the cache, at pinned versions.

Each tool is a ``Recipe``: Go module(s) at one version, the main packages to build, the
binaries they become and the ``-X`` ldflags that stamp version information. One generic
build serves every recipe:

1. ``go mod download`` each module and read its upstream ``go.mod`` (``go mod edit -json``).
2. Write a throwaway module that ``require``s them. Upstream ``replace`` directives are
   copied over; the ones pointing at local directories (``k8s.io/api => ./staging/...``,
   ``go.etcd.io/etcd/api/v3 => ../api``), which make ``go install pkg@version`` refuse, are
   turned into the published sibling module at the matching version. The upstream
   go.sum files seed the throwaway one (the checksum database here lacks some versions).
   This go.mod work is the collection's own (``plugins/module_utils/cli_tools.py``), which the
   tools role's go method runs too: one implementation for both.
3. ``go build -trimpath -ldflags ...`` the binaries into a temporary folder next to the
   cache entry (one go command for all binaries of the same build tags, ``build_groups``), run a version
   smoke check, then rename the folder into place. A folder whose ``build.json`` does not match the recipe, or
   that lacks a binary, is not cached.

A warm ``ensure()`` only stats files and reads one small JSON: it never runs ``go``.
``ensure_all()`` builds one tool after another; meanwhile a thread downloads what the next missing tools will
read (``prefetch``: steps 1-2 and ``go list -deps``, no compiling), so on a cold machine the downloads overlap the
compiles.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from . import cache, versions

# The go.mod rewriting is the collection's own (module_utils/cli_tools.py, behind the tools role's go method):
# `make deps` links this repository into .collections as cloudnet.cilium_eks.
_COLLECTIONS = Path(__file__).resolve().parents[3] / ".collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.append(str(_COLLECTIONS))
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.cli_tools import (  # noqa: E402
    kubernetes_staging_version,
    merge_go_sums,
    newest_go_version,
    render_go_mod,
    rewrite_replaces,
)

STDERR_TAIL_LINES = 40
SMOKE_TIMEOUT_SECONDS = 30


class GoBuildError(RuntimeError):
    """A command of a tool's build failed; the message names tool, command and stderr tail."""

    def __init__(self, tool: str, argv: Sequence[str], returncode: int, stderr: str):
        self.tool, self.argv, self.returncode = tool, list(argv), returncode
        self.stderr_tail = stderr_tail(stderr)
        super().__init__(
            f"{tool}: build step failed (exit {returncode}): {shlex.join(argv)}\n"
            f"--- last lines of stderr ---\n{self.stderr_tail}"
        )


class ToolUnavailable(RuntimeError):
    """The tool cannot be built here; ``str(exc)`` is the reason, fit for ``pytest.skip``."""


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str | None
    modules: tuple[str, ...]
    binaries: Mapping[str, str]  # binary name -> main package import path
    ldflags: Mapping[str, str] = field(default_factory=dict)  # -X symbol -> value template
    # Version of a sibling module that an upstream go.mod replaces with a local directory;
    # None means "the same version as the tool" (etcd). Kubernetes staging is v0.MINOR.PATCH.
    sibling_version: str | None = None
    # binary -> arguments printing its version; the output must contain the version.
    version_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unavailable: str | None = None
    # The version command prints the bare version and nothing else (eksctl): compare exactly,
    # so a pre-release stamp ("0.225.0-dev") fails the smoke check.
    exact_version_output: bool = False
    # Built when first needed (a sandbox's pod pulls the "image", `--only NAME`), not by `python -m eks_sandbox
    # build` without --only: keeps a cold `make platform` (and CI) to what `make test` runs.
    on_demand: bool = False
    # binary -> Go build tags (``go build -tags``), e.g. the AWS IPAM provider of cilium-operator-aws.
    build_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # (old, new@version) replace directives added to the upstream ones, each with its reason in the recipe.
    extra_replaces: tuple[tuple[str, str], ...] = ()
    # folder in the cache entry -> folder of the first module copied there (data a binary reads at run time).
    module_dirs: Mapping[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hash of everything that decides the build output; a changed recipe rebuilds."""
        inputs = {
            "version": self.version,
            "modules": list(self.modules),
            "binaries": dict(self.binaries),
            "ldflags": dict(self.ldflags),
            "sibling_version": self.sibling_version,
        }
        # Only when set, so that the recipes older than these fields keep their fingerprints (and caches).
        for key, value in (("build_tags", {b: list(t) for b, t in self.build_tags.items()}),
                           ("extra_replaces", [list(pair) for pair in self.extra_replaces]),
                           ("module_dirs", dict(self.module_dirs))):
            if value:
                inputs[key] = value
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


# --- version stamps -------------------------------------------------------------------

def _major_minor(version: str) -> tuple[str, str]:
    major, minor = version.lstrip("v").split(".")[:2]
    return major, minor


def kubernetes_version_ldflags(version: str) -> dict[str, str]:
    """What hack/lib/version.sh stamps, into both packages that report the version.

    No gitCommit: the proxy does not tell it. The compatibility version
    (component-base/version/base.go's DefaultKubeBinaryVersion, "1.34") is a constant of the
    k8s.io/component-base v0.MINOR.PATCH the build uses, so it matches without a flag.
    """
    major, minor = _major_minor(version)
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "{build_date}",
    }
    return {
        f"{package}.{key}": value
        for package in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version")
        for key, value in values.items()
    }


def helm_version_ldflags(version: str, kube_version: str) -> dict[str, str]:
    """helm's Makefile stamps: its version, and the Kubernetes version assumed offline
    (``helm template``'s ``.Capabilities.KubeVersion``), here the sandbox cluster's."""
    major, minor = _major_minor(kube_version)
    flags = {
        "helm.sh/helm/v3/internal/version.version": version,
        "helm.sh/helm/v3/internal/version.gitTreeState": "clean",
    }
    for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags[f"{package}.k8sVersionMajor"] = major
        flags[f"{package}.k8sVersionMinor"] = minor
    return flags


def _kubernetes_recipe() -> Recipe:
    version = versions.KUBERNETES
    components = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    version_args = {c: ("--version",) for c in components}
    version_args["kubectl"] = ("version", "--client")  # kubectl: rollout status, exec, as users run them
    return Recipe(
        name="kubernetes",
        version=version,
        modules=("k8s.io/kubernetes",),
        binaries={c: f"k8s.io/kubernetes/cmd/{c}" for c in version_args},
        ldflags=kubernetes_version_ldflags(version),
        sibling_version=kubernetes_staging_version(version),
        version_args=version_args,
    )


def _cilium_cli_recipe() -> Recipe:
    version = versions.CILIUM_CLI
    return Recipe(
        name="cilium-cli",
        version=version,
        modules=("github.com/cilium/cilium",),
        binaries={"cilium": "github.com/cilium/cilium/cilium-cli/cmd/cilium"},
        # cilium-cli/Makefile stamps `git describe --tags`; the module version stands in.
        ldflags={"github.com/cilium/cilium/cilium-cli/defaults.CLIVersion": version or ""},
        version_args={"cilium": ("version", "--client")},
        unavailable=None if version else (
            "unavailable: no github.com/cilium/cilium version on the Go module proxy here "
            "ships the cilium-cli/ sources"
        ),
    )


EKSCTL_VERSION_PACKAGE = "github.com/weaveworks/eksctl/pkg/version"


def eksctl_version_ldflags() -> dict[str, str]:
    """What eksctl's release build stamps (``.github/.goreleaser.yml`` at v0.225.0:
    ``-X .../pkg/version.buildDate={{.Date}} -X ...gitCommit={{.ShortCommit}}
    -X ...PreReleaseID={{.Env.PRE_RELEASE_ID}}``).

    ``Version`` is already in the tagged module's ``pkg/version/release.go``, next to
    ``PreReleaseID = "dev"``: a release clears it, or ``eksctl version`` says ``0.225.0-dev``.
    The commit is the one the proxy's ``.info`` names (``Origin.Hash``), shortened as git does.
    goreleaser also passes ``-tags "netgo release"``: ``release`` only gates the generator
    ``pkg/version/generate/release_generate.go`` (not in the binary) and ``netgo`` is what
    ``CGO_ENABLED=0`` gives anyway, so they are left out and the standard library's build cache
    stays shared with the other tools.
    """
    return {
        f"{EKSCTL_VERSION_PACKAGE}.PreReleaseID": "",
        f"{EKSCTL_VERSION_PACKAGE}.gitCommit": "{git_commit}",
        f"{EKSCTL_VERSION_PACKAGE}.buildDate": "{build_date}",
    }


def _eksctl_recipe() -> Recipe:
    version = versions.EKSCTL
    return Recipe(
        name="eksctl",
        version=version,
        modules=("github.com/weaveworks/eksctl",),
        binaries={"eksctl": "github.com/weaveworks/eksctl/cmd/eksctl"},
        ldflags=eksctl_version_ldflags(),
        # `eksctl version` prints the bare version ("0.225.0"); a build without the stamps
        # prints "0.225.0-dev", which must not pass for the release.
        version_args={"eksctl": ("version",)},
        exact_version_output=True,
    )


def _aws_iam_authenticator_recipe() -> Recipe:
    """What eksctl's kubeconfigs log in with. Stamps of its Makefile / .goreleaser.yaml at v0.7.8
    (``pkg.Version``, ``pkg.CommitID``, ``pkg.BuildDate``)."""
    version = versions.AWS_IAM_AUTHENTICATOR
    package = "sigs.k8s.io/aws-iam-authenticator/pkg"
    return Recipe(
        name="aws-iam-authenticator",
        version=version,
        modules=("sigs.k8s.io/aws-iam-authenticator",),
        binaries={"aws-iam-authenticator": "sigs.k8s.io/aws-iam-authenticator/cmd/aws-iam-authenticator"},
        ldflags={f"{package}.Version": version.lstrip("v"), f"{package}.CommitID": "{git_commit}",
                 f"{package}.BuildDate": "{build_date}"},
        version_args={"aws-iam-authenticator": ("version",)},
    )


CILIUM_MODULE = "github.com/cilium/cilium"


def cilium_tool(version: str) -> str:
    """Name under which ``ensure()`` builds the real Cilium binaries of ``version`` ("1.20.2"):
    ``cilium`` for the default (first of ``versions.CILIUM_AGENTS``), ``cilium@<version>`` for the others."""
    return "cilium" if version == versions.CILIUM_AGENTS[0] else f"cilium@{version}"


def cilium_recipe(version: str) -> Recipe:
    """cilium-agent, cilium-dbg, the CNI plugin, the health responder and cilium-operator-aws of one release,
    with the BPF sources the agent compiles at run time (its image keeps them in /var/lib/cilium/bpf).

    Build tags and stamp as upstream's Makefiles: ``osusergo`` everywhere (Makefile.defs GO_TAGS_FLAGS),
    ``ipam_provider_aws`` for the operator (operator/Makefile, target cilium-operator-aws), and
    ``pkg/version.ciliumVersion = "<version> <revision> <date>"`` (three fields: ``cilium-dbg status`` shows
    ``(v<version>-<revision>)`` and ``version.FromString`` needs them). The date is the proxy's release time.
    """
    module = CILIUM_MODULE
    binaries = {
        "cilium-agent": f"{module}/daemon",  # the agent's main package is daemon/; the image calls it cilium-agent
        "cilium-dbg": f"{module}/cilium-dbg",
        "cilium-cni": f"{module}/plugins/cilium-cni",
        "cilium-health-responder": f"{module}/cilium-health/responder",
        "cilium-operator-aws": f"{module}/operator",
    }
    tags = {binary: ("osusergo",) for binary in binaries}
    tags["cilium-operator-aws"] = ("osusergo", "ipam_provider_aws")
    replaces = ()
    if tuple(int(p) for p in version.split(".")[:2]) >= (1, 20):
        # v1.20.2's go.mod requires github.com/osrg/gobgp/v4 at the pseudo-version
        # v4.6.1-0.20260630022313-d6dee8360046, which the Go module proxy refuses (403); v4.7.0 is the
        # first release after that commit that the proxy serves, and the build needs no other change.
        replaces = (("github.com/osrg/gobgp/v4", "github.com/osrg/gobgp/v4@v4.7.0"),
                    # v1.20.2 requires sigs.k8s.io/mcs-api/controllers v0.5.2, which the proxy refuses (403; its
                    # @v/list is empty). The operator (pkg/clustermesh/mcsapi, operator/pkg/gateway-api) uses only
                    # its DerivedServiceAnnotation and ServiceImportReconciler; the pseudo-version v1.19.7 requires
                    # has both and is served.
                    ("sigs.k8s.io/mcs-api/controllers",
                     "sigs.k8s.io/mcs-api/controllers@v0.0.0-20260403094305-4b9911b73f14"))
    revision = versions.CILIUM_REVISIONS.get(version, "00000000")
    return Recipe(
        name="cilium",
        version=f"v{version}",
        modules=(module,),
        binaries=binaries,
        ldflags={f"{module}/pkg/version.ciliumVersion": f"{version} {revision} {{build_date}}"},
        version_args={"cilium-agent": ("--version",)},
        build_tags=tags,
        extra_replaces=replaces,
        module_dirs={"lib/bpf": "bpf"},
        # The default version (the first) is what the tests run; the others (1.19.7: upgrades, recordings) are built
        # by the first sandbox that runs them (about 11 minutes cold) or by `build --only cilium@<version>`.
        on_demand=version != versions.CILIUM_AGENTS[0],
    )


def cilium_operator_generic_recipe(version: str) -> Recipe:
    """cilium-operator-generic of one release: the operator image the chart runs in every IPAM mode but the cloud
    ones (templates/cilium-operator/_helpers.tpl l.1-11 at v1.20.2: ``-generic`` unless eni/azure/alibabacloud), so the
    one of aws-cni chaining (ipam.mode=cluster-pool). Tag ``ipam_provider_operator`` as operator/Makefile's target
    cilium-operator-generic; stamp and replaces as :func:`cilium_recipe`. A recipe of its own, built on first use,
    so that adding it leaves the cached Cilium builds (and a cold ``make platform``) as they were."""
    module = CILIUM_MODULE
    return replace(cilium_recipe(version), name="cilium-operator-generic",
                   binaries={"cilium-operator-generic": f"{module}/operator"},
                   build_tags={"cilium-operator-generic": ("osusergo", "ipam_provider_operator")},
                   version_args={}, module_dirs={}, on_demand=True)


def aws_vpc_cni_recipe() -> Recipe:
    """The AWS VPC CNI's binaries as its images hold them (scripts/dockerfiles/Dockerfile.release and Dockerfile.init
    at v1.19.2: aws-k8s-agent is ipamd, aws-cni and egress-cni the CNI plugins, aws-vpc-cni the entrypoint that
    installs them with 10-aws.conflist and runs ipamd, aws-vpc-cni-init the init container), stamped like the
    Makefile's LDFLAGS; misc/ holds the 10-aws.conflist template the image copies to /app."""
    module = "github.com/aws/amazon-vpc-cni-k8s"
    version = versions.AWS_VPC_CNI
    binaries = {"aws-k8s-agent": f"{module}/cmd/aws-k8s-agent", "aws-cni": f"{module}/cmd/routed-eni-cni-plugin",
                "egress-cni": f"{module}/cmd/egress-cni-plugin", "aws-vpc-cni": f"{module}/cmd/aws-vpc-cni",
                "aws-vpc-cni-init": f"{module}/cmd/aws-vpc-cni-init",
                "grpc-health-probe": f"{module}/cmd/grpc-health-probe"}
    return Recipe(
        name="aws-vpc-cni", version=version, modules=(module,), binaries=binaries, on_demand=True,
        ldflags={f"{module}/pkg/version/info.Version": version, f"{module}/pkg/awsutils/awssession.version": version},
        module_dirs={"misc": "misc", "config": "config/master"},  # config: the add-on's own manifest
    )


def cni_plugins_recipe() -> Recipe:
    """The containernetworking plugins the VPC CNI's init image copies to the node (its Makefile fetches the
    v1.5.1 release): the ones its 10-aws.conflist and Cilium's chained list call, and loopback."""
    module = "github.com/containernetworking/plugins"
    binaries = {name: f"{module}/plugins/{kind}/{name}" for kind, name in (
        ("main", "loopback"), ("meta", "portmap"), ("ipam", "host-local"), ("meta", "bandwidth"))}
    return Recipe(name="cni-plugins", version=versions.CNI_PLUGINS, modules=(module,), binaries=binaries,
                  on_demand=True,
                  ldflags={"github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion":
                           versions.CNI_PLUGINS})


def _recipes() -> dict[str, Recipe]:
    """The tools, in build order (kwok first: the rest of the platform waits on it)."""
    kube_version = versions.KUBERNETES
    recipes = [
        Recipe(
            name="kwok",
            version=versions.KWOK,
            modules=("sigs.k8s.io/kwok",),
            binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok", "kwokctl": "sigs.k8s.io/kwok/cmd/kwokctl"},
            ldflags={
                "sigs.k8s.io/kwok/pkg/consts.Version": versions.KWOK,
                # Default --kube-version of kwokctl: the Kubernetes the sandbox runs.
                "sigs.k8s.io/kwok/pkg/consts.KubeVersion": kube_version.lstrip("v"),
            },
            version_args={"kwok": ("--version",), "kwokctl": ("--version",)},
        ),
        Recipe(
            name="etcd",
            version=versions.ETCD,
            # etcd 3.6 keeps the server's main package at the root of the server module.
            modules=("go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3"),
            binaries={"etcd": "go.etcd.io/etcd/server/v3", "etcdctl": "go.etcd.io/etcd/etcdctl/v3"},
            # etcd's only stamp is api/v3/version.GitSHA, a commit the proxy does not give.
            version_args={"etcd": ("--version",), "etcdctl": ("version",)},
        ),
        _kubernetes_recipe(),
        Recipe(
            name="helm",
            version=versions.HELM,
            modules=("helm.sh/helm/v3",),
            binaries={"helm": "helm.sh/helm/v3/cmd/helm"},
            ldflags=helm_version_ldflags(versions.HELM, kube_version),
            version_args={"helm": ("version", "--short")},
        ),
        _cilium_cli_recipe(),
        _eksctl_recipe(),
        _aws_iam_authenticator_recipe(),
    ]
    recipes = {recipe.name: recipe for recipe in recipes}
    for version in versions.CILIUM_AGENTS:
        recipes[cilium_tool(version)] = cilium_recipe(version)
    recipes["cilium-operator-generic"] = cilium_operator_generic_recipe(versions.CILIUM_AGENTS[0])
    for recipe in (aws_vpc_cni_recipe(), cni_plugins_recipe()):
        recipes[recipe.name] = recipe
    return recipes


RECIPES: dict[str, Recipe] = _recipes()


# --- pure helpers (unit-tested) --------------------------------------------------------

def compose_ldflags(variables: Mapping[str, str], strip: bool = True) -> str:
    """``-s -w -X sym=value ...`` as one ``-ldflags`` argument; values with spaces are
    quoted the way the go command splits ``-ldflags``."""
    parts = ["-s", "-w"] if strip else []
    for symbol, value in variables.items():
        assignment = f"{symbol}={value}"
        if any(ch.isspace() for ch in assignment) or "'" in assignment or '"' in assignment:
            if "'" in assignment:
                raise ValueError(f"ldflags value cannot contain a single quote: {assignment!r}")
            assignment = f"'{assignment}'"
        parts += ["-X", assignment]
    return " ".join(parts)


def resolve_ldflags(templates: Mapping[str, str], **context: str) -> dict[str, str]:
    """Fill build-time placeholders such as ``{build_date}`` into the ldflags values."""
    return {symbol: value.format_map(context) for symbol, value in templates.items()}


def stderr_tail(stderr: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(stderr.strip().splitlines()[-lines:])


def short_commit(info: Mapping) -> str:
    """The commit a module version was tagged at (its proxy ``.info`` ``Origin.Hash``), cut to
    12 hex digits (what ``git rev-parse --short`` gives in a repository of eksctl's size);
    "" when the proxy does not say."""
    return str((info.get("Origin") or {}).get("Hash") or "")[:12]


def build_date(info_time: str) -> str:
    """Release time of a module version (its proxy ``.info``) in Kubernetes' buildDate format."""
    moment = datetime.fromisoformat(info_time.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- cache -----------------------------------------------------------------------------

def _install_dir(recipe: Recipe) -> Path:
    """``<cache>/tools/<name>-<version>``: the unit that is renamed into place."""
    return cache.tool_dir(recipe.name, recipe.version).parent


def _binary_paths(recipe: Recipe) -> dict[str, Path]:
    bin_dir = cache.tool_dir(recipe.name, recipe.version)
    return {binary: bin_dir / binary for binary in recipe.binaries}


def _cached(recipe: Recipe) -> dict[str, Path] | None:
    try:
        record = json.loads((_install_dir(recipe) / "build.json").read_text())
    except (OSError, ValueError):
        return None
    paths = _binary_paths(recipe)
    if record.get("fingerprint") != recipe.fingerprint():
        return None
    if not all(os.access(path, os.X_OK) for path in paths.values()):
        return None
    if not all((_install_dir(recipe) / folder).is_dir() for folder in recipe.module_dirs):
        return None
    return paths


@contextlib.contextmanager
def _lock(recipe: Recipe) -> Iterator[None]:
    """One builder per tool version at a time, across processes."""
    lock_dir = cache.cache_root() / "tools" / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{recipe.name}-{recipe.version}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- building --------------------------------------------------------------------------

# The compile processes' garbage collector: off until a process's heap reaches GOMEMLIMIT (the runtime's soft limit,
# https://go.dev/doc/gc-guide#Memory_limit). A cold build is all compile CPU on this 2-core machine; the setting
# changes no byte of what the compiler emits, so the build cache and the cached tools stay valid. Measured on
# helm v3.19.5 with an empty build cache: 330 -> 295 CPU-s (-11%), peak RSS 1.07 -> 1.21 GB (GOGC=800: no gain).
COMPILE_HEAP_GIB = 4  # a compile's heap before its GC runs, and what build_parallelism() budgets per compile
COMPILER_GC = {"GOGC": "off", "GOMEMLIMIT": f"{COMPILE_HEAP_GIB}GiB"}


# How the go command spreads a build over the cores. Each compile and link runs on one thread (GOMAXPROCS=1: the
# go command then passes the compiler no -c backend concurrency, and no Go runtime spins idle threads), and twice as
# many packages as there are cores are built at once (``go build -p``), so the build graph's narrow stretches and
# the links still keep every core busy. Neither setting enters the binaries or the build cache's keys: the tools
# are byte for byte what a default build makes (same sha256), and cached tools stay valid. Measured on helm
# v3.19.5, empty build cache, 2 cores (with COMPILER_GC): default 171 s wall / 315 CPU-s; GOMAXPROCS=1 with -p 2:
# 148 s / 275; -p 4: 126 s / 234; -p 6: 136 s / 250. A compile's heap may grow to GOMEMLIMIT before its GC runs
# (COMPILER_GC), so no more compiles run at once than that many fit in the machine's memory.
COMPILER_THREADS = {"GOMAXPROCS": "1"}
PACKAGES_PER_CORE = 2


def build_parallelism() -> int:
    """``go build -p``: PACKAGES_PER_CORE compiles per core this process may run on, and no more than the
    machine's memory holds at COMPILE_HEAP_GIB each (at least one)."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return max(1, min(PACKAGES_PER_CORE * len(os.sched_getaffinity(0)), memory // (COMPILE_HEAP_GIB << 30)))


def _go_env() -> dict[str, str]:
    """The go command's environment: this toolchain only, no cgo, no workspace, and
    go.mod/go.sum of the throwaway module updated as needed (``-mod=mod``)."""
    env = dict(os.environ)
    inherited = [flag for flag in env.get("GOFLAGS", "").split()
                 if not flag.startswith(("-mod=", "-buildvcs="))]
    env.update(
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        GOWORK="off",
        # Setting GOFLAGS here hides the one of `go env -w`, so say everything needed.
        GOFLAGS=" ".join(inherited + ["-mod=mod", "-buildvcs=false"]),
    )
    for variable, value in {**COMPILER_GC, **COMPILER_THREADS}.items():  # a caller's own setting wins
        env.setdefault(variable, value)
    return env


# A build started by a sandbox's node runtime (an image "pulled" on first use) must not outlive it: `down` stops the
# runtime, and the go command then gets SIGKILL (prctl PR_SET_PDEATHSIG through util-linux's setpriv) instead of
# building on as an orphan.
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


def _run(tool: str, argv: Sequence[str], cwd: Path | None = None, timeout: float | None = None) -> str:
    try:
        result = subprocess.run(
            _DIE_WITH_PARENT + list(argv), cwd=cwd, env=_go_env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GoBuildError(tool, argv, 127, str(exc)) from None
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise GoBuildError(tool, argv, -1, f"{stderr or ''}\ntimed out after {timeout}s") from None
    if result.returncode != 0:
        raise GoBuildError(tool, argv, result.returncode, result.stderr or result.stdout)
    return result.stdout


def _download(tool: str, module: str, version: str, cwd: Path) -> dict:
    """``go mod download -json``: fetch the module; returns paths of its go.mod and .info.
    (On failure the go command prints its JSON, with the "Error", on stdout: _run shows it.)"""
    return json.loads(_run(tool, ["go", "mod", "download", "-json", f"{module}@{version}"], cwd=cwd))


def _smoke_check(recipe: Recipe, binary: str, path: Path) -> str:
    """Run the binary's version command; its output must show the version it was built at."""
    args = recipe.version_args.get(binary)
    if not args:
        return ""
    argv = [str(path), *args]
    output = _run(recipe.name, argv, timeout=SMOKE_TIMEOUT_SECONDS).strip()
    if recipe.exact_version_output:
        shown = output.splitlines()[0].strip().lstrip("v") if output else ""
        if shown != recipe.version.lstrip("v"):
            raise GoBuildError(
                recipe.name, argv, 0, f"version output is not exactly {recipe.version}:\n{output}"
            )
    if recipe.version.lstrip("v") not in output:
        raise GoBuildError(
            recipe.name, argv, 0, f"version output does not show {recipe.version}:\n{output}"
        )
    return output.splitlines()[0] if output else ""


def _copy_writable(source: Path, destination: Path) -> None:
    """Copy a folder out of Go's read-only module cache, writable by the owner (so it can be replaced)."""
    shutil.copytree(source, destination, symlinks=True)
    for path in [destination, *destination.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)


def module_data_dir(name: str, folder: str) -> Path:
    """A folder of a built tool's cache entry copied from its module (``Recipe.module_dirs``)."""
    return _install_dir(get_recipe(name)) / folder


def _build(recipe: Recipe) -> dict[str, Path]:
    tools_root = cache.cache_root() / "tools"
    tools_root.mkdir(parents=True, exist_ok=True)
    # Same file system as the destination, so the final rename is atomic. A build killed
    # before its cleanup leaves its folder behind: drop those (we hold the tool's lock).
    staging_prefix = f".build-{recipe.name}-{recipe.version}-"
    for leftover in tools_root.glob(f"{staging_prefix}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix, dir=tools_root))
    try:
        module_dir = staging / "module"
        output_dir = staging / "out"
        (output_dir / "bin").mkdir(parents=True)
        module_dir.mkdir()
        module_roots, release_times, commits = _write_module(recipe, module_dir)
        ldflags = compose_ldflags(resolve_ldflags(
            recipe.ldflags, build_date=build_date(min(release_times)), git_commit=commits[0],
        ))

        for number, (tags, group) in enumerate(build_groups(recipe)):
            # One go command per group: its packages compile once and its links run beside the compiles.
            group_dir = staging / f"group-{number}"
            _run(recipe.name, ["go", "build", "-trimpath", "-p", str(build_parallelism()),
                               *_tags_args(tags), "-ldflags", ldflags,
                               "-o", f"{group_dir}{os.sep}", *group.values()], cwd=module_dir)
            for binary, package in group.items():
                os.rename(group_dir / go_executable_name(package), output_dir / "bin" / binary)
        versions_seen = {binary: _smoke_check(recipe, binary, output_dir / "bin" / binary)
                         for binary in recipe.binaries}

        for destination, source in recipe.module_dirs.items():
            _copy_writable(module_roots[0] / source, output_dir / destination)
        for record in ("go.mod", "go.sum"):  # the exact dependency set, for the curious
            if (module_dir / record).exists():
                shutil.copy2(module_dir / record, output_dir / record)
        (output_dir / "build.json").write_text(json.dumps({
            "tool": recipe.name,
            "version": recipe.version,
            "fingerprint": recipe.fingerprint(),
            "modules": list(recipe.modules),
            "binaries": dict(recipe.binaries),
            "ldflags": ldflags,
            "version_output": versions_seen,
            "built_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }, indent=2) + "\n")

        destination = _install_dir(recipe)
        if destination.exists():  # a stale entry: move it aside first, drop it after
            os.rename(destination, staging / "stale")
        os.rename(output_dir, destination)
        return _binary_paths(recipe)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_module(recipe: Recipe, module_dir: Path) -> tuple[list, list, list]:
    """Steps 1-2: download the recipe's modules and write the throwaway module's go.mod and go.sum in
    ``module_dir``. Returns the modules' folders, release times and short commits."""
    upstream, upstream_sums, release_times, commits, module_roots = [], [], [], [], []
    for module in recipe.modules:
        downloaded = _download(recipe.name, module, recipe.version, cwd=module_dir)
        module_roots.append(Path(downloaded["Dir"]))
        edit_json = ["go", "mod", "edit", "-json", downloaded["GoMod"]]
        upstream.append(json.loads(_run(recipe.name, edit_json, cwd=module_dir)))
        info = json.loads(Path(downloaded["Info"]).read_text())
        release_times.append(info["Time"])
        commits.append(short_commit(info))
        upstream_go_sum = Path(downloaded["Dir"]) / "go.sum"
        if upstream_go_sum.is_file():
            upstream_sums.append(upstream_go_sum.read_text())

    (module_dir / "go.mod").write_text(render_go_mod(
        recipe.name,
        newest_go_version(upstream),
        {module: recipe.version for module in recipe.modules},
        rewrite_replaces(upstream, recipe.version, recipe.sibling_version) + list(recipe.extra_replaces),
    ))
    # The upstream go.sum vouches for its dependencies: without it the go command asks
    # the checksum database, which here lacks some pseudo-versions (404).
    (module_dir / "go.sum").write_text(merge_go_sums(upstream_sums))
    return module_roots, release_times, commits


def go_executable_name(package: str) -> str:
    """The file ``go build -o DIR/`` writes a main package to: the import path's last element, or the one before
    a major-version suffix (``go.etcd.io/etcd/etcdctl/v3`` -> ``etcdctl``; cmd/go/internal/load DefaultExecName)."""
    parent, last = package.rpartition("/")[::2]
    if parent and len(last) >= 2 and last[0] == "v" and last[1:].isdigit() and last[1] != "0" and last != "v1":
        return parent.rpartition("/")[2]
    return last


def build_groups(recipe: Recipe) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    """The recipe's binaries as go commands: ``[(tags, {binary: package})]``, one per set of build tags (the tags
    apply to every package of a go command), in recipe order; a group never holds two packages that ``go build``
    would write to the same file name."""
    groups: list[tuple[tuple[str, ...], dict[str, str]]] = []
    for binary, package in recipe.binaries.items():
        tags = tuple(recipe.build_tags.get(binary, ()))
        home = next((group for group_tags, group in groups if group_tags == tags and go_executable_name(package)
                     not in {go_executable_name(other) for other in group.values()}), None)
        if home is None:
            home = {}
            groups.append((tags, home))
        home[binary] = package
    return groups


def _tags_args(tags: Sequence[str]) -> list[str]:
    return ["-tags", ",".join(tags)] if tags else []


def _tags_flag(recipe: Recipe, binary: str) -> list[str]:
    return _tags_args(recipe.build_tags.get(binary, ()))


def prefetch(recipe: Recipe) -> None:
    """Download into the Go module cache every module the build of ``recipe`` reads, compiling nothing:
    ``go list -deps`` of its packages in a throwaway copy of its module (network, little CPU). No tool lock:
    the Go module cache takes concurrent go commands (it locks each module it extracts), and the build,
    under its lock, finds them there or downloads them itself."""
    with tempfile.TemporaryDirectory(prefix=f"cilium-eks-prefetch-{recipe.name}-") as scratch:
        _write_module(recipe, Path(scratch))
        for binary, package in recipe.binaries.items():
            _run(recipe.name, ["go", "list", "-deps", *_tags_flag(recipe, binary), package], cwd=Path(scratch))


@contextlib.contextmanager
def _prefetching(recipes: Sequence[Recipe]) -> Iterator[None]:
    """Prefetch ``recipes`` one after another in a thread while the body builds; a prefetch that fails only
    says so (the build downloads, and reports, by itself). Leaving waits for the thread: no go command is
    left behind."""
    leaving = threading.Event()

    def run() -> None:
        for recipe in recipes:
            if leaving.is_set():
                return
            try:
                prefetch(recipe)
            except GoBuildError as exc:
                print(f"{recipe.name} {recipe.version}: prefetch failed, its build downloads itself: "
                      f"{str(exc).splitlines()[0]}", file=sys.stderr, flush=True)

    thread = threading.Thread(target=run, name="go-prefetch", daemon=True)
    if recipes:
        thread.start()
    try:
        yield
    finally:
        leaving.set()
        if recipes:
            thread.join()


# --- public API ------------------------------------------------------------------------

def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"no Go tool named {name!r}; known: {', '.join(RECIPES)}") from None


def unavailable_reason(name: str) -> str | None:
    """Why a tool cannot be built here (for ``pytest.skip``), or None."""
    return get_recipe(name).unavailable


def ensure(name: str) -> dict[str, Path]:
    """Binaries of one tool, built first if missing from the cache: ``{binary: path}``."""
    tool = get_recipe(name)
    if tool.unavailable:
        raise ToolUnavailable(f"{name}: {tool.unavailable}")
    label = f"{tool.name} {tool.version}"
    paths = _cached(tool)
    if paths:
        print(f"{label}: cached", flush=True)
        return paths
    with _lock(tool):
        paths = _cached(tool)  # another process may have built it meanwhile
        if paths:
            print(f"{label}: cached", flush=True)
            return paths
        # Progress note for long builds; the one-line summary goes to stdout below.
        print(f"{label}: building {', '.join(tool.binaries)} from {', '.join(tool.modules)} ...",
              file=sys.stderr, flush=True)
        started = time.monotonic()
        paths = _build(tool)
    print(f"{label}: built {', '.join(tool.binaries)} in {time.monotonic() - started:.1f}s", flush=True)
    return paths


def ensure_all(names: Iterable[str] | None = None) -> dict[str, dict[str, Path]]:
    """Build every missing tool (all recipes when ``names`` is None, skipping the
    unavailable ones with a printed reason; named unavailable tools raise)."""
    if names is None:
        selected = list(RECIPES)
    else:
        selected = list(dict.fromkeys(names))
        for name in selected:
            get_recipe(name)  # fail on a typo before building anything
    wanted = []
    for name in selected:
        if names is None and RECIPES[name].unavailable:
            print(f"{name}: skipped, {RECIPES[name].unavailable}", flush=True)
            continue
        if names is None and RECIPES[name].on_demand:
            print(f"{name}: built on first use (`python -m eks_sandbox build --only {name}`)", flush=True)
            continue
        wanted.append(name)
    missing = [RECIPES[name] for name in wanted if not RECIPES[name].unavailable and not _cached(RECIPES[name])]
    with _prefetching(missing[1:]):  # the first one's build downloads right away
        return {name: ensure(name) for name in wanted}


def main_build(argv: Sequence[str] | None = None) -> int:
    """``python -m eks_sandbox build [--only NAME ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m eks_sandbox build",
        description="Build the platform's Go tools at their pinned versions into "
        f"{cache.cache_root() / 'tools'} (only what is missing).",
    )
    parser.add_argument(
        "--only", metavar="NAME", action="append", choices=list(RECIPES),
        help=f"build only this tool (repeatable): {', '.join(RECIPES)}",
    )
    args = parser.parse_args(argv)
    try:
        ensure_all(args.only)
    except (GoBuildError, ToolUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
