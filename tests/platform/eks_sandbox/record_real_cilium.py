"""Regenerate the replay's recordings (tests/recordings/cilium/<version>/) from real agents in the sandbox.

``python -m eks_sandbox.record_real_cilium [--version 1.20.2 ...]`` brings up a real-Cilium sandbox for each
version (``SandboxSpec(cilium="real")``, 2 nodes, agent-not-ready taint), installs that version's chart in
ENI mode with the Bandwidth Manager on (the collection's default path: ``RECORD_VALUES``), starts one pod
annotated ``kubernetes.io/egress-bandwidth: 10M``, waits for its CiliumEndpoint, and saves what the agent of
that pod's node answers to the commands the replay serves (:data:`COMMANDS`), through ``kubectl exec`` as a
user gets them. The sandbox is then stopped. Each file's origin is written into SOURCES.md (between the
``generated`` markers, one row per file: version, command, values, date). Nothing is edited by hand.

``--checks`` records instead what the collection's other checks read (:func:`record_checks`): the Cilium CLI's
own ``cilium status`` (text and JSON) on a settled install, and how an agent crashes on a configuration it refuses
(:data:`CRASH_VALUES`: ENI mode with IPv4 masquerading and no egress masquerade interfaces, a panic from 1.19):
its ``kubectl logs --previous`` and the termination message the kubelet keeps (``FallbackToLogsOnError``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import charts, gobuild, kube, sandbox, versions

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings" / "cilium"
SOURCES = RECORDINGS / "SOURCES.md"
MARK_START, MARK_END = "<!-- generated:start -->", "<!-- generated:end -->"
# file -> the command run in the agent container (`cilium` is cilium-dbg since 1.15).
COMMANDS = {
    "status.txt": ["cilium-dbg", "status"],
    "status-verbose.txt": ["cilium-dbg", "status", "--verbose"],
    "status.json": ["cilium-dbg", "status", "-o", "json"],
    "version.txt": ["cilium-dbg", "version"],
    "bpf-bandwidth-list.txt": ["cilium-dbg", "bpf", "bandwidth", "list"],
    "bpf-bandwidth-list.json": ["cilium-dbg", "bpf", "bandwidth", "list", "-o", "json"],
}
RECORD_VALUES = {"eni.enabled": "true", "ipam.mode": "eni", "routingMode": "native", "kubeProxyReplacement": "false",
                 "bandwidthManager.enabled": "true"}
POD = "recorded-10m"
CLI_VALUES = {"eni.enabled": "true", "ipam.mode": "eni", "routingMode": "native", "kubeProxyReplacement": "false"}
CLI_FILES = {"cli-status.txt": ["status"], "cli-status.json": ["status", "-o", "json"]}
CRASH_VALUES = dict(CLI_VALUES, enableIPv4Masquerade="true")
CRASH_FILES = ("agent-crash-masquerade.log", "agent-crash-masquerade.termination-message.txt")


def _run(argv, env, timeout=300) -> str:
    completed = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=timeout,
                               check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {completed.returncode}: {completed.stderr.strip()}")
    return completed.stdout


def record(version: str, out=sys.stdout) -> list:
    """Record one version; returns the SOURCES.md rows of the files written."""
    name = f"rec-{version.replace('.', '-')}"
    box = sandbox.up(sandbox.SandboxSpec(name=name, nodes=2, agent_not_ready_taint=True, cilium="real"), out=out)
    try:
        env = dict(os.environ, **box.env)
        kubectl = gobuild.ensure("kubernetes")["kubectl"]
        values = [arg for key, value in RECORD_VALUES.items() for arg in ("--set", f"{key}={value}")]
        _run([env["CILIUM_EKS_HELM"], "install", "cilium", charts.ensure_chart(version), "-n", "kube-system",
              "--set", f"cluster.name={name}", *values, "--wait", "--timeout", "5m"], env, timeout=400)
        core = kube.core_v1(box.kubeconfig)
        api = kube.dynamic_client(box.kubeconfig)
        # helm's --wait lets a DaemonSet through with maxUnavailable (2 in the chart) pods not Ready; wait for all,
        # and for the operator to lift the agent-not-ready taint (else the taint evicts the pod).
        kube.wait_for(lambda: kube.daemonset_rolled_out(api, "kube-system", "cilium"), "every agent Ready", 300)
        kube.wait_for(lambda: not any(t.key == "node.cilium.io/agent-not-ready" for n in core.list_node().items
                                      for t in n.spec.taints or []), "the agent-not-ready taints lifted", 120)
        node = sorted(n.metadata.name for n in core.list_node().items)[0]
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": POD, "annotations": {"kubernetes.io/egress-bandwidth": "10M"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
        custom = api.resources.get(api_version="cilium.io/v2", kind="CiliumEndpoint")
        kube.wait_for(lambda: (custom.get(name=POD, namespace="default").to_dict().get("status") or {}).get("id"),
                      f"the CiliumEndpoint of {POD}", timeout=120)
        agent = next(p.metadata.name for p in core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium")
                     .items if p.spec.node_name == node)
        kube.wait_for(lambda: "Cluster health:" in _run([kubectl, "-n", "kube-system", "exec", agent, "--",
                                                         "cilium-dbg", "status"], env), "the agent's status", 60)
        time.sleep(5)  # let the health prober finish a round, as in a settled cluster
        folder = RECORDINGS / version
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        for file_name, command in COMMANDS.items():
            text = _run([kubectl, "-n", "kube-system", "exec", agent, "-c", "cilium-agent", "--", *command], env)
            (folder / file_name).write_text(text)
            rows.append(f"| `{version}/{file_name}` | {version} | real agent in the sandbox ({stamp}): "
                        f"`kubectl -n kube-system exec <agent pod> -- {' '.join(command)}` on the node of a pod "
                        f"annotated `kubernetes.io/egress-bandwidth: 10M`; chart {version} with "
                        f"{', '.join(f'{k}={v}' for k, v in RECORD_VALUES.items())}; EC2/EKS in moto "
                        f"(`python -m eks_sandbox.record_real_cilium`) | **generated** |")
            print(f"record: {version}/{file_name}", file=out, flush=True)
        return rows
    finally:
        sandbox.down(name, out=out)


def _crashed_agent(core):
    """``(pod name, termination message)`` of an agent in CrashLoopBackOff, or None."""
    for pod in core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items:
        for status in pod.status.container_statuses or []:
            if status.name == "cilium-agent" and status.state.waiting and \
                    status.state.waiting.reason == "CrashLoopBackOff" and status.last_state.terminated:
                return pod.metadata.name, status.last_state.terminated.message or ""
    return None


def _row(version, file_name, stamp, how, values, flag):
    return (f"| `{version}/{file_name}` | {version} | real agent in the sandbox ({stamp}): {how}; chart {version} "
            f"with {', '.join(f'{k}={v}' for k, v in values.items())}; EC2/EKS in moto "
            f"(`python -m eks_sandbox.record_real_cilium {flag}`) | **generated** |")


def record_checks(version: str, out=sys.stdout) -> list:
    """Record what the collection's checks read besides the agent's status: the real Cilium CLI's ``cilium status``
    (text and ``-o json``, :data:`CLI_FILES`) on a settled ENI install (:data:`CLI_VALUES`), then how an agent
    crashes on a configuration it refuses (:data:`CRASH_VALUES`, after a rollout restart): ``logs --previous`` and
    the termination message (:data:`CRASH_FILES`). Returns the SOURCES.md rows of the files written."""
    name = f"rec-checks-{version.replace('.', '-')}"
    box = sandbox.up(sandbox.SandboxSpec(name=name, nodes=2, agent_not_ready_taint=True, cilium="real"), out=out)
    try:
        env = dict(os.environ, **box.env)
        kubectl, cli = gobuild.ensure("kubernetes")["kubectl"], gobuild.ensure("cilium-cli")["cilium"]
        folder, stamp, rows = RECORDINGS / version, datetime.now(timezone.utc).strftime("%Y-%m-%d"), []
        helm = [env["CILIUM_EKS_HELM"], "upgrade", "--install", "cilium", charts.ensure_chart(version), "-n",
                "kube-system", "--set", f"cluster.name={name}"]
        _run(helm + [a for k, v in CLI_VALUES.items() for a in ("--set", f"{k}={v}")], env, timeout=400)
        _run([cli, "status", "--wait", "--wait-duration", "5m"], env, timeout=400)
        for file_name, args in CLI_FILES.items():
            (folder / file_name).write_text(_run([cli, *args], env))
            rows.append(_row(version, file_name, stamp, f"the Cilium CLI {versions.CILIUM_CLI} `cilium "
                             f"{' '.join(args)}` after `cilium status --wait` settled", CLI_VALUES, "--checks"))
            print(f"record: {version}/{file_name}", file=out, flush=True)
        _run(helm + [a for k, v in CRASH_VALUES.items() for a in ("--set", f"{k}={v}")], env, timeout=400)
        _run([kubectl, "-n", "kube-system", "rollout", "restart", "ds/cilium"], env)
        agent, message = kube.wait_for(lambda: _crashed_agent(kube.core_v1(box.kubeconfig)),
                                       "an agent in CrashLoopBackOff", timeout=300)
        log = _run([kubectl, "-n", "kube-system", "logs", agent, "-c", "cilium-agent", "--previous"], env)
        how = {CRASH_FILES[0]: "`kubectl -n kube-system logs <agent pod> -c cilium-agent --previous` of an agent in "
                               "CrashLoopBackOff after a rollout restart",
               CRASH_FILES[1]: "that pod's `status.containerStatuses[cilium-agent].lastState.terminated.message` "
                               "(the log's tail: terminationMessagePolicy FallbackToLogsOnError)"}
        for file_name, text in zip(CRASH_FILES, (log, message)):
            (folder / file_name).write_text(text)
            rows.append(_row(version, file_name, stamp, how[file_name], CRASH_VALUES, "--checks"))
            print(f"record: {version}/{file_name}", file=out, flush=True)
        return rows
    finally:
        sandbox.down(name, out=out)


def update_sources(rows_by_version: dict) -> None:
    """Replace the rows of the recorded versions between the generated markers of SOURCES.md."""
    text = SOURCES.read_text()
    head, _start, rest = text.partition(MARK_START)
    old_rows, _end, tail = rest.partition(MARK_END)
    if not _start:
        head, old_rows, tail = text.rstrip("\n") + "\n\n", "", "\n"
    written = {row.split("`")[1] for rows in rows_by_version.values() for row in rows}
    kept = [r for r in old_rows.strip().splitlines() if r.startswith("| `") and r.split("`")[1] not in written]
    rows = sorted(kept + [row for rows in rows_by_version.values() for row in rows])
    header = "| File | Cilium | Source | Kind |\n| --- | --- | --- | --- |"
    SOURCES.write_text(f"{head}{MARK_START}\n{header}\n" + "\n".join(rows) + f"\n{MARK_END}{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eks_sandbox.record_real_cilium",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="append", choices=list(versions.CILIUM_AGENTS),
                        help="Cilium version to record (repeatable; default: every built one)")
    parser.add_argument("--checks", action="store_true",
                        help="record only the CLI's status and the agent's crash on a refused configuration")
    args = parser.parse_args(argv)
    recorder = record_checks if args.checks else record
    rows = {version: recorder(version) for version in args.version or versions.CILIUM_AGENTS}
    update_sources(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
