"""The real Cilium Helm chart and CRD manifests, fetched from the Go module proxy.

The chart repository is not reachable offline, but every Cilium release is also the Go
module ``github.com/cilium/cilium``, and its zip carries the chart source
(``install/kubernetes/cilium``) and the CRDs (``pkg/k8s/apis/cilium.io/client/crds``).
For each version in ``versions.CILIUM_CHARTS`` this module downloads that zip with
``go mod download`` (into a throw-away module cache) and keeps, under
``<cache>/cilium/<version>/``::

    cilium-<version>.tgz   the chart packaged the way ``helm package`` lays it out
    cilium/                 the same files unpacked, for reading (like ``helm pull --untar``)
    crds/<name>.yaml        one CustomResourceDefinition per file, e.g. ciliumnodes.cilium.io.yaml
    fetch.json              what was fetched (module hash, sizes, notes); written last

Everything is built in a temporary sibling folder and renamed into place, so a folder
named after a version is always complete; a warm call only looks at the files.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

from . import cache, versions

MODULE = "github.com/cilium/cilium"
CHART_NAME = "cilium"
CHART_SRC = "install/kubernetes/cilium"
CRD_SRC = "pkg/k8s/apis/cilium.io/client/crds"
MARKER = "fetch.json"
GO_TIMEOUT = 900  # seconds for one module download

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: CRDs are big


class ChartFetchError(RuntimeError):
    """A Cilium version could not be fetched or did not look as expected."""


# ---------------------------------------------------------------- public API


def resolve(version: str) -> str:
    """``"1.20"`` -> the pinned patch, ``"v1.20.2"`` -> ``"1.20.2"``."""
    v = version[1:] if version.startswith("v") else version
    v = versions.CILIUM_CHARTS.get(v, v)
    if not _VERSION_RE.match(v):
        raise ChartFetchError(f"cilium {version!r}: not a release version (want X.Y.Z or a minor in CILIUM_CHARTS)")
    return v


def version_dir(version: str) -> Path:
    return cache.charts_dir() / resolve(version)


def is_cached(version: str) -> bool:
    d = version_dir(version)
    v = resolve(version)
    return (d / MARKER).is_file() and (d / f"{CHART_NAME}-{v}.tgz").is_file() and (d / "crds").is_dir()


def ensure_chart(version: str) -> Path:
    """Path of ``cilium-<version>.tgz``, fetching the release first if needed."""
    v = resolve(version)
    return _ensure(v) / f"{CHART_NAME}-{v}.tgz"


def ensure_chart_dir(version: str) -> Path:
    """The unpacked chart (the folder holding Chart.yaml)."""
    return _ensure(resolve(version)) / CHART_NAME


def ensure_crds(version: str) -> Path:
    """Folder with one ``<crd-name>.yaml`` per CustomResourceDefinition of that release."""
    return _ensure(resolve(version)) / "crds"


def ensure_all(out=None) -> dict[str, Path]:
    """Fetch every version of ``CILIUM_CHARTS``; one line per version on ``out`` (stdout)."""
    out = out or sys.stdout
    done = {}
    for v in versions.CILIUM_CHARTS.values():
        done[v] = _ensure(v, out=out)
    return done


def fetch_record(version: str) -> dict:
    """The ``fetch.json`` of a fetched version."""
    return json.loads((_ensure(resolve(version)) / MARKER).read_text())


def chart_info(version: str) -> dict:
    """Facts tests care about, read from the cached chart."""
    chart = ensure_chart_dir(version)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    values = yaml.load((chart / "values.yaml").read_text(), Loader=_YAML_LOADER)
    return {
        "version": str(meta["version"]),
        "appVersion": str(meta.get("appVersion")),
        "kubeVersion": meta.get("kubeVersion"),
        "has_values_schema": (chart / "values.schema.json").is_file(),
        "image_tag": _dig(values, "image", "tag"),
        "operator_image_tag": _dig(values, "operator", "image", "tag"),
        "tgz": str(ensure_chart(version)),
        "chart_dir": str(chart),
        "crds_dir": str(ensure_crds(version)),
        "crds": sorted(p.stem for p in ensure_crds(version).glob("*.yaml")),
        "notes": fetch_record(version).get("notes", []),
    }


def main_charts(argv=None) -> int:
    """``python -m eks_sandbox charts [--version V] [--info]``."""
    ap = argparse.ArgumentParser(
        prog="eks_sandbox charts",
        description="Fetch the real Cilium Helm chart and CRDs for the pinned Cilium versions "
        f"(into {cache.charts_dir()}).",
    )
    ap.add_argument(
        "--version",
        action="append",
        metavar="V",
        help="only this version (X.Y.Z or a minor from CILIUM_CHARTS); repeatable",
    )
    ap.add_argument("--info", action="store_true", help="print chart_info() of each version as JSON")
    args = ap.parse_args(argv)
    try:
        wanted = [resolve(v) for v in args.version] if args.version else list(versions.CILIUM_CHARTS.values())
        for v in wanted:
            _ensure(v, out=sys.stdout)
        if args.info:
            print(json.dumps({v: chart_info(v) for v in wanted}, indent=2))
    except ChartFetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- fetch


def _ensure(v: str, out=None) -> Path:
    final = cache.charts_dir() / v
    if is_cached(v):
        if out:
            print(f"cilium {v}: cached", file=out, flush=True)
        return final
    start = time.monotonic()
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():  # left over by hand or by an older layout: never trust it
        shutil.rmtree(final)
    for stale in final.parent.glob(f".tmp-{v}-*"):  # from an interrupted fetch
        if time.time() - stale.stat().st_mtime > 2 * GO_TIMEOUT:
            _rmtree(stale)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{v}-", dir=final.parent))
    try:
        record = _build(v, staging / "work", staging / "result")
        record["fetch_seconds"] = round(time.monotonic() - start, 1)
        (staging / "result" / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        try:
            os.rename(staging / "result", final)
        except OSError:
            if not is_cached(v):  # someone else finished first and their result is fine otherwise
                raise
    finally:
        _rmtree(staging)
    if out:
        mb = record["module_zip_bytes"] / 1e6
        print(f"cilium {v}: fetched in {record['fetch_seconds']}s (module zip {mb:.1f} MB)", file=out, flush=True)
        for note in record["notes"]:
            print(f"  note: {note}", file=out, flush=True)
    return final


def _build(v: str, work: Path, result: Path) -> dict:
    notes: list[str] = []
    mod = _go_mod_download(v, work, notes)
    src = Path(mod["Dir"])
    chart_src = src / CHART_SRC
    if not (chart_src / "Chart.yaml").is_file():
        raise ChartFetchError(f"cilium {v}: module {MODULE}@v{v} has no {CHART_SRC}/Chart.yaml")
    result.mkdir(parents=True)

    files = _chart_files(chart_src)
    files["Chart.yaml"] = _fix_chart_yaml(v, files["Chart.yaml"], notes)
    mtime = _release_time(mod)
    _write_tgz(result / f"{CHART_NAME}-{v}.tgz", files, mtime)
    for rel, data in files.items():
        dest = result / CHART_NAME / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)

    crds = _extract_crds(v, src, result / "crds", notes)
    return {
        "version": v,
        "module": f"{MODULE}@v{v}",
        "module_sum": mod.get("Sum"),
        "module_zip_bytes": Path(mod["Zip"]).stat().st_size,
        "release_time": mod.get("Time") or _info_time(mod),
        "sumdb_verified": mod["sumdb_verified"],
        "chart_source": CHART_SRC,
        "crd_source": CRD_SRC,
        "crds": crds,
        "notes": notes,
    }


def _go_mod_download(v: str, work: Path, notes: list[str]) -> dict:
    """``go mod download -json`` into a private module cache below ``work``."""
    go = shutil.which("go")
    if not go:
        raise ChartFetchError(f"cilium {v}: the 'go' command is needed to fetch {MODULE}@v{v} and is not on PATH")
    (work / "run").mkdir(parents=True)
    argv = [go, "mod", "download", "-json", f"{MODULE}@v{v}"]
    env = dict(
        os.environ,
        GOFLAGS="-mod=mod -modcacherw",
        GOTOOLCHAIN="local",
        GOMODCACHE=str(work / "gomodcache"),
        GO111MODULE="on",
    )
    mod = _run_go(v, argv, env, work / "run")
    if mod.get("Error") and "verifying" in mod["Error"] and "sum" in mod["Error"]:
        # The proxy serves the module but the checksum database here has no entry for it.
        notes.append(
            f"checksum database has no entry for {MODULE}@v{v}; fetched with GONOSUMDB "
            f"(module hash recorded as module_sum)"
        )
        env["GONOSUMDB"] = ",".join(filter(None, [os.environ.get("GONOSUMDB"), MODULE]))
        mod = _run_go(v, argv, env, work / "run")
        mod["sumdb_verified"] = False
    else:
        mod["sumdb_verified"] = True
    if mod.get("Error") or not mod.get("Dir"):
        raise ChartFetchError(
            f"cilium {v}: `{' '.join(['go'] + argv[1:])}` failed: "
            f"{mod.get('Error') or 'no module directory reported'}"
        )
    return mod


def _run_go(v: str, argv: list[str], env: dict, cwd: Path) -> dict:
    cmd = " ".join(["go"] + argv[1:])
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=GO_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ChartFetchError(f"cilium {v}: `{cmd}` took longer than {GO_TIMEOUT}s") from None
    try:
        mod = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        raise ChartFetchError(
            f"cilium {v}: `{cmd}` printed no JSON (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        ) from None
    if proc.returncode != 0 and not mod.get("Error"):
        mod["Error"] = f"exit {proc.returncode}: {proc.stderr.strip()}"
    return mod


# ---------------------------------------------------------------- chart


def _chart_files(chart_src: Path) -> dict[str, bytes]:
    """The chart's files in ``helm package`` order, minus what ``.helmignore`` excludes.

    Helm writes Chart.yaml, values.yaml, values.schema.json, then templates/, then every
    other file, each group in directory-walk order, with no directory entries. (Checked
    against ``helm package``: same members in the same order; helm re-serialises Chart.yaml,
    here it is kept as written.)
    """
    ignore = _HelmIgnore(chart_src / ".helmignore")
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(chart_src):
        rel_dir = Path(dirpath).relative_to(chart_src)
        dirnames[:] = sorted(d for d in dirnames if not ignore.ignored((rel_dir / d).as_posix(), True))
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            path = Path(dirpath, name)
            if ignore.ignored(rel, False):
                continue
            if path.is_symlink() or not path.is_file():
                raise ChartFetchError(f"chart file {rel} is not a regular file")
            found[rel] = path.read_bytes()

    def order(rel: str):
        head = ["Chart.yaml", "values.yaml", "values.schema.json"]
        group = head.index(rel) if rel in head else (3 if rel.startswith("templates/") else 4)
        return (group, rel.split("/"))

    return {rel: found[rel] for rel in sorted(found, key=order)}


class _HelmIgnore:
    """Helm's .helmignore rules: globs on the base name, or on the path when they hold a '/'."""

    def __init__(self, path: Path):
        lines = path.read_text().splitlines() if path.is_file() else []
        self.rules = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        self.rules.append("templates/.?*")  # helm's built-in default

    def ignored(self, rel: str, is_dir: bool) -> bool:
        for rule in self.rules:
            negate = rule.startswith("!")
            pat = rule[1:] if negate else rule
            must_dir = pat.endswith("/")
            pat = pat.rstrip("/").lstrip("/")
            target = rel if "/" in pat else rel.rsplit("/", 1)[-1]
            hit = fnmatch.fnmatchcase(target, pat) and (is_dir or not must_dir)
            if negate and not hit:
                return True
            if not negate and hit:
                return True
        return False


def _fix_chart_yaml(v: str, data: bytes, notes: list[str]) -> bytes:
    """Check ``version``/``appVersion`` equal the release; set them if the source says otherwise."""
    text = data.decode()
    meta = yaml.safe_load(text)
    if meta.get("name") != CHART_NAME:
        raise ChartFetchError(f"cilium {v}: {CHART_SRC}/Chart.yaml names chart {meta.get('name')!r}")
    for key in ("version", "appVersion"):
        found = str(meta.get(key))
        if found != v:
            notes.append(f"source Chart.yaml has {key}: {found}; packaged copy says {v}")
            text, n = re.subn(rf"(?m)^{key}:.*$", f"{key}: {v}", text)
            if n != 1:
                raise ChartFetchError(f"cilium {v}: cannot set {key} in Chart.yaml (found {n} lines)")
    return text.encode()


def _write_tgz(dest: Path, files: dict[str, bytes], mtime: float) -> None:
    """A gzip'd tar with every file under ``cilium/``, mode 0644, like ``helm package``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{CHART_NAME}/{rel}")
            info.size, info.mode, info.mtime = len(data), 0o644, mtime
            tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=int(mtime)) as gz:
        gz.write(buf.getvalue())


# ---------------------------------------------------------------- CRDs


def _extract_crds(v: str, src: Path, dest: Path, notes: list[str]) -> dict[str, str]:
    """Every CustomResourceDefinition document of the module, one per ``<name>.yaml``.

    All supported releases keep one CRD per file in ``crds/<api-version>/*.yaml``; newer
    ones also hold ``embed.go`` there. Files are copied as they are unless they hold
    other documents too, which are then dropped.
    """
    root = src / CRD_SRC
    if not root.is_dir():
        raise ChartFetchError(f"cilium {v}: module {MODULE}@v{v} has no {CRD_SRC}")
    dest.mkdir(parents=True)
    where: dict[str, str] = {}
    for path in sorted(root.rglob("*.y*ml")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        docs = [d for d in yaml.load_all(text, Loader=_YAML_LOADER) if d]
        crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
        if len(crds) != len(docs):
            notes.append(f"{CRD_SRC}/{rel}: kept {len(crds)} of {len(docs)} documents")
        for doc in crds:
            name = doc["metadata"]["name"]
            if name in where:
                raise ChartFetchError(f"cilium {v}: CRD {name} defined in {where[name]} and {rel}")
            body = text if len(docs) == 1 else "---\n" + yaml.safe_dump(doc, sort_keys=False)
            (dest / f"{name}.yaml").write_text(body)
            where[name] = rel
    if not where:
        raise ChartFetchError(f"cilium {v}: no CustomResourceDefinition found under {CRD_SRC}")
    return where


# ---------------------------------------------------------------- helpers


def _release_time(mod: dict) -> float:
    stamp = mod.get("Time") or _info_time(mod)
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _info_time(mod: dict) -> str | None:
    info = mod.get("Info")
    if info and Path(info).is_file():
        return json.loads(Path(info).read_text()).get("Time")
    return None


def _dig(data, *keys):
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _rmtree(path: Path) -> None:
    def make_writable(func, p, _exc):
        os.chmod(p, 0o700)
        func(p)

    if path.exists():
        shutil.rmtree(path, onerror=make_writable)
