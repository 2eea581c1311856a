"""`reproduce table`: RESULTS.md and each paper README's generated block; `reproduce report`: the static HTML page
(results/report/index.html). Both from the reference records and the same table data."""

from __future__ import annotations

import html
import os
from pathlib import Path

from common.results.record import load_record
from common.results.table import claim_entries, paper_block, replace_block, results_markdown
from reproduce.registry import all_papers, repo_root


def reference_records(reference: Path, paper_id: str) -> list[tuple[Path, dict]]:
    """The finished records of one paper, in claim order (a partial file is an error, not skipped)."""
    folder = reference / paper_id
    if not folder.is_dir():
        return []
    records = [(p, load_record(p)) for p in sorted(folder.glob("*.json"))]
    return sorted(records, key=lambda pr: pr[1]["claim"])


def write_tables(reference: Path | None = None) -> list[Path]:
    root = repo_root()
    reference = reference or root / "results" / "reference"
    entries = []
    written = []
    for paper in all_papers():
        records = reference_records(reference, paper.id)
        entries.append((paper, records))
        readme = root / "papers" / paper.id / "README.md"
        text = readme.read_text() if readme.exists() else f"# {paper.title}\n"
        readme.write_text(replace_block(text, paper_block(paper, records, root, readme.parent)))
        written.append(readme)
    results = root / "RESULTS.md"
    results.write_text(results_markdown(entries, root) + "\n")
    written.append(results)
    compare = root / "results" / "compare" / "cpu"
    if compare.is_dir():  # the committed comparison: its leaderboard and COMPARE.md, rebuilt from the cell records
        from reproduce.compare.runner import rebuild

        paths = rebuild(compare, page=root / "COMPARE.md")
        written += [paths["md"], paths["page"]]
    return written


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2.5rem; }
table { border-collapse: collapse; width: 100%; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.35rem 0.5rem; vertical-align: top; text-align: left; }
th { background: #f4f4f4; } .verdict { white-space: nowrap; font-weight: 600; }
.reproduced { color: #17692b; } .partially-reproduced { color: #8a6d00; } .not-reproduced { color: #a11; }
.contradicted { color: #7a0a0a; } .plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 520px; } figure img { width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; } pre { background: #f7f7f7; padding: 0.7rem; overflow-x: auto; }
.links a { margin-right: 0.6rem; } .small { font-size: 0.85rem; color: #555; }
"""


def _claim_html(e: dict) -> str:
    esc = html.escape
    reasons = "".join(f"<li>{esc(r)}</li>" for r in e["reasons"])
    plots = "".join(f'<figure><a href="{esc(src)}"><img src="{esc(src)}" alt="{esc(e["claim"])} {esc(name)}">'
                    f"</a><figcaption>{esc(e['claim'].upper())}: {esc(name)}</figcaption></figure>"
                    for name, src in e["plots"].items())
    prov = e["provenance"]
    made = (f"git {str(prov.get('git_commit') or '?')[:10]}{' (dirty)' if prov.get('git_dirty') else ''}, "
            f"torch {prov.get('torch', '?')}, {prov.get('device', '?')}, {prov.get('date', '?')}")
    return f"""
<h3 id="{esc(e['anchor'])}">{esc(e['claim'].upper())} {esc(e['title'])}</h3>
<table>
<tr><th>Paper</th><td>{esc(e['paper_result'])} <span class="small">({esc(e['source'])})</span></td></tr>
<tr><th>Ours</th><td>{esc(e['headline'])} <span class="small">(preset {esc(e['preset'])}, seeds
 {esc(', '.join(map(str, e['seeds'])))}; {e['wall_min']:.1f} min)</span></td></tr>
<tr><th>Verdict</th><td class="verdict {esc(e['verdict'].replace(' ', '-'))}">{esc(e['badge'])}</td></tr>
<tr><th>Metric / rule</th><td>{esc(e['metric'])}<br><span class="small">{esc(e['rule'])}</span></td></tr>
<tr><th>Checks</th><td><ul>{reasons}</ul></td></tr>
<tr><th>Evidence</th><td class="links"><a href="{esc(e['record'])}">record</a>
 <a href="{esc(e['config'])}">config</a><span class="small">{esc(made)}</span></td></tr>
</table>
<div class="plots">{plots}</div>
"""


def write_report(out_dir: Path | None = None, reference: Path | None = None) -> Path:
    """``out_dir/index.html`` (default results/report): every claim of every paper from the reference records,
    paper vs ours, verdict, plots, config and record links and BibTeX. Static: links are relative to the page."""
    root = repo_root()
    reference = reference or root / "results" / "reference"
    out_dir = (out_dir or root / "results" / "report").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    summary_rows, sections = [], []
    for paper in all_papers():
        records = reference_records(reference, paper.id)
        entries = claim_entries(paper, records, root, out_dir)
        claims = ""
        for e in entries:
            e["anchor"] = f"{paper.id}-{e['claim']}"
            summary_rows.append(
                f'<tr><td><a href="#{esc(e["anchor"])}">{esc(paper.id)} {esc(e["claim"].upper())}</a></td>'
                f"<td>{esc(e['title'])}</td><td>{esc(e['paper_result'])}</td><td>{esc(e['headline'])}</td>"
                f'<td class="verdict {esc(e["verdict"].replace(" ", "-"))}">{esc(e["badge"])}</td></tr>')
            claims += _claim_html(e)
        if not entries:
            claims = "<p>No reference record yet.</p>"
            summary_rows.append(f"<tr><td>{esc(paper.id)}</td><td colspan=4>no reference record yet</td></tr>")
        readme = Path(os.path.relpath(root / "papers" / paper.id / "README.md", out_dir)).as_posix()
        sections.append(f"""
<h2 id="{esc(paper.id)}">{esc(paper.title)} (<code>{esc(paper.id)}</code>)</h2>
<p class="links"><a href="{esc(paper.arxiv_url)}">arXiv:{esc(paper.arxiv)}</a>
<a href="{esc(paper.code_url)}">official code</a> (commit {esc(str(paper.code_commit))})
<a href="{esc(readme)}">our README</a></p>
{claims}
<details><summary>BibTeX</summary><pre>{esc(paper.bibtex.strip())}</pre></details>
""")
    compare_md = root / "results" / "compare" / "cpu" / "leaderboard.md"
    compare_link = ""
    if compare_md.is_file():
        from reproduce.compare.page import write_compare_page

        write_compare_page(compare_md, out_dir, _STYLE)
        compare_link = ('<p><a href="compare.html">Cross-paper comparison</a>: every optimizer of the repo tuned '
                        "alike on shared workloads (<code>reproduce compare</code>).</p>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>optrepro: results</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>optrepro: reproduction results</h1>
<p class="small">Generated by <code>reproduce report</code> from the committed records in results/reference.
Every verdict is computed from the run by the claim's rule; nothing here is typed in.</p>
{compare_link}
<table><tr><th>Claim</th><th>Title</th><th>Paper</th><th>Ours</th><th>Verdict</th></tr>
{''.join(summary_rows)}
</table>
{''.join(sections)}
</body></html>
"""
    path = out_dir / "index.html"
    tmp = path.with_suffix(".html.partial")
    tmp.write_text(page)
    os.replace(tmp, path)
    return path
