"""The suite leans on pytest-xdist's ``--dist loadgroup`` (nox -s tests) to keep tests that share an expensive
module fixture, or one rule's compiled graphs, on one worker. A pytest or xdist upgrade can break that silently
(pytest 9.2 did: every group was scattered), costing minutes and nothing else, so this runs a tiny suite, a group
beside ungrouped tests, on two workers and asserts the group lands on one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GROUPED = '''
import os
import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    with open(os.environ["WORKERS_FILE"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
'''

FREE = '''
import time
import pytest


@pytest.mark.parametrize("i", range(6))
def test_free(i):
    time.sleep(0.05)
'''


def test_an_xdist_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_free.py").write_text(FREE)
    workers = tmp_path / "workers.txt"
    # only xdist among the installed plugins (the others cost a second a worker to load)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "xdist",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                          env={**os.environ, "WORKERS_FILE": str(workers), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
                          cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    seen = workers.read_text().split()
    assert len(seen) == 6 and len(set(seen)) == 1, f"the group ran on {sorted(set(seen))}"
