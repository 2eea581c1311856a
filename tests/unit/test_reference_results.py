"""The committed RESULTS.md and paper READMEs match what `reproduce table` builds from the records."""

from common.results.summary import Summary
from common.results.table import PRE_PROTOCOL, paper_block, results_markdown
from reproduce.registry import all_papers, repo_root
from reproduce.report import reference_records


def test_results_md_is_up_to_date_with_reference_records():
    root = repo_root()
    entries = [(p, reference_records(root / "results" / "reference", p.id)) for p in all_papers()]
    assert (root / "RESULTS.md").read_text() == results_markdown(entries, root) + "\n", \
        "RESULTS.md is stale: run `reproduce table`"
    for paper, records in entries:
        readme = root / "papers" / paper.id / "README.md"
        assert paper_block(paper, records, root, readme.parent) in readme.read_text(), \
            f"{readme} is stale: run `reproduce table`"


def test_every_paper_has_a_committed_cpu_reference_record():
    root = repo_root()
    for paper in all_papers():
        records = reference_records(root / "results" / "reference", paper.id)
        assert any(rec["preset"] == "cpu" for _, rec in records), f"{paper.id} has no cpu reference record"


def test_reference_verdicts_follow_from_their_summaries_under_the_current_rules():
    """A record made under the protocol is judged again by today's rule; one made before it must say so in every
    table that shows it (it cannot be judged by the protocol's rules)."""
    root = repo_root()
    results = (root / "RESULTS.md").read_text()
    for paper in all_papers():
        for path, rec in reference_records(root / "results" / "reference", paper.id):
            if rec.get("protocol") is None:
                row = next(line for line in results.splitlines() if f"]({path.relative_to(root).as_posix()})" in line)
                assert PRE_PROTOCOL in row, f"{path} predates the protocol but RESULTS.md does not say so"
                continue
            assert rec["verdict"] == paper.claim(rec["claim"]).judge(rec["summary"]).to_dict(), \
                f"{path}: the verdict rule changed since this record was made; rerun the preset"


def test_every_claim_judges_a_typed_summary():
    for paper in all_papers():
        for claim in paper.claims:
            assert claim.summary_type is not None and issubclass(claim.summary_type, Summary), \
                f"{paper.id} {claim.id} has no typed summary"


def test_reference_summaries_read_back_as_their_types_unchanged():
    """Each committed record's summary becomes its claim's typed summary and back into the same JSON, and the
    headline recomputed from it equals the record's."""
    root = repo_root()
    for paper in all_papers():
        for path, rec in reference_records(root / "results" / "reference", paper.id):
            claim = paper.claim(rec["claim"])
            typed = claim.summary_type.from_record(rec["summary"])
            assert typed.to_record() == rec["summary"], f"{path}: the summary does not round-trip"
            assert claim.headline(typed) == rec["headline"], f"{path}: the headline changed"


def test_every_tolerance_names_a_number_in_its_claims_reference_summary():
    """``reproduce regress`` bounds the drift of the summary fields a claim's tolerances name (dotted paths)."""
    from reproduce.regress import _get

    root = repo_root()
    for paper in all_papers():
        for path, rec in reference_records(root / "results" / "reference", paper.id):
            for key in paper.claim(rec["claim"]).tolerances:
                value = _get(rec["summary"], key)
                assert isinstance(value, (int, float)) and not isinstance(value, bool), \
                    f"{path}: tolerance {key!r} names no number in the summary"
