"""Unit tests of eks_sandbox.gobuild's pure parts and cache logic; nothing is built here."""
import json
import subprocess

import pytest

from eks_sandbox import gobuild, versions


def _go_mod(path, requires=(), replaces=(), go="1.24.0"):
    """A document shaped like ``go mod edit -json`` output."""
    return {
        "Module": {"Path": path},
        "Go": go,
        "Require": [{"Path": p, "Version": v} for p, v in requires],
        "Replace": [{"Old": old, "New": new} for old, new in replaces],
    }


# --- ldflags ---------------------------------------------------------------------------

def test_compose_ldflags_strips_and_sets_variables_in_order():
    flags = gobuild.compose_ldflags({"a/b.version": "v1.2.3", "a/b.major": "1"})
    assert flags == "-s -w -X a/b.version=v1.2.3 -X a/b.major=1"


def test_compose_ldflags_without_strip_and_without_variables():
    assert gobuild.compose_ldflags({}, strip=False) == ""
    assert gobuild.compose_ldflags({"p.v": "x"}, strip=False) == "-X p.v=x"


def test_compose_ldflags_quotes_values_with_spaces():
    assert gobuild.compose_ldflags({"p.v": "a b"}, strip=False) == "-X 'p.v=a b'"


def test_compose_ldflags_rejects_single_quotes():
    with pytest.raises(ValueError):
        gobuild.compose_ldflags({"p.v": "it's"})


def test_resolve_ldflags_fills_build_date():
    resolved = gobuild.resolve_ldflags({"p.buildDate": "{build_date}", "p.v": "v1"}, build_date="D")
    assert resolved == {"p.buildDate": "D", "p.v": "v1"}


def test_build_date_is_kubernetes_format_in_utc():
    assert gobuild.build_date("2026-02-10T12:53:36Z") == "2026-02-10T12:53:36Z"
    assert gobuild.build_date("2026-02-10T14:53:36+02:00") == "2026-02-10T12:53:36Z"


def test_kubernetes_version_ldflags_stamp_both_version_packages():
    flags = gobuild.kubernetes_version_ldflags("v1.34.4")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert flags[f"{package}.gitVersion"] == "v1.34.4"
        assert flags[f"{package}.gitMajor"] == "1"
        assert flags[f"{package}.gitMinor"] == "34"
        assert flags[f"{package}.gitTreeState"] == "clean"
        assert flags[f"{package}.buildDate"] == "{build_date}"


def test_kubernetes_staging_version():
    assert gobuild.kubernetes_staging_version("v1.34.4") == "v0.34.4"
    assert gobuild.kubernetes_staging_version("v1.33.13") == "v0.33.13"


def test_helm_version_ldflags_use_the_sandbox_kubernetes_version():
    flags = gobuild.helm_version_ldflags("v3.19.5", "v1.34.4")
    assert flags["helm.sh/helm/v3/internal/version.version"] == "v3.19.5"
    for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        assert flags[f"{package}.k8sVersionMajor"] == "1"
        assert flags[f"{package}.k8sVersionMinor"] == "34"


# --- go.mod rewriting (the collection's, shared with the tools role's go method) ----------

def test_the_go_mod_rewriting_is_the_collections():
    from ansible_collections.cloudnet.cilium_eks.plugins.module_utils import cli_tools

    for name in ("rewrite_replaces", "render_go_mod", "merge_go_sums", "newest_go_version",
                 "kubernetes_staging_version"):
        assert getattr(gobuild, name) is getattr(cli_tools, name), name


def test_local_staging_replaces_become_published_modules():
    kubernetes = _go_mod(
        "k8s.io/kubernetes",
        requires=[("k8s.io/api", "v0.0.0"), ("k8s.io/apiserver", "v0.0.0")],
        replaces=[
            ({"Path": "k8s.io/api"}, {"Path": "./staging/src/k8s.io/api"}),
            ({"Path": "k8s.io/apiserver"}, {"Path": "./staging/src/k8s.io/apiserver"}),
        ],
    )
    assert gobuild.rewrite_replaces([kubernetes], "v1.34.4", sibling_version="v0.34.4") == [
        ("k8s.io/api", "k8s.io/api@v0.34.4"),
        ("k8s.io/apiserver", "k8s.io/apiserver@v0.34.4"),
    ]


def test_sibling_replaces_default_to_the_tool_version_and_guards_are_dropped():
    server = _go_mod(
        "go.etcd.io/etcd/server/v3",
        requires=[("go.etcd.io/etcd/api/v3", "v3.6.16")],
        replaces=[
            ({"Path": "go.etcd.io/etcd/api/v3"}, {"Path": "../api"}),
            ({"Path": "go.etcd.io/etcd"}, {"Path": "./FORBIDDEN_DEPENDENCY"}),
        ],
    )
    etcdctl = _go_mod(
        "go.etcd.io/etcd/etcdctl/v3",
        requires=[("go.etcd.io/etcd/api/v3", "v3.6.16"), ("go.etcd.io/etcd/server/v3", "v3.6.16")],
        replaces=[
            ({"Path": "go.etcd.io/etcd/api/v3"}, {"Path": "../api"}),
            ({"Path": "go.etcd.io/etcd/server/v3"}, {"Path": "../server"}),  # one of the targets
        ],
    )
    assert gobuild.rewrite_replaces([server, etcdctl], "v3.6.16") == [
        ("go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/api/v3@v3.6.16"),
    ]


def test_module_replaces_are_kept_with_their_versions():
    cilium = _go_mod(
        "github.com/cilium/cilium",
        replaces=[
            ({"Path": "sigs.k8s.io/controller-tools"},
             {"Path": "github.com/cilium/controller-tools", "Version": "v0.16.5-1"}),
            ({"Path": "example.com/old", "Version": "v1.0.0"},
             {"Path": "example.com/new", "Version": "v1.0.1"}),
        ],
    )
    assert gobuild.rewrite_replaces([cilium], "v1.20.2") == [
        ("example.com/old@v1.0.0", "example.com/new@v1.0.1"),
        ("sigs.k8s.io/controller-tools", "github.com/cilium/controller-tools@v0.16.5-1"),
    ]


def test_conflicting_replaces_are_an_error():
    first = _go_mod("a.example/one", replaces=[({"Path": "x.example/m"}, {"Path": "fork.example/m", "Version": "v1"})])
    second = _go_mod("a.example/two", replaces=[({"Path": "x.example/m"}, {"Path": "fork.example/m", "Version": "v2"})])
    with pytest.raises(ValueError, match="x.example/m"):
        gobuild.rewrite_replaces([first, second], "v1.0.0")


def test_render_go_mod():
    text = gobuild.render_go_mod(
        "etcd", "1.26.0",
        {"go.etcd.io/etcd/server/v3": "v3.6.16"},
        [("go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/api/v3@v3.6.16"),
         ("example.com/old@v1.0.0", "example.com/new@v1.0.1")],
    )
    assert text.splitlines() == [
        "module cilium-eks.local/etcd", "",
        "go 1.26.0", "",
        "require (", "\tgo.etcd.io/etcd/server/v3 v3.6.16", ")", "",
        "replace (",
        "\tgo.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.6.16",
        "\texample.com/old v1.0.0 => example.com/new v1.0.1",
        ")",
    ]


def test_merge_go_sums_dedupes_and_sorts():
    a = "b.example/m v1 h1:x=\na.example/m v1/go.mod h1:y=\n"
    b = "a.example/m v1/go.mod h1:y=\n\n"
    assert gobuild.merge_go_sums([a, b]) == "a.example/m v1/go.mod h1:y=\nb.example/m v1 h1:x=\n"
    assert gobuild.merge_go_sums([]) == ""


def test_newest_go_version():
    docs = [_go_mod("a", go="1.24.0"), _go_mod("b", go="1.26.0"), _go_mod("c", go="1.9")]
    assert gobuild.newest_go_version(docs) == "1.26.0"


def test_stderr_tail_keeps_last_lines():
    assert gobuild.stderr_tail("\n".join(str(i) for i in range(100)), lines=3) == "97\n98\n99"


# --- recipe table ----------------------------------------------------------------------

def test_recipes_start_with_kwok_and_are_complete():
    names = list(gobuild.RECIPES)
    assert names[0] == "kwok"
    assert set(names) >= {"kwok", "etcd", "kubernetes", "helm", "cilium-cli", "eksctl"}
    for recipe in gobuild.RECIPES.values():
        if recipe.unavailable:
            continue
        assert recipe.version and recipe.modules and recipe.binaries
        for package in recipe.binaries.values():
            assert any(package == m or package.startswith(m + "/") for m in recipe.modules)


def test_eksctl_recipe_builds_the_weaveworks_module_as_a_release():
    recipe = gobuild.RECIPES["eksctl"]
    assert recipe.modules == ("github.com/weaveworks/eksctl",)
    assert recipe.binaries == {"eksctl": "github.com/weaveworks/eksctl/cmd/eksctl"}
    stamps = gobuild.resolve_ldflags(recipe.ldflags, build_date="2026-03-30T07:52:23Z", git_commit="02674beb75c9")
    assert stamps == {"github.com/weaveworks/eksctl/pkg/version.PreReleaseID": "",
                      "github.com/weaveworks/eksctl/pkg/version.gitCommit": "02674beb75c9",
                      "github.com/weaveworks/eksctl/pkg/version.buildDate": "2026-03-30T07:52:23Z"}
    assert recipe.exact_version_output and recipe.version_args == {"eksctl": ("version",)}


def test_short_commit_from_the_proxy_info():
    info = {"Version": "v0.225.0", "Origin": {"VCS": "git", "Hash": "02674beb75c9346abcef72f9c1e755115f85db29"}}
    assert gobuild.short_commit(info) == "02674beb75c9"
    assert gobuild.short_commit({"Version": "v1.0.0"}) == ""


@pytest.mark.parametrize("suffix, passes", [("", True), ("-dev", False),
                                            ("-dev+02674beb75c9.2026-03-30T07:52:23Z", False)])
def test_eksctl_smoke_check_wants_the_exact_release(monkeypatch, tmp_path, suffix, passes):
    """What `eksctl version` prints with the release stamps (0.225.0) and without (0.225.0-dev...)."""
    recipe = gobuild.RECIPES["eksctl"]
    bare = recipe.version.lstrip("v")
    monkeypatch.setattr(gobuild, "_run", lambda tool, argv, **kwargs: f"{bare}{suffix}\n")
    if passes:
        assert gobuild._smoke_check(recipe, "eksctl", tmp_path / "eksctl") == bare
    else:
        with pytest.raises(gobuild.GoBuildError, match=f"not exactly {recipe.version}"):
            gobuild._smoke_check(recipe, "eksctl", tmp_path / "eksctl")


def test_fingerprint_follows_the_ldflags():
    recipe = gobuild.RECIPES["kwok"]
    changed = gobuild.Recipe(**{**recipe.__dict__, "ldflags": {"x.y": "z"}})
    assert changed.fingerprint() != recipe.fingerprint()


def test_unavailable_tool_raises_with_its_reason(monkeypatch):
    recipe = gobuild.Recipe(name="nope", version=None, modules=("example.com/nope",), binaries={},
                            unavailable="unavailable: the proxy refuses example.com/nope (403)")
    monkeypatch.setitem(gobuild.RECIPES, "nope", recipe)
    assert "403" in gobuild.unavailable_reason("nope")
    with pytest.raises(gobuild.ToolUnavailable, match="403"):
        gobuild.ensure("nope")


def test_build_without_only_skips_the_on_demand_recipes(monkeypatch, capsys):
    """`make platform` builds the default Cilium (the one the tests run), not the other versions."""
    default, other = (gobuild.cilium_tool(v) for v in versions.CILIUM_AGENTS[:2])
    assert not gobuild.RECIPES[default].on_demand and gobuild.RECIPES[other].on_demand
    built = []
    monkeypatch.setattr(gobuild, "ensure", lambda name: built.append(name) or {})
    monkeypatch.setattr(gobuild, "prefetch", lambda recipe: None)
    gobuild.ensure_all()
    assert default in built and other not in built
    assert f"{other}: built on first use" in capsys.readouterr().out
    built.clear()
    gobuild.ensure_all([other])
    assert built == [other]


def test_the_next_missing_tools_download_while_one_builds(monkeypatch, capsys):
    """ensure_all builds one tool after another; a thread meanwhile prefetches the following missing tools in
    order (the first one's build downloads by itself, cached ones need nothing); a failed prefetch only says so."""
    import threading

    cached = {"etcd"}
    monkeypatch.setattr(gobuild, "_cached", lambda recipe: {"bin": "path"} if recipe.name in cached else None)
    prefetched, built, second_fetched = [], [], threading.Event()

    def prefetch(recipe):
        prefetched.append(recipe.name)
        if recipe.name == "kubernetes":
            second_fetched.set()
        if recipe.name == "helm":
            raise gobuild.GoBuildError("helm", ["go", "list", "-deps", "helm.sh/helm/v3/cmd/helm"], 1, "proxy: 503")

    def ensure(name):
        if name == "kwok":  # the first build is still running while the next tools download
            assert second_fetched.wait(timeout=10)
        built.append(name)
        return {}

    monkeypatch.setattr(gobuild, "prefetch", prefetch)
    monkeypatch.setattr(gobuild, "ensure", ensure)
    assert list(gobuild.ensure_all(["kwok", "etcd", "kubernetes", "helm", "cilium-cli"])) == \
        ["kwok", "etcd", "kubernetes", "helm", "cilium-cli"]
    assert built == ["kwok", "etcd", "kubernetes", "helm", "cilium-cli"]
    assert prefetched == ["kubernetes", "helm", "cilium-cli"]
    assert "helm v3" in capsys.readouterr().err  # said, and the builds went on


def test_prefetch_lists_the_packages_of_the_throwaway_module_and_builds_nothing(monkeypatch):
    recipe = gobuild.RECIPES["helm"]
    commands = []
    monkeypatch.setattr(gobuild, "_write_module", lambda recipe, module_dir: commands.append(["write", module_dir]))
    monkeypatch.setattr(gobuild, "_run", lambda tool, argv, cwd=None, timeout=None: commands.append(argv) or "")
    gobuild.prefetch(recipe)
    scratch = commands[0][1]
    assert not scratch.exists()  # a throwaway folder
    assert commands[1:] == [["go", "list", "-deps", package] for package in recipe.binaries.values()]


def test_unknown_tool_is_a_key_error():
    with pytest.raises(KeyError, match="known"):
        gobuild.ensure("no-such-tool")


# --- cache -----------------------------------------------------------------------------

def _fake_install(recipe, fingerprint=None):
    for path in gobuild._binary_paths(recipe).values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    record = {"fingerprint": fingerprint or recipe.fingerprint()}
    (gobuild._install_dir(recipe) / "build.json").write_text(json.dumps(record))


def test_warm_ensure_runs_no_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CILIUM_EKS_CACHE", str(tmp_path))
    recipe = gobuild.RECIPES["kwok"]
    _fake_install(recipe)

    def no_commands(*args, **kwargs):
        raise AssertionError(f"ran a command on a warm cache: {args}")

    monkeypatch.setattr(subprocess, "run", no_commands)
    paths = gobuild.ensure("kwok")
    assert set(paths) == set(recipe.binaries)
    assert all(path.is_relative_to(tmp_path / "tools") for path in paths.values())
    assert "cached" in capsys.readouterr().out


def test_stale_or_partial_entries_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("CILIUM_EKS_CACHE", str(tmp_path))
    recipe = gobuild.RECIPES["kwok"]
    assert gobuild._cached(recipe) is None
    _fake_install(recipe, fingerprint="from-an-older-recipe")
    assert gobuild._cached(recipe) is None
    _fake_install(recipe)
    assert gobuild._cached(recipe) is not None
    next(iter(gobuild._binary_paths(recipe).values())).unlink()
    assert gobuild._cached(recipe) is None


def test_build_failure_names_tool_command_and_stderr():
    error = gobuild.GoBuildError("etcd", ["go", "build", "-o", "out dir/etcd", "pkg"], 1, "a\nb\nboom")
    message = str(error)
    assert message.startswith("etcd: ")
    assert "go build -o 'out dir/etcd' pkg" in message
    assert message.rstrip().endswith("boom")


def test_main_build_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gobuild.main_build(["--only", "no-such-tool"])
    assert exit_info.value.code == 2


def test_chainings_real_pieces_are_recipes_built_on_first_use():
    """The operator of chaining's cluster-pool IPAM, the AWS VPC CNI and the CNI plugins it ships: built by the first
    sandbox whose pods run them, never by a plain `make platform`; the Cilium recipe itself is left as it was (no
    rebuild of the cached agents)."""
    generic = gobuild.RECIPES["cilium-operator-generic"]
    cilium = gobuild.RECIPES[gobuild.cilium_tool(versions.CILIUM_AGENTS[0])]
    assert generic.on_demand and generic.version == cilium.version and generic.extra_replaces == cilium.extra_replaces
    assert generic.binaries == {"cilium-operator-generic": "github.com/cilium/cilium/operator"}
    assert generic.build_tags["cilium-operator-generic"] == ("osusergo", "ipam_provider_operator")
    assert generic.ldflags == cilium.ldflags and "cilium-operator-generic" not in cilium.binaries
    vpc_cni, plugins = gobuild.RECIPES["aws-vpc-cni"], gobuild.RECIPES["cni-plugins"]
    assert vpc_cni.on_demand and plugins.on_demand and vpc_cni.version == versions.AWS_VPC_CNI
    assert vpc_cni.binaries["aws-k8s-agent"].endswith("/cmd/aws-k8s-agent")
    assert vpc_cni.module_dirs["config"] == "config/master" and plugins.version == versions.CNI_PLUGINS


def test_the_compilers_gc_waits_for_the_memory_limit_unless_the_caller_says_otherwise(monkeypatch):
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    env = gobuild._go_env()
    assert (env["GOGC"], env["GOMEMLIMIT"]) == ("off", "4GiB")
    monkeypatch.setenv("GOGC", "200")
    assert gobuild._go_env()["GOGC"] == "200"


def test_compiles_run_on_one_thread_each_and_two_per_core_at_once(monkeypatch):
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    assert gobuild._go_env()["GOMAXPROCS"] == "1"
    monkeypatch.setenv("GOMAXPROCS", "3")
    assert gobuild._go_env()["GOMAXPROCS"] == "3"
    gib = 1 << 30
    sysconf = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 24 * gib // 4096}
    monkeypatch.setattr(gobuild.os, "sysconf", sysconf.get)
    monkeypatch.setattr(gobuild.os, "sched_getaffinity", lambda pid: {0, 1})
    assert gobuild.build_parallelism() == 4  # this machine: 2 cores, 24 GiB
    monkeypatch.setattr(gobuild.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert gobuild.build_parallelism() == 6  # 16 cores, but 6 compiles of 4 GiB fill 24 GiB
    sysconf["SC_PHYS_PAGES"] = 2 * gib // 4096
    assert gobuild.build_parallelism() == 1


@pytest.mark.parametrize("package, name", [
    ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
    ("github.com/cilium/cilium/daemon", "daemon"),
    ("go.etcd.io/etcd/etcdctl/v3", "etcdctl"),
    ("go.etcd.io/etcd/server/v3", "server"),
    ("example.com/tool/v1", "v1"),  # v0 and v1 are not major-version suffixes
    ("example.com/tool/v0", "v0"),
    ("example.com/tool/vx2", "vx2"),
    ("v2", "v2"),
])
def test_the_file_go_build_writes_a_main_package_to(package, name):
    assert gobuild.go_executable_name(package) == name


def test_one_go_command_per_set_of_build_tags_in_recipe_order():
    groups = gobuild.build_groups(gobuild.RECIPES[gobuild.cilium_tool(versions.CILIUM_AGENTS[0])])
    assert [(tags, list(group)) for tags, group in groups] == [
        (("osusergo",), ["cilium-agent", "cilium-dbg", "cilium-cni", "cilium-health-responder"]),
        (("osusergo", "ipam_provider_aws"), ["cilium-operator-aws"]),
    ]
    kubernetes = gobuild.build_groups(gobuild.RECIPES["kubernetes"])
    assert kubernetes == [((), dict(gobuild.RECIPES["kubernetes"].binaries))]


def test_packages_go_build_would_write_to_the_same_file_go_to_separate_commands():
    recipe = gobuild.Recipe(name="t", version="v1.0.0", modules=("example.com/t",), binaries={
        "server-a": "example.com/a/server/v3", "server-b": "example.com/b/server", "client": "example.com/a/client"})
    assert [list(binaries) for tags, binaries in gobuild.build_groups(recipe)] == [["server-a", "client"], ["server-b"]]


def test_a_build_runs_one_go_command_per_group_and_names_the_binaries_as_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("CILIUM_EKS_CACHE", str(tmp_path))
    recipe = gobuild.Recipe(name="t", version="v1.0.0", modules=("example.com/t",), binaries={
        "t-server": "example.com/t/cmd/server/v2", "t-ctl": "example.com/t/cmd/ctl", "t-op": "example.com/t/op"},
        build_tags={"t-op": ("aws",)})
    monkeypatch.setattr(gobuild, "_write_module", lambda recipe, module_dir: ([tmp_path], ["2026-01-02T03:04:05Z"],
                                                                              ["abcdef12"]))
    monkeypatch.setattr(gobuild, "build_parallelism", lambda: 4)
    builds = []

    def run(tool, argv, cwd=None, timeout=None):
        if argv[:2] == ["go", "build"]:
            builds.append(argv)
            out_dir = gobuild.Path(argv[argv.index("-o") + 1])
            out_dir.mkdir()
            for package in argv[argv.index("-o") + 2:]:
                (out_dir / gobuild.go_executable_name(package)).write_text(package)
        return ""

    monkeypatch.setattr(gobuild, "_run", run)
    paths = gobuild._build(recipe)
    assert [argv[:5] for argv in builds] == [["go", "build", "-trimpath", "-p", "4"]] * 2
    assert builds[0][builds[0].index("-o") + 2:] == ["example.com/t/cmd/server/v2", "example.com/t/cmd/ctl"]
    assert "-tags" not in builds[0] and builds[1][5:7] == ["-tags", "aws"]
    assert builds[0][builds[0].index("-o") + 1].endswith("/")  # a folder: go build writes each binary in it
    assert {binary: path.read_text() for binary, path in paths.items()} == dict(recipe.binaries)
