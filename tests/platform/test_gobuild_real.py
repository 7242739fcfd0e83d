"""gobuild's go commands run for real: etcd (two binaries, both named by a major-version suffix the go command
strips: ``go.etcd.io/etcd/server/v3`` is written as ``server``) built again into a throwaway tool cache, on the Go
module and build caches the platform's build filled. It must give the cached binaries byte for byte: the grouped go
command and the compile settings (COMPILER_GC, COMPILER_THREADS) change nothing that is built."""
import hashlib
import shutil

import pytest

from eks_sandbox import cache, gobuild

CACHED = gobuild._cached(gobuild.RECIPES["etcd"])


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(CACHED is None or shutil.which("go") is None,
                    reason="etcd not built yet (python -m eks_sandbox build): a first build here would be a cold one")
def test_a_real_grouped_build_gives_the_cached_binaries(tmp_path, monkeypatch):
    recipe = gobuild.RECIPES["etcd"]
    assert len(gobuild.build_groups(recipe)) == 1  # one go command for both binaries
    monkeypatch.setenv("CILIUM_EKS_CACHE", str(tmp_path))
    built = gobuild._build(recipe)
    assert cache.cache_root() == tmp_path and set(built) == {"etcd", "etcdctl"}
    assert {name: sha256(path) for name, path in built.items()} == {name: sha256(path) for name, path in CACHED.items()}
