"""What the integration tests share (not a test module: test files import this, never each other).

* Playbooks: ``write_play`` (a role, a module or tasks, one play), ``local_inventory``, ``run_playbook`` and
  ``start_playbook`` (the same ansible-playbook and environment, in the foreground or in the background), and
  ``PlaybookResult`` to read what ran: ``.task(name)``, ``.failures()``, ``.failure_message()``.
* Sandboxes: ``start_sandbox`` (retried on port races), ``install_cilium`` (plain ``helm install`` of a real chart),
  ``aws_client`` (boto3 on a sandbox's EKS proxy + moto).
* Helm: ``helm_run`` and ``helm_json`` on a sandbox's environment.

Process control for fault injection (killing a module mid-flight, restarting the API server) is the platform's:
``eks_sandbox.procs``.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from eks_sandbox import aws, charts, cluster, sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


# ------------------------------------------------------------------------------------------- playbooks


class PlaybookResult:
    """What one ansible-playbook run did (the ansible.posix.json callback's report): exit code, per-host stats,
    and each task's per-host results."""

    def __init__(self, rc, stdout="", stderr="", report=None):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        if report is None:
            report = json.loads(stdout) if stdout.strip().startswith("{") else {}
        self.report = report

    @classmethod
    def from_log(cls, path, rc=None):
        """The result of a background run (``start_playbook``) from its log file."""
        text = Path(path).read_text()
        return cls(rc, stdout=text)

    @property
    def stats(self):
        return self.report.get("stats", {})

    def changed(self, host):
        return self.stats.get(host, {}).get("changed", 0)

    def failed(self, host):
        return self.stats.get(host, {}).get("failures", 0)

    def task_results(self, name):
        """Per-host results of every task called ``name`` (a role's tasks also match without their ``role : ``
        prefix), in the order they ran."""
        return [task["hosts"] for play in self.report.get("plays", []) for task in play["tasks"]
                if task["task"]["name"] == name or task["task"]["name"].endswith(" : " + name)]

    def task(self, name, host=None):
        """The last result of the task ``name`` on ``host`` (the only host when not given)."""
        found = [hosts[host] if host else next(iter(hosts.values())) for hosts in self.task_results(name)
                 if (host in hosts if host else hosts)]
        assert found, f"no task {name!r} ran: {self.task_names()}"
        return found[-1]

    def task_names(self):
        return [task["task"]["name"] for play in self.report.get("plays", []) for task in play["tasks"]]

    def failures(self, host=None):
        """``(task name, message)`` of every failed task (loop items and argument errors included)."""
        found = []
        for play in self.report.get("plays", []):
            for task in play["tasks"]:
                for name, result in task["hosts"].items():
                    if (host and name != host) or not result.get("failed"):
                        continue
                    messages = [str(result.get("msg", ""))]
                    messages += [str(error) for error in result.get("argument_errors", [])]
                    messages += [str(item.get("msg", "")) for item in result.get("results", []) if item.get("failed")]
                    found.append((task["task"]["name"], " ".join(m for m in messages if m)))
        return found

    def failure_message(self, host=None):
        """Every failure message of ``host`` in one line (whitespace folded)."""
        return folded(" ".join(message for _task, message in self.failures(host)))

    def __repr__(self):
        return (f"PlaybookResult(rc={self.rc}, stats={self.stats}, failures={self.failures()[:5]}, "
                f"stderr={self.stderr[-2000:]!r})")


def folded(text):
    """``text`` with every run of whitespace made one space: for reports whose columns or line breaks move (the
    agent's `cilium-dbg status` aligns its values as wide as its longest label, which depends on the agent's state)."""
    return " ".join(text.split())


def playbook_env(env):
    """``env`` plus what every run of this repository's ansible-playbook needs (json callback, collections, config)."""
    return dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1",
                ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"),
                ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"))


def playbook_argv(playbook, inventory, extra_vars=None, check=False, diff=False, args=()):
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        argv += ["--extra-vars", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    return argv + list(args)


def run_playbook(playbook, inventory, env, extra_vars=None, check=False, diff=False, timeout=900, args=(),
                 cwd=REPO_ROOT):
    """The real ansible-playbook of this venv against the collection as installed in .collections, run in ``cwd``."""
    completed = subprocess.run(playbook_argv(playbook, inventory, extra_vars, check, diff, args),
                               env=playbook_env(env), capture_output=True, text=True, timeout=timeout,
                               cwd=cwd, check=False)
    return PlaybookResult(completed.returncode, completed.stdout, completed.stderr)


def start_playbook(playbook, inventory, env, log):
    """ansible-playbook in the background, in a process group of its own (as a terminal would run it), its
    report written to ``log`` (read it with ``PlaybookResult.from_log``) and its stderr (warnings, the progress
    lines of long waits) to ``log`` + ``.stderr``, so that the JSON report stays whole."""
    with open(log, "w") as out, open(f"{log}.stderr", "w") as err:
        return subprocess.Popen(playbook_argv(playbook, inventory), env=playbook_env(env), cwd=REPO_ROOT,
                                stdout=out, stderr=err, start_new_session=True)


def local_inventory(path, hosts=("sandbox",), group="cluster"):
    """An inventory of local hosts run with this Python (written to ``path``)."""
    lines = [f"[{group}]"] + [
        f"{host} ansible_connection=local ansible_python_interpreter={sys.executable}" for host in hosts]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def write_play(path, name="play", role=None, variables=None, module=None, args=None, tasks=None, hosts="cluster"):
    """One play written to ``path``: the role ``role`` with ``variables``, or one task of ``module`` called
    ``name`` with ``args``, or ``tasks``."""
    play = {"name": name, "hosts": hosts, "gather_facts": False}
    if role:
        play["roles"] = [{"role": f"cloudnet.cilium_eks.{role}", "vars": variables or {}}]
    else:
        play["tasks"] = tasks or [{"name": name, f"cloudnet.cilium_eks.{module}": args or {}}]
    Path(path).write_text(yaml.safe_dump([play], sort_keys=False))
    return Path(path)


def status_play(directory, kubeconfig, **options):
    """A play of one task ``status``: the collection's cilium_status module with ``options`` on this host, and its
    inventory (``(play, inventory)``, written in ``directory``)."""
    play = write_play(Path(directory) / "status.yml", "status", module="cilium_status",
                      args={"kubeconfig": str(kubeconfig), **options}, hosts="localhost")
    return play, local_inventory(Path(directory) / "hosts", hosts=("localhost",))


# ------------------------------------------------------------------------------------------- sandboxes


def sandbox_apis(box):
    """``(core, custom, ec2)``: the Kubernetes core and custom-objects APIs and moto's EC2 of ``box``."""
    import boto3
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=box.kubeconfig)
    ec2 = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name=box.spec.region).client("ec2", endpoint_url=box.aws_env["AWS_ENDPOINT_URL"])
    return client.CoreV1Api(api), client.CustomObjectsApi(api), ec2


def start_sandbox(sandbox_factory, name, **spec):
    """sandbox_factory, retried: kwokctl picks its ports when it starts, so two sandboxes created at the same
    moment by parallel test runs can pick the same port (seen: "server gave HTTP response to HTTPS client").
    A sandbox of that name left running by an interrupted run is stopped first: these tests need a fresh one."""
    sandbox.down(name)
    for attempt in range(3):
        try:
            return sandbox_factory(name, **spec)
        except cluster.SandboxError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def aws_client(endpoint, service, region=REGION):
    """A boto3 client of ``service`` on a sandbox's AWS endpoint (its EKS proxy in front of moto)."""
    import boto3
    session = boto3.session.Session(region_name=region, **{k.lower(): v for k, v in aws.DUMMY_CREDENTIALS.items()})
    return session.client(service, endpoint_url=endpoint)


def api_client(box):
    from kubernetes import config
    return config.new_client_from_config(config_file=box.kubeconfig)


def install_cilium(helm, box, values, version):
    """Cilium ``version`` installed with plain ``helm install`` and ``values`` (``key=value``), not the
    collection's roles; the sandbox's agent simulator does the rest (CRDs, agents, CiliumEndpoints)."""
    sets = [item for value in values for item in ("--set", value)]
    helm_run(helm, box.env, "install", "cilium", str(charts.ensure_chart(version)), "-n", "kube-system", *sets)
    return api_client(box)


def cilium_role_vars(role, box, helm, cilium_version, **extra):
    """Variables of ``role`` (cilium_eni or cilium_chaining) for ``box``: the platform's chart of ``cilium_version``
    and helm, one operator, 300 s timeouts; ``extra`` without the role prefix (``version`` overrides the version)."""
    variables = {f"{role}_version": cilium_version, f"{role}_chart_path": str(charts.ensure_chart(cilium_version)),
                 f"{role}_helm_path": str(helm), f"{role}_kubeconfig": box.kubeconfig,
                 f"{role}_cluster_name": box.spec.name, f"{role}_operator_replicas": 1,
                 f"{role}_helm_timeout": 300, f"{role}_wait_timeout": 300}
    variables.update({f"{role}_{k}": v for k, v in extra.items()})
    return variables


def namespace_exists(api, name):
    from kubernetes import client
    return any(ns.metadata.name == name for ns in client.CoreV1Api(api).list_namespace().items)


def wait_until(condition, what, timeout=180, proc=None):
    """Poll ``condition`` every 0.1 s; fail naming ``what`` after ``timeout`` s, or when ``proc`` ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"the playbook ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------ helm


def helm_run(helm, env, *args, check=True, timeout=300):
    """``helm args...`` with a sandbox's environment (its KUBECONFIG); fails the test when it fails and ``check``."""
    done = subprocess.run([str(helm), *args], env=dict(env), capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert not check or done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
    return done


def helm_json(helm, env, *args):
    """``helm args... -n kube-system -o json``, parsed."""
    return json.loads(helm_run(helm, env, *args, "-n", "kube-system", "-o", "json", timeout=120).stdout or "null")
