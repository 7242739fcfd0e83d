"""``python -m eks_sandbox``: build the platform, bring a sandbox up or down, show its status."""
import argparse
import contextlib
import json
import shlex
import sys


def _up(args) -> int:
    from . import sandbox
    spec = sandbox.SandboxSpec(name=args.name, region=args.region, nodes=args.nodes,
                               agent_not_ready_taint=args.taint, vpc_cni=not args.no_vpc_cni,
                               aws=not args.no_aws, seed=not args.empty, cilium=args.cilium,
                               vpc_cni_runtime=args.vpc_cni_runtime)
    if args.vpc_cni_tag:
        spec.vpc_cni_tag = args.vpc_cni_tag
    sandbox.up(spec, out=sys.stdout)
    return 0


def _down(args) -> int:
    from . import sandbox
    leftovers = sandbox.down(args.name, out=sys.stdout)
    if leftovers["open_ports"]:
        print(f"sandbox: still listening after down: {leftovers['open_ports']}", file=sys.stderr)
        return 1
    return 0


def _status(args) -> int:
    from . import sandbox
    report = sandbox.status(args.name)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["running"] else 3


def _env(args) -> int:
    from . import sandbox
    box = sandbox.load(args.name)
    if box is None:
        print(f"sandbox {args.name} is not up: run `python -m eks_sandbox up` first", file=sys.stderr)
        return 3
    with contextlib.redirect_stdout(sys.stderr):  # build/cache notes must not reach `eval`
        env = box.env
    if args.json:
        print(json.dumps(env, indent=2, sort_keys=True))
        return 0
    for key, value in sorted(env.items()):
        print(f"export {key}={shlex.quote(str(value))}")
    return 0


def _datapath(args) -> int:
    """Real shaping for the bandwidth test: a namespace pair bound to the test namespace's client pod."""
    from . import netns_datapath, sandbox
    reason = netns_datapath.unavailable_reason()
    if reason:
        print(f"datapath: not available here ({reason}); the bandwidth measurement will fail", file=sys.stderr)
        return 3
    box = sandbox.load(args.name)
    if box is None:
        print(f"sandbox {args.name} is not up: run `python -m eks_sandbox up` first", file=sys.stderr)
        return 3
    pair = netns_datapath.pair_for_sandbox(args.name)
    from kubernetes import config
    api_client = config.new_client_from_config(config_file=box.kubeconfig)
    if args.action == "down":
        netns_datapath.unbind_namespace(api_client, netns_datapath.exec_rule_name(args.namespace))
        pair.down()
        print(f"datapath: {args.name} unbound, namespaces removed")
        return 0
    pair.up()
    name = netns_datapath.bind_namespace(api_client, args.namespace, pair, box.kubeconfig,
                                         containers=("netperf", "iperf3"))
    print(f"datapath: execs into {args.namespace} pods run for real in {pair.client_ns} ({name})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eks_sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("build", help="build the Go tools into the cache (kwok, etcd, Kubernetes, helm, ...)",
                        add_help=False)
    commands.add_parser("charts", help="fetch the Cilium charts and CRDs into the cache", add_help=False)
    commands.add_parser("aws", help="moto server alone: up|down|status", add_help=False)

    up = commands.add_parser("up", help="start a sandbox (reused when already running)")
    up.add_argument("--name", default="cilium-eks-sandbox")
    up.add_argument("--region", default="us-east-1")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--taint", action="store_true", help="taint nodes node.cilium.io/agent-not-ready")
    up.add_argument("--no-vpc-cni", action="store_true", help="no aws-node/kube-proxy/coredns (disableDefaultAddons)")
    up.add_argument("--vpc-cni-tag", help="aws-node image tag, e.g. v1.10.4-eksbuild.1")
    up.add_argument("--no-aws", action="store_true", help="do not start moto")
    up.add_argument("--empty", action="store_true",
                    help="no EKS cluster, node or kube-system add-on: the real eksctl creates them")
    up.add_argument("--cilium", choices=["replay", "real"], default="replay",
                    help="replay: Cilium agents answer from recordings; real: the chart's agent and operator pods run "
                         "for real on the nodes (Cilium 1.19.7, 1.20.2)")
    up.add_argument("--vpc-cni-runtime", choices=["kwok", "real"], default="kwok",
                    help="kwok: aws-node pods are kwok's; real: they run the AWS VPC CNI's ipamd and write its CNI "
                         "configuration (needs --cilium real; chaining's real tier)")
    up.set_defaults(func=_up)

    datapath = commands.add_parser("datapath", help="real kernel shaping (netns + tc) for the bandwidth test")
    datapath.add_argument("action", choices=["up", "down"])
    datapath.add_argument("--name", default="cilium-eks-sandbox")
    datapath.add_argument("--namespace", default="cilium-bandwidth-test", help="the bandwidth test's namespace")
    datapath.set_defaults(func=_datapath)

    for name, func, text in (("down", _down, "stop a sandbox and check nothing is left"),
                             ("status", _status, "show what is running"),
                             ("env", _env, "print shell exports to use the sandbox")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--name", default="cilium-eks-sandbox")
        if name == "env":
            sub.add_argument("--json", action="store_true", help="a JSON object instead of shell exports")
        sub.set_defaults(func=func)

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("build", "charts", "aws"):
        if argv[0] == "build":
            from .gobuild import main_build as delegate
        elif argv[0] == "charts":
            from .charts import main_charts as delegate
        else:
            from .aws import main_aws as delegate
        return delegate(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
