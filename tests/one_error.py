"""The CLI's bad-input contract, shared by the CLI tests: a failing command prints exactly one ``error:`` line, as
its last line, with no traceback."""

from __future__ import annotations

import pytest

from reproduce.cli import main


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str], *, code: int | None = None,
                   alone: bool = False) -> str:
    """Run ``reproduce argv`` and return its single error line; ``code``: the exit status it must give (else any
    non-zero one); ``alone``: stderr must hold nothing else."""
    status = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == code if code is not None else status != 0, (status, err)
    errors = [line for line in err if line.startswith("error")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert not any("Traceback" in line for line in err), err
    assert not alone or len(err) == 1, err
    return errors[0]
