"""One smoke run per paper per test session, shared by the generic and the paper-specific tests."""

import os
from pathlib import Path

import pytest
from filelock import FileLock

from reproduce.cli import main


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """``smoke_run(paper_id) -> Path``: the output folder of ``reproduce <paper> --preset smoke``.

    Under pytest-xdist each worker has its own session, so the run is shared through the folder all workers of
    this pytest run have in common (a lock per paper: the first worker runs it, the others wait and read it);
    without xdist that folder is this session's own basetemp."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/popen-gwK -> pytest-N: this run's, never an earlier run's
    done: dict[str, Path] = {}

    def get(paper_id: str) -> Path:
        if paper_id not in done:
            out = root / f"{paper_id}-smoke"
            with FileLock(str(root / f"{paper_id}-smoke.lock")):
                if not (root / f"{paper_id}-smoke.ok").exists():
                    assert main([paper_id, "--preset", "smoke", "--out", str(out)]) == 0
                    (root / f"{paper_id}-smoke.ok").touch()
            done[paper_id] = out
        return done[paper_id]

    return get
