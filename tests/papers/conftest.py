"""One smoke run per paper per test session, shared by the generic and the paper-specific tests."""

from pathlib import Path

import pytest

from reproduce.cli import main


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """``smoke_run(paper_id) -> Path``: the output folder of ``reproduce <paper> --preset smoke``."""
    done: dict[str, Path] = {}

    def get(paper_id: str) -> Path:
        if paper_id not in done:
            out = tmp_path_factory.mktemp(f"{paper_id}-smoke")
            assert main([paper_id, "--preset", "smoke", "--out", str(out)]) == 0
            done[paper_id] = out
        return done[paper_id]

    return get
