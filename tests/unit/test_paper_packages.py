"""A paper package imports light (its optimizers without Lightning), names each claim's experiment by a function
whose target exists, and has its row and usage line in the top-level README."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import textwrap

from reproduce.registry import all_papers, paper_ids, repo_root


def test_importing_every_paper_loads_neither_lightning_nor_matplotlib():
    code = textwrap.dedent(f"""
        import importlib, sys
        for name in {list(paper_ids())!r}:
            importlib.import_module("papers." + name)
        heavy = sorted(m for m in ("lightning", "lightning.pytorch", "matplotlib", "torchvision") if m in sys.modules)
        print(",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _target(run) -> tuple[str, str]:
    """``(module, function)`` that a paper's ``run`` wrapper imports and calls."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(run)))
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Return)]
    assert len(imports) == 1 and len(calls) == 1, run.__qualname__
    module = f"{imports[0].module}.{imports[0].names[0].name}"
    call = calls[0].value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute), run.__qualname__
    return module, call.func.attr


def test_every_claim_runs_a_function_of_its_paper_that_reaches_an_experiment():
    for paper in all_papers():
        for claim in paper.claims:
            assert claim.run.__module__ == paper.package, f"{paper.id} {claim.id}"
            module, function = _target(claim.run)
            assert module.startswith(paper.package + "."), f"{paper.id} {claim.id}: {module}"
            assert callable(getattr(importlib.import_module(module), function)), f"{paper.id} {claim.id}"


def test_the_readme_lists_every_paper_in_its_table_and_usage_block():
    readme = (repo_root() / "README.md").read_text()
    for paper in all_papers():
        assert f"| `{paper.id}` |" in readme, f"{paper.id} has no row in the README's papers table"
        assert f"from papers.{paper.id} import " in readme, f"{paper.id} is missing from the README's usage block"
