# -*- coding: utf-8 -*-
# Copyright: Contributors to the cloudnet.cilium_eks project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The CLIs this collection drives (eksctl, kubectl, helm, cilium, aws-iam-authenticator).

* ``reported_version(tool, output)``: the version a tool's version command printed (pure, tested on
  recorded outputs).
* ``installed_version(tool, path)``: run that command and parse it (``None`` when the binary is
  missing, does not run or prints something unexpected: the caller reinstalls it).
* ``release_asset(...)``: where the official release of a tool is downloaded from, with the URL of
  the checksum file its project publishes.
* ``go_build(...)``: build a tool from a Go module proxy at a pinned version (see ``GoBuilder``).

Pure stdlib plus the collection's runner; importable without Ansible.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
from datetime import datetime

from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import inputs
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.errors import (
    CiliumEksError,
    CommandError,
    ValidationError,
)
from ansible_collections.cloudnet.cilium_eks.plugins.module_utils.runner import run_command

TOOLS = ("eksctl", "kubectl", "helm", "cilium", "aws-iam-authenticator")

# Arguments that print the version without touching a cluster or the network.
VERSION_ARGS = {
    "eksctl": ("version",),
    "kubectl": ("version", "--client", "-o", "json"),
    "helm": ("version", "--short"),
    "cilium": ("version", "--client"),
    "aws-iam-authenticator": ("version",),
}

VERSION_TIMEOUT = 30

_SEMVER = r"v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)(?:\+[0-9A-Za-z.-]+)?"
_VERSION_RE = re.compile(_SEMVER)  # full match

# Kernel machine names -> Go/release architecture names.
ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
}
OPERATING_SYSTEMS = ("linux", "darwin")


def normalize_version(version):
    """``0.225.0`` / ``v3.19.5+g4a19a5b`` -> ``v0.225.0`` / ``v3.19.5``; ``None`` if not a version."""
    if not isinstance(version, str):
        return None
    match = _VERSION_RE.fullmatch(version.strip())
    if not match:
        return None
    return "v" + match.group(1)


def versions_match(installed, wanted):
    """True when both are versions and equal once normalized (leading ``v`` and build metadata ignored)."""
    left, right = normalize_version(installed), normalize_version(wanted)
    return left is not None and left == right


def _first_version(pattern, text):
    match = re.search(pattern, text, re.MULTILINE)
    return normalize_version(match.group(1)) if match else None


def _parse_json(text):
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


def reported_version(tool, output):
    """The version a tool reported, normalized to ``vX.Y.Z[-pre]``, or ``None``.

    Outputs understood (recorded examples in tests/recordings/tools):

    * eksctl ``version``: ``0.225.0`` (dev builds ``0.226.0-dev+abc.20260101T000000``).
    * kubectl ``version --client -o json``: ``{"clientVersion": {"gitVersion": "v1.34.4", ...}}``; the text
      forms ``Client Version: v1.34.1`` and ``Client Version: version.Info{... GitVersion:"v1.17.0" ...}``.
    * helm ``version --short``: ``v3.19.5+g4a19a5b`` or ``v3.19.5``; ``version``:
      ``version.BuildInfo{Version:"v3.19.5", ...}``.
    * cilium ``version --client``: ``cilium-cli: v0.19.7 compiled with go1.25.5 on linux/amd64``.
    * aws-iam-authenticator ``version``: ``{"Version":"0.7.8","Commit":"..."}`` (``unversioned`` -> None).
    """
    if tool not in TOOLS:
        raise ValueError("unknown tool %r; known: %s" % (tool, ", ".join(TOOLS)))
    text = (output or "").strip()
    if not text:
        return None
    if tool == "kubectl":
        doc = _parse_json(text)
        if isinstance(doc, dict) and isinstance(doc.get("clientVersion"), dict):
            return normalize_version(doc["clientVersion"].get("gitVersion"))
        return (_first_version(r'GitVersion:"([^"]+)"', text)
                or _first_version(r"^Client Version:\s*(v\S+)\s*$", text))
    if tool == "helm":
        return (_first_version(r'Version:"([^"]+)"', text)
                or _first_version(r"^(v\d+\.\d+\.\d+\S*)\s*$", text))
    if tool == "cilium":
        return _first_version(r"^cilium-cli:\s+(\S+)", text)
    if tool == "aws-iam-authenticator":
        doc = _parse_json(text)
        if isinstance(doc, dict):
            return normalize_version(doc.get("Version"))
        return _first_version(r"^Version:\s*(\S+)\s*$", text)
    # eksctl: the version alone on the first line
    first = text.splitlines()[0].strip()
    version = normalize_version(first)
    if version is None:
        doc = _parse_json(text)
        if isinstance(doc, dict) and doc.get("Version"):
            pre = doc.get("PreReleaseID") or ""
            version = normalize_version(doc["Version"] + ("-" + pre if pre else ""))
    return version


def installed_version(tool, path, timeout=VERSION_TIMEOUT):
    """``(version, output)`` of the binary at ``path``; version ``None`` when it is missing or unusable."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return None, ""
    try:
        result = run_command([path] + list(VERSION_ARGS[tool]), check=False, timeout=timeout)
    except CiliumEksError as err:  # cannot start (wrong architecture, truncated file) or hangs
        return None, str(err)
    output = result.stdout if result.stdout.strip() else result.stderr
    if result.rc != 0:
        return None, output
    return reported_version(tool, output), output


def host_platform():
    """``(os, arch)`` of this machine in release names (``linux``, ``amd64``); arch ``None`` if unknown."""
    return platform.system().lower(), ARCHITECTURES.get(platform.machine().lower())


# --- official release downloads --------------------------------------------------------------------

DEFAULT_BASE_URLS = {
    "eksctl": "https://github.com/eksctl-io/eksctl/releases/download",
    "kubectl": "https://dl.k8s.io/release",
    "helm": "https://get.helm.sh",
    "cilium": "https://github.com/cilium/cilium-cli/releases/download",
    "aws-iam-authenticator": "https://github.com/kubernetes-sigs/aws-iam-authenticator/releases/download",
}


def release_asset(tool, version, os_name, arch, base_url=None):
    """Where the official release of ``tool`` ``version`` for ``os_name``/``arch`` is published.

    Returns a dict: ``url`` (the file), ``checksum_url`` (the SHA-256 file the project publishes next
    to it; ``ansible.builtin.get_url`` reads both formats: a bare digest, or ``<digest>  <file>`` lines),
    ``filename`` (last part of ``url``), ``member`` (path of the binary inside the archive, ``None`` when
    the file is the binary itself) and ``binary`` (its installed name).
    """
    if tool not in TOOLS:
        raise ValidationError("tool", "unknown tool", accepted=TOOLS, value=tool)
    if os_name not in OPERATING_SYSTEMS:
        raise ValidationError("os", "no official %s release for this operating system" % tool,
                              accepted=OPERATING_SYSTEMS, value=os_name)
    if arch not in ("amd64", "arm64"):
        raise ValidationError("arch", "no official %s release for this architecture" % tool,
                              accepted=["amd64", "arm64"], value=arch)
    tag = normalize_version(version)
    if tag is None:
        raise ValidationError("version", "not a version of %s" % tool, accepted="vX.Y.Z, e.g. v1.34.4",
                              value=version)
    bare = tag[1:]
    base = (base_url or DEFAULT_BASE_URLS[tool]).rstrip("/")
    member = None
    if tool == "eksctl":
        # goreleaser names: eksctl_Linux_amd64.tar.gz, one eksctl_checksums.txt per release
        path = "%s/eksctl_%s_%s.tar.gz" % (tag, os_name.capitalize(), arch)
        checksum = "%s/eksctl_checksums.txt" % tag
        member = "eksctl"
    elif tool == "kubectl":
        path = "%s/bin/%s/%s/kubectl" % (tag, os_name, arch)
        checksum = path + ".sha256"  # the bare digest
    elif tool == "helm":
        path = "helm-%s-%s-%s.tar.gz" % (tag, os_name, arch)
        checksum = path + ".sha256sum"  # "<digest>  helm-v3.19.5-linux-amd64.tar.gz"
        member = "%s-%s/helm" % (os_name, arch)
    elif tool == "cilium":
        path = "%s/cilium-%s-%s.tar.gz" % (tag, os_name, arch)
        checksum = path + ".sha256sum"
        member = "cilium"
    else:
        # goreleaser, project "authenticator", binary archives
        path = "%s/aws-iam-authenticator_%s_%s_%s" % (tag, bare, os_name, arch)
        checksum = "%s/authenticator_%s_checksums.txt" % (tag, bare)
    url = "%s/%s" % (base, path)
    return {
        "url": url,
        "checksum_url": "%s/%s" % (base, checksum),
        "filename": url.rsplit("/", 1)[-1],
        "member": member,
        "binary": tool,
    }


# --- Go module proxy builds -------------------------------------------------------------------------

class GoRecipe(object):
    """How one tool is built: module, main package and the ``-X`` version stamps."""

    def __init__(self, module, package, ldflags, sibling_version=None):
        self.module = module
        self.package = package
        self.ldflags = ldflags  # fn(version, upstream_go_mod_json, build_date) -> {symbol: value}
        self.sibling_version = sibling_version  # fn(version) -> version of local-replace siblings


def _major_minor(version):
    parts = version.lstrip("v").split(".")
    return parts[0], parts[1]


def kubernetes_staging_version(version):
    """``v1.34.4`` -> ``v0.34.4``: how k8s.io/kubernetes' staging modules are published."""
    return "v0." + version.lstrip("v").split(".", 1)[1]


def _kubectl_ldflags(version, upstream, build_date):
    major, minor = _major_minor(version)
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean",
              "buildDate": build_date}
    return dict(
        ("%s.%s" % (package, key), value)
        for package in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version")
        for key, value in values.items()
    )


def _required_version(upstream, module):
    for doc in upstream:
        for req in doc.get("Require") or ():
            if req.get("Path") == module:
                return req.get("Version")
    return None


def _helm_ldflags(version, upstream, build_date):
    flags = {
        "helm.sh/helm/v3/internal/version.version": version,
        "helm.sh/helm/v3/internal/version.gitTreeState": "clean",
    }
    # helm's Makefile: the Kubernetes version assumed offline follows the client-go it is built with
    client_go = _required_version(upstream, "k8s.io/client-go")
    if client_go:
        minor = client_go.lstrip("v").split(".")[1]
        for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
            flags["%s.k8sVersionMajor" % package] = "1"
            flags["%s.k8sVersionMinor" % package] = minor
    return flags


GO_RECIPES = {
    "helm": GoRecipe("helm.sh/helm/v3", "helm.sh/helm/v3/cmd/helm", _helm_ldflags),
    "kubectl": GoRecipe("k8s.io/kubernetes", "k8s.io/kubernetes/cmd/kubectl", _kubectl_ldflags,
                        sibling_version=kubernetes_staging_version),
    "eksctl": GoRecipe(
        # eksctl's Go module is still github.com/weaveworks/eksctl (go.mod at v0.225.0); the
        # github.com/eksctl-io/eksctl path is refused by Go module proxies (403). Its release build stamps
        # these (.github/.goreleaser.yml at v0.225.0): pkg/version/release.go holds Version and
        # PreReleaseID = "dev", which a release clears, or `eksctl version` says 0.225.0-dev.
        "github.com/weaveworks/eksctl", "github.com/weaveworks/eksctl/cmd/eksctl",
        lambda version, upstream, build_date: {
            "github.com/weaveworks/eksctl/pkg/version.PreReleaseID": "",
            "github.com/weaveworks/eksctl/pkg/version.buildDate": build_date,
        }),
    "cilium": GoRecipe(
        "github.com/cilium/cilium-cli", "github.com/cilium/cilium-cli/cmd/cilium",
        lambda version, upstream, build_date: {"github.com/cilium/cilium/cilium-cli/defaults.CLIVersion": version}),
    "aws-iam-authenticator": GoRecipe(
        "sigs.k8s.io/aws-iam-authenticator", "sigs.k8s.io/aws-iam-authenticator/cmd/aws-iam-authenticator",
        lambda version, upstream, build_date: {
            "sigs.k8s.io/aws-iam-authenticator/pkg.Version": version.lstrip("v"),
            "sigs.k8s.io/aws-iam-authenticator/pkg.BuildDate": build_date,
        }),
}

THROWAWAY_MODULE_PREFIX = "cilium-eks.local/"


def compose_ldflags(variables):
    """``-s -w -X sym=value ...`` as one ``-ldflags`` argument (values with spaces quoted the go way)."""
    parts = ["-s", "-w"]
    for symbol in sorted(variables):
        assignment = "%s=%s" % (symbol, variables[symbol])
        if "'" in assignment:
            raise ValueError("ldflags value cannot contain a single quote: %r" % assignment)
        if any(ch.isspace() for ch in assignment) or '"' in assignment:
            assignment = "'%s'" % assignment
        parts += ["-X", assignment]
    return " ".join(parts)


def is_local_path(path):
    """A replace target that is a directory, not a module (go.mod's own rule)."""
    return path.startswith(("./", "../", "/")) or path in (".", "..")


def rewrite_replaces(upstream_go_mods, version, sibling_version=None):
    """The replace directives a throwaway module needs to build the upstream modules.

    Upstream module replacements are kept; local-directory ones (``k8s.io/api => ./staging/...``),
    which make ``go install pkg@version`` refuse, become the published module at ``sibling_version``
    (default ``version``) when the upstream requires it, and are dropped otherwise. Returns sorted
    ``(old, new)`` pairs spelled ``path`` or ``path@version``.
    """
    targets = set(doc["Module"]["Path"] for doc in upstream_go_mods)
    rewritten = {}
    for doc in upstream_go_mods:
        required = set(req["Path"] for req in doc.get("Require") or ())
        for replace in doc.get("Replace") or ():
            old, new = replace["Old"], replace["New"]
            if old["Path"] in targets:
                continue
            if is_local_path(new["Path"]):
                if old["Path"] not in required:
                    continue
                new_spec = "%s@%s" % (old["Path"], sibling_version or version)
            else:
                new_spec = "%s@%s" % (new["Path"], new["Version"])
            old_spec = "%s@%s" % (old["Path"], old["Version"]) if old.get("Version") else old["Path"]
            if rewritten.setdefault(old_spec, new_spec) != new_spec:
                raise ValueError("conflicting replacements for %s: %s and %s"
                                 % (old_spec, rewritten[old_spec], new_spec))
    return sorted(rewritten.items())


def render_go_mod(name, go_version, requires, replaces):
    """Text of the throwaway module's go.mod."""
    def spec(module_at_version):
        return " ".join(module_at_version.split("@", 1))

    lines = ["module %s%s" % (THROWAWAY_MODULE_PREFIX, name), "", "go %s" % go_version, ""]
    lines += ["require ("] + ["\t%s %s" % (path, requires[path]) for path in sorted(requires)] + [")", ""]
    if replaces:
        lines += ["replace ("] + ["\t%s => %s" % (spec(old), spec(new)) for old, new in replaces] + [")", ""]
    return "\n".join(lines)


def merge_go_sums(texts):
    """The go.sum lines of several modules, deduplicated and sorted."""
    lines = set(line.strip() for text in texts for line in text.splitlines() if line.strip())
    return "".join("%s\n" % line for line in sorted(lines))


def newest_go_version(upstream_go_mods):
    def key(go):
        return tuple(int(part) for part in re.findall(r"\d+", go))

    return max((doc.get("Go") or "1.21" for doc in upstream_go_mods), key=key)


def build_date(info_time):
    """Release time of a module version (its proxy ``.info``) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    text = re.sub(r"\.\d+", "", info_time.replace("Z", "+00:00"))
    moment = datetime.strptime(text.replace("+00:00", ""), "%Y-%m-%dT%H:%M:%S")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_REFUSED = re.compile(r"(403 Forbidden|404 Not Found|410 Gone|not available|unknown revision|invalid version)",
                      re.IGNORECASE)


class GoModuleUnavailableError(CiliumEksError):
    """The Go module proxy does not serve the module version a tool is built from."""

    def __init__(self, tool, module, version, goproxy, reason):
        reason = (reason or "").strip().rstrip(".")
        msg = (
            "Cannot build %s %s with the go method: the Go module proxy (GOPROXY=%s) does not serve %s@%s: %s. "
            "Use the download method for this tool (tools_methods: {%s: download}), mirror that module "
            "version on your proxy, or pin a version the proxy has."
            % (tool, version, goproxy or "go env default", module, version, reason, tool)
        )
        super().__init__(msg, tool=tool, module=module, version=version, goproxy=goproxy, reason=reason)


class GoBuilder(object):
    """Builds one tool at a pinned version into ``bin_dir``, through a throwaway module.

    The throwaway module ``require``s the tool's module, copies its ``replace`` directives (local ones
    turned into the published siblings), and is seeded with the upstream go.sum. ``go build -trimpath``
    with version ``-X`` stamps writes the binary into a temporary folder; its version command must report
    the pinned version before it is moved (atomically, same file system) into ``bin_dir``.
    """

    def __init__(self, go="go", env=None, timeout=None, workdir=None, on_line=None):
        self.go = go
        self.env = dict(env or {})
        self.timeout = timeout
        self.workdir = workdir
        self.on_line = on_line
        self.commands = []

    def _go(self, tool, args, cwd):
        result = run_command([self.go] + list(args), check=False, timeout=self.timeout, env=self.env, cwd=cwd,
                             on_line=self.on_line, option="go_path")
        self.commands.append(result.argv)
        if result.rc != 0:
            raise CommandError(result.argv, result.rc, stdout=result.stdout, stderr=result.stderr,
                               duration=round(result.duration, 3))
        return result.stdout

    def _download(self, tool, module, version, cwd):
        try:
            return json.loads(self._go(tool, ["mod", "download", "-json", "%s@%s" % (module, version)], cwd))
        except CommandError as err:
            text = "%s\n%s" % (err.stdout_tail, err.stderr_tail)
            doc = _parse_json(err.stdout_tail or "")
            reason = (doc or {}).get("Error") or err.stderr_tail or err.stdout_tail
            if _REFUSED.search(text):
                raise GoModuleUnavailableError(tool, module, version, self.env.get("GOPROXY"), reason)
            raise

    def build(self, tool, version, bin_dir, module=None, package=None):
        """Build ``tool`` ``version`` into ``bin_dir``; returns ``{"path", "version", "ldflags", "module"}``."""
        recipe = GO_RECIPES[tool]
        module = module or recipe.module
        package = package or recipe.package
        staging = tempfile.mkdtemp(prefix=".%s-build-" % tool, dir=self.workdir)
        try:
            module_dir = os.path.join(staging, "module")
            os.mkdir(module_dir)
            downloaded = self._download(tool, module, version, module_dir)
            upstream = [json.loads(self._go(tool, ["mod", "edit", "-json", downloaded["GoMod"]], module_dir))]
            with open(downloaded["Info"]) as handle:
                released = build_date(json.load(handle)["Time"])
            sums = []
            upstream_sum = os.path.join(downloaded.get("Dir") or "", "go.sum")
            if downloaded.get("Dir") and os.path.isfile(upstream_sum):
                with open(upstream_sum) as handle:
                    sums.append(handle.read())
            sibling = recipe.sibling_version(version) if recipe.sibling_version else None
            with open(os.path.join(module_dir, "go.mod"), "w") as handle:
                handle.write(render_go_mod(tool, newest_go_version(upstream), {module: version},
                                           rewrite_replaces(upstream, version, sibling)))
            with open(os.path.join(module_dir, "go.sum"), "w") as handle:
                handle.write(merge_go_sums(sums))
            ldflags = compose_ldflags(recipe.ldflags(version, upstream, released))
            target = os.path.join(staging, tool)
            self._go(tool, ["build", "-trimpath", "-ldflags", ldflags, "-o", target, package], module_dir)
            built, output = installed_version(tool, target)
            if not versions_match(built, version):
                raise CiliumEksError(
                    "%s built from %s@%s reports version %s, not %s; nothing was installed. Output of `%s %s`:\n%s"
                    % (tool, module, version, built or "(none)", version, tool, " ".join(VERSION_ARGS[tool]),
                       output.strip()),
                    tool=tool, module=module, built_version=built)
            final = os.path.join(bin_dir, tool)
            partial = os.path.join(bin_dir, ".%s.partial" % tool)
            shutil.copy2(target, partial)  # bin_dir may be on another file system than the staging folder
            os.chmod(partial, 0o755)
            os.rename(partial, final)
            return {"path": final, "version": built, "ldflags": ldflags, "module": "%s@%s" % (module, version),
                    "package": package}
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def go_env(goproxy=None, gosumdb=None, goflags=None, gotoolchain="local", extra=None):
    """Environment of the go commands: no cgo, no workspace, go.mod updated as needed (``-mod=mod``)."""
    flags = [flag for flag in (goflags or "").split() if not flag.startswith(("-mod=", "-buildvcs="))]
    env = {
        "CGO_ENABLED": "0",
        "GOWORK": "off",
        "GOFLAGS": " ".join(flags + ["-mod=mod", "-buildvcs=false"]),
        "GOTOOLCHAIN": gotoolchain or "local",
    }
    if goproxy:
        env["GOPROXY"] = goproxy
    if gosumdb:
        env["GOSUMDB"] = gosumdb
    env.update(extra or {})
    return env


# --- what the modules call --------------------------------------------------------------------------

def _bin_dir(path):
    return os.path.abspath(os.path.expanduser(path))


def _on_path(bin_dir):
    entries = [os.path.abspath(os.path.expanduser(p)) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return bin_dir in entries


def tools_report(bin_dir, tools, versions=None, download_base_urls=None, os_name=None, arch=None):
    """Result of the ``cli_tool_info`` module (see its RETURN)."""
    inputs.dir_path(bin_dir, "bin_dir")
    bin_dir = _bin_dir(bin_dir)
    host_os, host_arch = host_platform()
    os_name = os_name or host_os
    arch = arch or host_arch
    versions = versions or {}
    report = {}
    for tool in tools:
        if tool not in TOOLS:
            raise ValidationError("tools", "unknown tool", accepted=TOOLS, value=tool)
        wanted = versions.get(tool)
        if wanted is not None and normalize_version(str(wanted)) is None:
            raise ValidationError("versions.%s" % tool, "not a version", accepted="vX.Y.Z, e.g. v3.19.5",
                                  value=wanted)
        path = os.path.join(bin_dir, tool)
        version, output = installed_version(tool, path)
        entry = {
            "path": path,
            "installed": _is_executable(path),
            "version": version,
            "wanted": normalize_version(str(wanted)) if wanted is not None else None,
            "up_to_date": wanted is not None and versions_match(version, str(wanted)),
            "output": "\n".join(output.strip().splitlines()[:5]),
        }
        if download_base_urls is not None and wanted is not None:
            entry["download"] = None  # no official release for this os/arch
            if os_name in OPERATING_SYSTEMS and arch in ("amd64", "arm64"):
                asset = release_asset(tool, str(wanted), os_name, arch, download_base_urls.get(tool))
                entry["download"] = dict((key, asset[key]) for key in ("url", "checksum_url", "filename", "member"))
        report[tool] = entry
    return {"changed": False, "bin_dir": bin_dir, "bin_dir_on_path": _on_path(bin_dir), "os": os_name,
            "arch": arch, "tools": report}


def _is_executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def go_build_tool(params, check_mode=False, on_line=None):
    """Result of the ``go_build_tool`` module: build ``params["name"]`` unless it is already at the version."""
    tool, version = params["name"], params["version"]
    if normalize_version(version) is None:
        raise ValidationError("version", "not a version", accepted="vX.Y.Z (a Go module version), e.g. v3.19.5",
                              value=version)
    if not version.startswith("v"):
        version = "v" + version  # Go module versions always carry the v
    bin_dir = _bin_dir(params["bin_dir"])
    path = os.path.join(bin_dir, tool)
    before, _output = installed_version(tool, path)
    result = {"changed": False, "path": path, "version": before, "previous_version": before,
              "module": "%s@%s" % (params.get("module") or GO_RECIPES[tool].module, version)}
    if versions_match(before, version) and not params.get("force"):
        return result
    result["changed"] = True
    if check_mode:
        result["version"] = normalize_version(version)
        return result
    if not os.path.isdir(bin_dir):
        raise ValidationError("bin_dir", "is not a directory (create it first)", value=bin_dir)
    builder = GoBuilder(
        go=params.get("go_path") or "go",
        env=go_env(params.get("goproxy"), params.get("gosumdb"), params.get("goflags"),
                   params.get("gotoolchain"), params.get("env")),
        timeout=params.get("timeout"),
        on_line=on_line,
    )
    built = builder.build(tool, version, bin_dir, module=params.get("module"), package=params.get("package"))
    result.update(built)
    result["commands"] = [list(argv) for argv in builder.commands]
    return result
