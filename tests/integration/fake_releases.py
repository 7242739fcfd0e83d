"""Official-looking CLI releases on 127.0.0.1, for the tools role (test_tools_role.py, test_safety.py).

``publish(root, tool, tag)`` writes a release file laid out like the official downloads (get.helm.sh, dl.k8s.io,
the GitHub releases of eksctl, cilium-cli and aws-iam-authenticator) with its checksum file in the project's own
format; each "binary" is a tiny script printing its version the way the real tool does (tests/recordings/tools).
``serving(root)`` serves such a tree on 127.0.0.1.
"""
import contextlib
import functools
import hashlib
import http.server
import io
import json
import platform
import sys
import tarfile
import threading
from pathlib import Path

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")
OS = "linux" if sys.platform.startswith("linux") else "darwin"

# What each tool prints for its version command (formats of the real tools, see tests/recordings/tools).
VERSION_OUTPUT = {
    "eksctl": "{bare}",
    "kubectl": json.dumps({"clientVersion": {"major": "1", "gitVersion": "{tag}", "platform": "linux/amd64"},
                           "kustomizeVersion": "v5.7.1"}),
    "helm": "{tag}+g4a19a5b",
    "cilium": "cilium-cli: {tag} compiled with go1.25.5 on linux/amd64\ncilium image (default): v1.19.1",
    "aws-iam-authenticator": '{{"Version":"{bare}","Commit":"0a1b2c3d"}}',
}
VERSIONS = {"eksctl": "v0.225.0", "kubectl": "v1.34.4", "helm": "v3.19.5", "cilium": "v0.19.7",
            "aws-iam-authenticator": "v0.7.8"}


def fake_binary(tool, tag):
    text = VERSION_OUTPUT[tool].replace("{tag}", tag).replace("{bare}", tag.lstrip("v"))
    text = text.replace("{{", "{").replace("}}", "}")
    return ("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % text).encode()


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def publish(root: Path, tool: str, tag: str, tamper=False):
    """Write the release file of ``tool`` ``tag`` and its checksum file, in the official layout under
    ``root/<tool>`` (the tool's base URL). ``tamper``: the file served differs from the one summed."""
    binary = fake_binary(tool, tag)
    bare = tag.lstrip("v")
    base = root / tool
    if tool == "eksctl":
        rel, data = f"{tag}/eksctl_{OS.capitalize()}_{ARCH}.tar.gz", tar_gz({"eksctl": binary})
        sums = (f"{tag}/eksctl_checksums.txt", "{digest}  " + rel.rsplit("/", maxsplit=1)[-1] + "\n"
                + f"{'0' * 64}  eksctl_Windows_{ARCH}.zip\n")
    elif tool == "kubectl":
        rel, data = f"{tag}/bin/{OS}/{ARCH}/kubectl", binary
        sums = (rel + ".sha256", "{digest}")
    elif tool == "helm":
        rel, data = f"helm-{tag}-{OS}-{ARCH}.tar.gz", tar_gz({f"{OS}-{ARCH}/helm": binary,
                                                              f"{OS}-{ARCH}/LICENSE": b"Apache-2.0\n"})
        sums = (rel + ".sha256sum", "{digest}  " + rel + "\n")
    elif tool == "cilium":
        rel, data = f"{tag}/cilium-{OS}-{ARCH}.tar.gz", tar_gz({"cilium": binary})
        sums = (rel + ".sha256sum", "{digest}  " + rel.rsplit("/", maxsplit=1)[-1] + "\n")
    else:
        rel, data = f"{tag}/aws-iam-authenticator_{bare}_{OS}_{ARCH}", binary
        sums = (f"{tag}/authenticator_{bare}_checksums.txt",
                f"{'1' * 64}  aws-iam-authenticator_{bare}_windows_{ARCH}.exe\n"
                "{digest}  " + rel.rsplit("/", maxsplit=1)[-1] + "\n")
    digest = sha256(data)
    if tamper:
        data = data + b"\0"
    (base / rel).parent.mkdir(parents=True, exist_ok=True)
    (base / rel).write_bytes(data)
    (base / sums[0]).parent.mkdir(parents=True, exist_ok=True)
    (base / sums[0]).write_text(sums[1].replace("{digest}", digest))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@contextlib.contextmanager
def serving(root):
    """An HTTP server on 127.0.0.1 serving ``root`` for the block; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
