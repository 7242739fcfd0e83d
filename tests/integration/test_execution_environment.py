"""The execution environment (execution-environment.yml, meta/execution-environment.yml) as far as it can be tested
without building an image (no container images here): the real ``ansible-builder create`` (the pinned version of
requirements-dev.lock) writes the build context, and the collection is installed the way its Containerfile installs
it, into the path the final stage keeps; ansible-builder's own introspection then finds the collection's Python and
system packages.

ux-review.md section 6: the collection used to be installed into ~/.ansible/collections of the galaxy stage (which the
final image does not copy), from a tarball name with the version written in it.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEPT = "/usr/share/ansible/collections"  # what the final stage copies: COPY --from=galaxy /usr/share/ansible
VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]


def run(argv, **kwargs):
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    return done


def stages(containerfile):
    """``{stage name: [lines]}`` of a generated Containerfile."""
    found, name = {}, None
    for line in containerfile.splitlines():
        match = re.match(r"FROM \S+ AS (\w+)", line)
        if match:
            name = match.group(1)
        found.setdefault(name, []).append(line)
    return found


def build_context(tmp_path):
    """What ``make ee`` does, in ``tmp_path``: the tarball into build/ee/ beside a copy of the EE definition, then
    ``ansible-builder create``."""
    for name in ("execution-environment.yml", "requirements.yml"):
        shutil.copy(REPO / name, tmp_path / name)
    run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path / "build" / "ee", REPO])
    created = run([BIN / "ansible-builder", "create", "--file", tmp_path / "execution-environment.yml",
                   "--context", tmp_path / "context", "--output-filename", "Containerfile"])
    assert "No matches" not in created.stdout + created.stderr
    return tmp_path / "context"


def test_the_definition_names_no_version_and_builder_is_pinned():
    definition = (REPO / "execution-environment.yml").read_text()
    assert VERSION not in definition and "cloudnet-cilium_eks-*.tar.gz" in definition
    assert re.search(r"^ansible-builder==\d+\.\d+\.\d+$", (REPO / "requirements-dev.lock").read_text(), re.M)
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}


def test_the_clis_are_the_tools_roles_pins_and_the_kubeconfig_login_is_there():
    pins = yaml.safe_load((REPO / "roles" / "tools" / "defaults" / "main.yml").read_text())["tools_versions"]
    final = yaml.safe_load((REPO / "execution-environment.yml").read_text())["additional_build_steps"]["append_final"]
    args = dict(re.match(r"ARG (\w+)=(\S+)$", step).groups() for step in final if re.match(r"ARG \w+=", step))
    assert args == {"EKSCTL_VERSION": pins["eksctl"], "KUBECTL_VERSION": pins["kubectl"],
                    "HELM_VERSION": pins["helm"], "CILIUM_CLI_VERSION": pins["cilium"],
                    "AWS_IAM_AUTHENTICATOR_VERSION": pins["aws-iam-authenticator"]}
    install = final[-1]
    # eksctl's kubeconfigs log in with aws-iam-authenticator when it is on PATH (pkg/utils/kubeconfig/kubeconfig.go
    # at v0.225.0, lookupAuthenticator); each download is checked against its published SHA-256.
    assert "install -m 0755 ${authenticator} /usr/local/bin/aws-iam-authenticator" in install
    assert install.count("sha256sum -c -") == 5 and "amd64" not in install.replace("${TARGETARCH:-amd64}", "")


def test_builder_creates_a_context_that_installs_the_collection_where_the_final_image_keeps_it(tmp_path):
    context = build_context(tmp_path)
    tarball = context / "_build" / "collections" / f"cloudnet-cilium_eks-{VERSION}.tar.gz"
    assert tarball.is_file()
    steps = stages((context / "Containerfile").read_text())
    assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in steps["final"]
    (install,) = [line for line in steps["galaxy"] if "cloudnet-cilium_eks-*.tar.gz" in line]
    assert f"--collections-path {KEPT}" in install

    # The galaxy stage's step, run here: /build is the context's _build (COPY _build /build), /usr/share/ansible a
    # scratch folder already holding kubernetes.core and amazon.aws (the stage's requirements.yml step before it).
    kept = tmp_path / "usr-share-ansible-collections"
    for dependency in ("kubernetes/core", "amazon/aws"):
        shutil.copytree(REPO / ".collections" / "ansible_collections" / dependency,
                        kept / "ansible_collections" / dependency)
    home = tmp_path / "home"
    home.mkdir()
    script = install.removeprefix("RUN ").replace("/build/", f"{context}/_build/").replace(KEPT, str(kept))
    env = {"HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_COLLECTIONS_PATH": str(kept)}
    run(["sh", "-c", script], env=env)
    installed = kept / "ansible_collections" / "cloudnet" / "cilium_eks"
    assert yaml.safe_load((installed / "MANIFEST.json").read_text())["collection_info"]["version"] == VERSION
    assert not (home / ".ansible" / "collections").exists()  # nothing left in the galaxy stage's home
    assert (installed / "meta" / "execution-environment.yml").is_file()
    assert not (installed / "execution-environment.yml").exists()  # the repository's build definition stays out

    # ansible-builder's introspection (its script, from the context) reads the installed collection's
    # meta/execution-environment.yml: the Python and system packages the final image gets.
    found = yaml.safe_load(run([sys.executable, context / "_build" / "scripts" / "introspect.py", "introspect",
                                kept]).stdout)
    ours = {kind: [line.split()[0] for line in lines if line.endswith("# from collection cloudnet.cilium_eks")]
            for kind, lines in found.items()}
    assert {"boto3>=1.34.0", "kubernetes>=29.0.0"} <= set(ours["python"])
    assert {"tar", "gzip"} <= set(ours["system"])


def test_a_fresh_clone_without_make_ee_fails_the_build_saying_so(tmp_path):
    """Without the tarball, ansible-builder only warns; the galaxy step then stops the build naming `make ee`."""
    for name in ("execution-environment.yml", "requirements.yml"):
        shutil.copy(REPO / name, tmp_path / name)
    run([BIN / "ansible-builder", "create", "--file", tmp_path / "execution-environment.yml", "--context",
         tmp_path / "context", "--output-filename", "Containerfile"])
    (install,) = [line for line in stages((tmp_path / "context" / "Containerfile").read_text())["galaxy"]
                  if "cloudnet-cilium_eks-*.tar.gz" in line]
    script = install.removeprefix("RUN ").replace("/build/", f"{tmp_path}/context/_build/")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "run make ee" in done.stderr
