"""nox sessions. They run in the environment `./bootstrap` prepares (venv_backend "none"), so torch is
installed once, explicitly, instead of once per session:  ./bootstrap nox -s tests"""

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]


# Two pytest-xdist workers (a 2-core box; more only with more cores: nox -s tests -- -n 4). loadgroup keeps tests
# that share a module-scoped fixture (xdist_group marks) on one worker; the rest are balanced test by test.
XDIST = ("-n", "2", "--dist", "loadgroup")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (unit, papers' smoke presets, CLI, slow and distributed tests included). GPU tests need
    CUDA and say so."""
    session.run("python", "-m", "pytest", "-q", *XDIST, *session.posargs)


@nox.session
def quick(session: nox.Session) -> None:
    """The inner loop: tests/unit without the slow, smoke and distributed tests (nox -s tests runs everything, the
    CLI tests included). Extra arguments go to pytest, e.g. nox -s quick -- -k radam."""
    session.run("python", "-m", "pytest", "-q", *XDIST, "-m", "not slow and not smoke and not distributed and not gpu",
                "tests/unit", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("ruff", "check", "common", "papers", "reproduce", "tests", "noxfile.py")


@nox.session
def regression(session: nox.Session) -> None:
    """Rerun every committed reference record's config (or a subset: nox -s regression -- radam sophia/s1), print
    the table (paper, claim, metric, reference, now, delta, tolerance, within, verdict unchanged) and fail on
    drift beyond the claim's tolerance or a changed verdict."""
    session.run("python", "-m", "reproduce", "regress", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Time every optimizer and implementation (default: tiny shapes); writes results/bench/. Reports, never fails
    on a time. Extra arguments go to `reproduce bench`, e.g. nox -s bench -- --shapes gpt2-small --steps 50."""
    session.run("python", "-m", "reproduce", "bench", *session.posargs)
