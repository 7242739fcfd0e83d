"""Time a cold build of the local platform: every Go tool and Cilium chart from nothing.

Points the tool cache, Go's module cache and Go's build cache at a fresh temporary folder, so
nothing built before is reused, then runs what ``make platform`` runs and prints the wall time of
each step. The folder is removed afterwards. Usage: ``make bench-cold`` (takes 15-30 minutes).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def timed(argv, env):
    started = time.monotonic()
    subprocess.run(argv, env=env, cwd=REPO_ROOT, check=True)
    return round(time.monotonic() - started, 1)


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="cilium-eks-cold-"))
    env = dict(os.environ, CILIUM_EKS_CACHE=str(scratch / "cache"), GOMODCACHE=str(scratch / "gomod"),
               GOCACHE=str(scratch / "gobuild"), PYTHONPATH=str(REPO_ROOT / "tests" / "platform"))
    try:
        results = {
            "go tools (python -m eks_sandbox build)": timed([sys.executable, "-m", "eks_sandbox", "build"], env),
            "cilium charts (python -m eks_sandbox charts)": timed([sys.executable, "-m", "eks_sandbox", "charts"], env),
        }
        warm_started = time.monotonic()
        subprocess.run([sys.executable, "-m", "eks_sandbox", "build"], env=env, cwd=REPO_ROOT, check=True,
                       capture_output=True)
        results["warm re-run of build (cached)"] = round(time.monotonic() - warm_started, 2)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(scratch)], check=False)  # Go's module cache is read-only
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'step':<48} {'seconds':>8}")
    for step, seconds in results.items():
        print(f"{step:<48} {seconds:>8}")
    print(json.dumps({"cpus": os.cpu_count(), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
