"""A Python swarm talking to a JS hyperswarm 4.17 peer in a private network namespace."""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
JS = os.path.join(ROOT, "tests", "interop", "js")
NETNS = os.path.join(ROOT, "tests", "interop", "netns.sh")


def test_python_swarm_with_js_hyperswarm_in_netns():
    if os.environ.get("P2PSWARM_SKIP_NETNS") == "1":
        pytest.skip("P2PSWARM_SKIP_NETNS=1")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace (tests/interop/netns.sh)")
    if not os.path.exists(NETNS):
        pytest.skip("tests/interop/netns.sh not found (run from a source checkout)")
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not found: the JS reference peer cannot run")
    if not os.path.isdir(os.path.join(JS, "node_modules")):
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True, timeout=300
        )
    p = subprocess.run(
        [NETNS, "--", sys.executable, os.path.join(HERE, "js_interop_driver.py"), JS],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if p.returncode == 4:
        pytest.skip(f"network namespaces are not permitted here: {p.stderr.strip()}")
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    assert "ok: python <-> js (server side js)" in p.stdout
    assert "ok: python <-> js (client side js)" in p.stdout
