"""The real Cilium charts and CRDs fetched by eks_sandbox.charts (from the cache; fetched once if missing)."""

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from eks_sandbox import cache, charts, versions

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
VERSIONS = sorted(versions.CILIUM_CHARTS.values(), key=lambda v: tuple(map(int, v.split("."))))
MINORS = [f"1.{m}" for m in range(14, 21)]


def minor_of(v):
    return tuple(map(int, v.split(".")[:2]))


@pytest.fixture(scope="module", autouse=True)
def fetched():
    return charts.ensure_all()


def tar_members(v):
    with tarfile.open(charts.ensure_chart(v)) as tar:
        return {m.name: m for m in tar.getmembers()}


def tar_read(v, name):
    with tarfile.open(charts.ensure_chart(v)) as tar:
        return tar.extractfile(name).read()


def test_every_minor_from_1_14_is_pinned():
    assert "1.13" in versions.CILIUM_CHARTS
    for minor in MINORS:
        assert versions.CILIUM_CHARTS[minor].startswith(minor + ".")


@pytest.mark.parametrize("v", VERSIONS)
def test_tarball_is_a_helm_chart_of_that_release(v):
    tgz = charts.ensure_chart(v)
    assert tgz.name == f"cilium-{v}.tgz" and tgz.parent.name == v
    members = tar_members(v)
    assert all(name.startswith("cilium/") for name in members)
    assert all(m.isfile() and m.mode == 0o644 for m in members.values())
    assert list(members)[:2] == ["cilium/Chart.yaml", "cilium/values.yaml"]
    meta = yaml.safe_load(tar_read(v, "cilium/Chart.yaml"))
    assert meta["name"] == "cilium"
    assert str(meta["version"]) == v
    assert str(meta["appVersion"]) == v


@pytest.mark.parametrize("v", VERSIONS)
def test_agent_daemonset_template_exists(v):
    names = tar_members(v)
    assert "cilium/templates/cilium-agent/daemonset.yaml" in names or "cilium/templates/daemonset.yaml" in names
    assert "cilium/templates/cilium-operator/deployment.yaml" in names


@pytest.mark.parametrize("v", VERSIONS)
def test_unpacked_chart_matches_tarball(v):
    chart_dir = charts.ensure_chart_dir(v)
    members = tar_members(v)
    on_disk = {f"cilium/{p.relative_to(chart_dir).as_posix()}" for p in chart_dir.rglob("*") if p.is_file()}
    assert on_disk == set(members)
    assert (chart_dir / "Chart.yaml").read_bytes() == tar_read(v, "cilium/Chart.yaml")


@pytest.mark.parametrize("v", VERSIONS)
def test_crds_hold_only_custom_resource_definitions(v):
    crds = charts.ensure_crds(v)
    files = {p.stem: p for p in crds.glob("*.yaml")}
    assert {
        "ciliumnodes.cilium.io",
        "ciliumendpoints.cilium.io",
        "ciliumidentities.cilium.io",
        "ciliumnetworkpolicies.cilium.io",
    } <= set(files)
    for name, path in files.items():
        docs = [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]
        assert len(docs) == 1
        assert docs[0]["kind"] == "CustomResourceDefinition"
        assert docs[0]["metadata"]["name"] == name
        assert docs[0]["spec"]["group"] == "cilium.io"


@pytest.mark.parametrize("v", VERSIONS)
def test_chart_info(v):
    info = charts.chart_info(v)
    assert info["version"] == info["appVersion"] == v
    assert info["image_tag"] == info["operator_image_tag"] == f"v{v}"
    # values.schema.json arrived with Cilium 1.16
    assert info["has_values_schema"] == (minor_of(v) >= (1, 16))
    assert "ciliumnodes.cilium.io" in info["crds"]


def test_minor_resolves_to_pinned_patch():
    assert charts.resolve("1.20") == versions.CILIUM_CHARTS["1.20"]
    assert charts.resolve("v1.13.4") == "1.13.4"
    with pytest.raises(charts.ChartFetchError, match="1.2"):
        charts.resolve("1.2")


def test_warm_calls_run_nothing(monkeypatch, capsys):
    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"warm call ran {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    charts.ensure_all()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"cilium {v}: cached" for v in versions.CILIUM_CHARTS.values()]


def test_incomplete_folder_is_not_taken_as_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("CILIUM_EKS_CACHE", str(tmp_path))
    v = VERSIONS[-1]
    partial = cache.charts_dir() / v
    (partial / "crds").mkdir(parents=True)
    (partial / f"cilium-{v}.tgz").write_bytes(b"")
    assert not charts.is_cached(v)  # no fetch.json: an interrupted fetch never looks complete


def test_no_absolute_paths_in_fetch_records():
    home = str(Path.home())
    for v in VERSIONS:
        text = (charts.version_dir(v) / charts.MARKER).read_text()
        assert home not in text and str(cache.cache_root()) not in text


# ---------------------------------------------------------------- with helm, when built


def find_helm():
    if os.environ.get("CILIUM_EKS_HELM"):  # a helm binary to use instead of the platform's
        return Path(os.environ["CILIUM_EKS_HELM"])
    found = sorted(cache.cache_root().glob("tools/helm-*/bin/helm"))
    return found[-1] if found else None


HELM = find_helm()
needs_helm = pytest.mark.skipif(HELM is None, reason="helm not built yet (python -m eks_sandbox build)")


def helm(*args):
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=300, check=False)


def template(v, *args):
    chart = str(charts.ensure_chart(v))
    return helm("template", "cilium", chart, "--namespace", "kube-system", "--kube-version", "1.30.0", *args)


def config_map(rendered):
    for doc in yaml.load_all(rendered, Loader=LOADER):
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "cilium-config":
            return doc["data"]
    raise AssertionError("no cilium-config ConfigMap rendered")


@needs_helm
@pytest.mark.parametrize("v", VERSIONS)
def test_helm_lint_passes(v):
    res = helm("lint", str(charts.ensure_chart(v)))
    assert res.returncode == 0, res.stdout + res.stderr


@needs_helm
@pytest.mark.parametrize("v", VERSIONS)
def test_helm_template_renders_agent_and_operator(v):
    res = template(v)
    assert res.returncode == 0, res.stderr
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.load_all(res.stdout, Loader=LOADER) if d}
    assert ("DaemonSet", "cilium") in kinds
    assert ("Deployment", "cilium-operator") in kinds
    assert ("ConfigMap", "cilium-config") in kinds


# The facts below are what the collection must live with when it renders values.


@needs_helm
@pytest.mark.parametrize("v", VERSIONS)
def test_tunnel_value_is_refused_from_1_15(v):
    res = template(v, "--set", "tunnel=disabled")
    if minor_of(v) >= (1, 15):
        assert res.returncode != 0
        assert "tunnel was deprecated in v1.14 and has been removed in v1.15" in res.stderr
    else:
        assert res.returncode == 0, res.stderr


@needs_helm
@pytest.mark.parametrize("v", VERSIONS)
def test_kube_proxy_replacement_strict_is_refused_from_1_16(v):
    res = template(v, "--set", "kubeProxyReplacement=strict")
    if minor_of(v) >= (1, 16):
        assert res.returncode != 0
        assert "kubeProxyReplacement must be explicitly set to a valid value (true or false)" in res.stderr
    else:
        assert res.returncode == 0, res.stderr


@needs_helm
@pytest.mark.parametrize("v", [v for v in VERSIONS if minor_of(v) >= (1, 16)])
def test_values_schema_checks_types_only(v):
    wrong_type = template(v, "--set-json", "routingMode=5")
    assert wrong_type.returncode != 0
    assert "don't meet the specifications of the schema" in wrong_type.stderr
    assert "/routingMode" in wrong_type.stderr
    # ...but not the allowed strings, nor unknown keys: those render as they are.
    bogus = template(v, "--set", "routingMode=bogus", "--set", "noSuchKey=1")
    assert bogus.returncode == 0, bogus.stderr
    assert config_map(bogus.stdout)["routing-mode"] == "bogus"
