# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cli_tools: version parsing on recorded outputs, release URLs, the Go throwaway-module helpers."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cli_tools
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import ValidationError

RECORDINGS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "recordings", "tools")


def recording(name):
    with open(os.path.join(RECORDINGS, name)) as handle:
        return handle.read()


@pytest.mark.parametrize("tool, name, expected", [
    ("helm", "helm-3.19.5-release-version.txt", "v3.19.5"),
    ("helm", "helm-3.19.0-release-version.txt", "v3.19.0"),
    ("helm", "helm-3.19.5-gobuild-version.txt", "v3.19.5"),
    ("helm", "helm-3.19.5-gobuild-version-short.txt", "v3.19.5"),
    ("kubectl", "kubectl-1.34.4-gobuild-version-client.json", "v1.34.4"),
    ("kubectl", "kubectl-1.34.4-gobuild-version-client.txt", "v1.34.4"),
    ("kubectl", "kubectl-1.34.1-release-version-client.txt", "v1.34.1"),
    ("kubectl", "kubectl-1.17.0-release-version-client.txt", "v1.17.0"),
    ("eksctl", "eksctl-0.215.0-version.txt", "v0.215.0"),
    ("eksctl", "eksctl-0.225.0-version.txt", "v0.225.0"),
    ("cilium", "cilium-cli-0.18.7-release-version.txt", "v0.18.7"),
    ("cilium", "cilium-cli-0.18.9-release-version.txt", "v0.18.9"),
    ("cilium", "cilium-cli-main-gobuild-version-client.txt", "v1.20.0-pre.1.0.20260419120955-62bccdec3fb9"),
    ("aws-iam-authenticator", "aws-iam-authenticator-0.5.0-version.json", "v0.5.0"),
    ("aws-iam-authenticator", "aws-iam-authenticator-0.5.3-version.json", None),  # "unversioned"
])
def test_reported_version_on_recorded_outputs(tool, name, expected):
    assert cli_tools.reported_version(tool, recording(name)) == expected


def test_every_recording_is_covered_and_listed_in_sources():
    sources = recording("SOURCES.md")
    files = [name for name in os.listdir(RECORDINGS) if name != "SOURCES.md"]
    assert files
    for name in files:
        assert "`%s`" % name in sources, name


@pytest.mark.parametrize("tool, output, expected", [
    ("helm", "v3.19.5+g4a19a5b\n", "v3.19.5"),
    ("eksctl", "0.226.0-dev+7d1d2a0d1.20260301T100000\n", "v0.226.0-dev"),
    ("eksctl", '{"Version":"0.225.0","PreReleaseID":"","Metadata":{"BuildDate":"","GitCommit":"abc"}}', "v0.225.0"),
    ("aws-iam-authenticator", '{"Version":"0.7.8","Commit":"0a1b2c3d"}\n', "v0.7.8"),
    ("aws-iam-authenticator", "Version: 0.7.8\n", "v0.7.8"),
    ("cilium", "cilium-cli: v0.19.7 compiled with go1.25.5 on linux/amd64\n", "v0.19.7"),
    ("kubectl", "", None),
    ("helm", "Error: unknown flag: --short\n", None),
    ("cilium", "cilium image (default): v1.19.1\n", None),  # the image line is not the CLI's version
])
def test_reported_version_edge_cases(tool, output, expected):
    assert cli_tools.reported_version(tool, output) == expected


def test_reported_version_rejects_unknown_tool():
    with pytest.raises(ValueError, match="kubeadm"):
        cli_tools.reported_version("kubeadm", "v1.34.4")


@pytest.mark.parametrize("installed, wanted, match", [
    ("v3.19.5", "3.19.5", True),
    ("v3.19.5+g4a19a5b", "v3.19.5", True),
    ("v3.19.5", "v3.19.6", False),
    ("v0.226.0-dev", "v0.226.0", False),
    (None, "v1.0.0", False),
    ("v1.0.0", "latest", False),
])
def test_versions_match(installed, wanted, match):
    assert cli_tools.versions_match(installed, wanted) is match


@pytest.mark.parametrize("tool, version, os_name, arch, url, checksum_url, member", [
    ("eksctl", "v0.225.0", "linux", "amd64",
     "https://github.com/eksctl-io/eksctl/releases/download/v0.225.0/eksctl_Linux_amd64.tar.gz",
     "https://github.com/eksctl-io/eksctl/releases/download/v0.225.0/eksctl_checksums.txt", "eksctl"),
    ("eksctl", "0.225.0", "darwin", "arm64",
     "https://github.com/eksctl-io/eksctl/releases/download/v0.225.0/eksctl_Darwin_arm64.tar.gz",
     "https://github.com/eksctl-io/eksctl/releases/download/v0.225.0/eksctl_checksums.txt", "eksctl"),
    ("kubectl", "v1.34.4", "linux", "arm64",
     "https://dl.k8s.io/release/v1.34.4/bin/linux/arm64/kubectl",
     "https://dl.k8s.io/release/v1.34.4/bin/linux/arm64/kubectl.sha256", None),
    ("helm", "3.19.5", "linux", "amd64",
     "https://get.helm.sh/helm-v3.19.5-linux-amd64.tar.gz",
     "https://get.helm.sh/helm-v3.19.5-linux-amd64.tar.gz.sha256sum", "linux-amd64/helm"),
    ("cilium", "v0.19.7", "linux", "amd64",
     "https://github.com/cilium/cilium-cli/releases/download/v0.19.7/cilium-linux-amd64.tar.gz",
     "https://github.com/cilium/cilium-cli/releases/download/v0.19.7/cilium-linux-amd64.tar.gz.sha256sum", "cilium"),
    ("aws-iam-authenticator", "v0.7.8", "linux", "amd64",
     "https://github.com/kubernetes-sigs/aws-iam-authenticator/releases/download/v0.7.8/"
     "aws-iam-authenticator_0.7.8_linux_amd64",
     "https://github.com/kubernetes-sigs/aws-iam-authenticator/releases/download/v0.7.8/"
     "authenticator_0.7.8_checksums.txt", None),
])
def test_release_asset_official_layout(tool, version, os_name, arch, url, checksum_url, member):
    asset = cli_tools.release_asset(tool, version, os_name, arch)
    assert asset["url"] == url
    assert asset["checksum_url"] == checksum_url
    assert asset["member"] == member
    assert asset["filename"] == url.rsplit("/", 1)[-1]


def test_release_asset_mirror_base_url():
    asset = cli_tools.release_asset("helm", "v3.19.5", "linux", "amd64", base_url="https://mirror.example/helm/")
    assert asset["url"] == "https://mirror.example/helm/helm-v3.19.5-linux-amd64.tar.gz"


@pytest.mark.parametrize("kwargs, name", [
    (dict(tool="helm", version="latest", os_name="linux", arch="amd64"), "version"),
    (dict(tool="helm", version="v3.19.5", os_name="windows", arch="amd64"), "os"),
    (dict(tool="helm", version="v3.19.5", os_name="linux", arch="s390x"), "arch"),
    (dict(tool="kubeadm", version="v1.34.4", os_name="linux", arch="amd64"), "tool"),
])
def test_release_asset_rejects_bad_input(kwargs, name):
    with pytest.raises(ValidationError) as err:
        cli_tools.release_asset(**kwargs)
    assert err.value.name == name


def _script(path, text):
    path.write_text("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_tools_report_reads_installed_versions(tmp_path):
    _script(tmp_path / "helm", "v3.19.5+g4a19a5b")
    _script(tmp_path / "eksctl", "0.215.0")
    (tmp_path / "cilium").write_bytes(b"\x7fELF truncated")
    (tmp_path / "cilium").chmod(0o755)
    report = cli_tools.tools_report(str(tmp_path), ["helm", "eksctl", "cilium", "kubectl"],
                                    versions={"helm": "v3.19.5", "eksctl": "v0.225.0", "cilium": "v0.19.7"},
                                    download_base_urls={}, os_name="linux", arch="amd64")
    tools = report["tools"]
    assert report["changed"] is False
    assert tools["helm"]["up_to_date"] is True and tools["helm"]["version"] == "v3.19.5"
    assert tools["eksctl"]["up_to_date"] is False and tools["eksctl"]["version"] == "v0.215.0"
    assert tools["cilium"]["installed"] is True and tools["cilium"]["version"] is None
    assert tools["kubectl"]["installed"] is False and tools["kubectl"]["wanted"] is None
    assert tools["kubectl"]["up_to_date"] is False and "download" not in tools["kubectl"]
    assert tools["eksctl"]["download"]["url"].endswith("/v0.225.0/eksctl_Linux_amd64.tar.gz")


def test_tools_report_no_download_for_unknown_arch(tmp_path):
    report = cli_tools.tools_report(str(tmp_path), ["helm"], versions={"helm": "v3.19.5"},
                                    download_base_urls={}, os_name="linux", arch="s390x")
    assert report["tools"]["helm"]["download"] is None


def test_tools_report_rejects_bad_version(tmp_path):
    with pytest.raises(ValidationError, match="versions.helm"):
        cli_tools.tools_report(str(tmp_path), ["helm"], versions={"helm": "latest"})


def test_go_build_tool_skips_a_tool_at_the_version(tmp_path):
    _script(tmp_path / "helm", "v3.19.5")
    result = cli_tools.go_build_tool({"name": "helm", "version": "3.19.5", "bin_dir": str(tmp_path)})
    assert result["changed"] is False
    assert result["module"] == "helm.sh/helm/v3@v3.19.5"


def test_go_build_tool_check_mode_builds_nothing(tmp_path):
    _script(tmp_path / "helm", "v3.19.4")
    result = cli_tools.go_build_tool({"name": "helm", "version": "v3.19.5", "bin_dir": str(tmp_path)},
                                     check_mode=True)
    assert result["changed"] is True
    assert result["previous_version"] == "v3.19.4"
    assert "v3.19.4" in (tmp_path / "helm").read_text()


def test_go_build_tool_rejects_bad_version(tmp_path):
    with pytest.raises(ValidationError, match="version"):
        cli_tools.go_build_tool({"name": "helm", "version": "main", "bin_dir": str(tmp_path)})


# --- the throwaway-module helpers ---------------------------------------------------------------

KUBERNETES_GO_MOD = {
    "Module": {"Path": "k8s.io/kubernetes"},
    "Go": "1.24.0",
    "Require": [{"Path": "k8s.io/api", "Version": "v0.0.0"}, {"Path": "k8s.io/client-go", "Version": "v0.0.0"}],
    "Replace": [
        {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
        {"Old": {"Path": "k8s.io/client-go"}, "New": {"Path": "./staging/src/k8s.io/client-go"}},
        {"Old": {"Path": "k8s.io/not-required"}, "New": {"Path": "./FORBIDDEN_DEPENDENCY"}},
        {"Old": {"Path": "github.com/fork/me", "Version": "v1.0.0"},
         "New": {"Path": "github.com/fork/me2", "Version": "v1.0.1"}},
    ],
}


def test_rewrite_replaces_turns_local_siblings_into_published_modules():
    replaces = cli_tools.rewrite_replaces([KUBERNETES_GO_MOD], "v1.34.4", cli_tools.kubernetes_staging_version("v1.34.4"))
    assert replaces == [
        ("github.com/fork/me@v1.0.0", "github.com/fork/me2@v1.0.1"),
        ("k8s.io/api", "k8s.io/api@v0.34.4"),
        ("k8s.io/client-go", "k8s.io/client-go@v0.34.4"),
    ]


def test_render_go_mod():
    text = cli_tools.render_go_mod("kubectl", "1.24.0", {"k8s.io/kubernetes": "v1.34.4"},
                                   [("k8s.io/api", "k8s.io/api@v0.34.4")])
    assert text.splitlines()[0] == "module cilium-eks.local/kubectl"
    assert "\tk8s.io/kubernetes v1.34.4" in text
    assert "\tk8s.io/api => k8s.io/api v0.34.4" in text


def test_compose_ldflags_sorted_and_quoted():
    flags = cli_tools.compose_ldflags({"b.x": "1", "a.y": "with space", "c.empty": ""})
    assert flags == "-s -w -X 'a.y=with space' -X b.x=1 -X c.empty="
    with pytest.raises(ValueError):
        cli_tools.compose_ldflags({"a": "it's"})


def test_helm_ldflags_follow_its_client_go():
    upstream = [{"Require": [{"Path": "k8s.io/client-go", "Version": "v0.34.2"}]}]
    flags = cli_tools.GO_RECIPES["helm"].ldflags("v3.19.5", upstream, "2026-01-15T19:33:48Z")
    assert flags["helm.sh/helm/v3/internal/version.version"] == "v3.19.5"
    assert flags["helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor"] == "34"


def test_kubectl_ldflags_stamp_both_version_packages():
    flags = cli_tools.GO_RECIPES["kubectl"].ldflags("v1.34.4", [], "2026-02-10T12:53:36Z")
    assert flags["k8s.io/client-go/pkg/version.gitVersion"] == "v1.34.4"
    assert flags["k8s.io/component-base/version.gitMinor"] == "34"
    assert flags["k8s.io/component-base/version.buildDate"] == "2026-02-10T12:53:36Z"


@pytest.mark.parametrize("info_time, expected", [
    ("2026-02-10T12:53:36Z", "2026-02-10T12:53:36Z"),
    ("2025-10-01T03:20:16.123456Z", "2025-10-01T03:20:16Z"),
])
def test_build_date(info_time, expected):
    assert cli_tools.build_date(info_time) == expected


def test_merge_go_sums_and_newest_go():
    assert cli_tools.merge_go_sums(["b h1:x\na h1:y\n", "a h1:y\n"]) == "a h1:y\nb h1:x\n"
    assert cli_tools.newest_go_version([{"Go": "1.22.0"}, {"Go": "1.24"}, {}]) == "1.24"


def test_go_env_forces_module_mode():
    env = cli_tools.go_env(goproxy="http://127.0.0.1:1", goflags="-mod=vendor -trimpath", gosumdb="off")
    assert env["GOFLAGS"] == "-trimpath -mod=mod -buildvcs=false"
    assert env["GOPROXY"] == "http://127.0.0.1:1" and env["GOSUMDB"] == "off"
    assert env["GOTOOLCHAIN"] == "local" and env["CGO_ENABLED"] == "0"


def test_module_unavailable_error_says_what_to_do():
    err = cli_tools.GoModuleUnavailableError("cilium", "github.com/cilium/cilium-cli", "v0.19.7", None,
                                             "403 Forbidden.")
    assert "does not serve github.com/cilium/cilium-cli@v0.19.7: 403 Forbidden. Use the download" in err.msg
    assert json.dumps(err.to_fail_kwargs())
