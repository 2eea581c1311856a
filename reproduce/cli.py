"""`reproduce`: run a paper's headline claims, list papers, rebuild the results tables, cite.

    reproduce list
    reproduce <paper> [claim ...] [--preset P|FILE.yaml] [--seeds N] [--out DIR] [--resume] [key=value ...]
    reproduce <paper> [claim ...] --preset gpu|paper --dry-run    plan (runs, tokens, GPU-hours) + 2 steps per arm
    reproduce table
    reproduce cite <paper>
    reproduce report [--out DIR]                      static HTML results page (results/report/index.html)
    reproduce regress [paper[/claim] ...] [--reference DIR]   (also: nox -s regression -- paper/claim ...)
    reproduce bench [--optimizers ...] [--shapes tiny|gpt2-small] [--impl ...] [--steps N]
    reproduce prepare <dataset|PATH> --out DIR [--max-tokens N] [--tokenizer gpt2|t5]   token shards for LM presets
    reproduce compare [--optimizers ...] [--workloads ...] [--preset smoke|cpu|gpu] [--optimizer pkg.mod:Cls
                      [--hparams FILE]] [--out DIR] [--resume] [--jobs N] [--list]   every optimizer on shared
                      workloads
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.errors import ConfigError, OptreproError

COMMANDS = ("list", "table", "cite", "regress", "report", "bench", "prepare", "compare")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every mistake is one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message} (see reproduce --help)")


def _cmd_list(args: argparse.Namespace) -> int:
    from reproduce.registry import all_papers

    for paper in all_papers():
        print(f"{paper.id:12s} {paper.title} (arXiv:{paper.arxiv})")
        presets = paper.presets()
        from common.config import load_yaml

        claims_by_preset = {p: set(load_yaml(paper.configs_dir() / f"{p}.yaml").get("claims", {}))
                            for p in presets}
        for c in paper.claims:
            where = [p for p in presets if c.id in claims_by_preset[p]]
            print(f"  {c.id:4s} {c.title}  [presets: {', '.join(where)}]")
    return 0


def _cmd_cite(args: argparse.Namespace) -> int:
    from reproduce.registry import get_paper

    print(get_paper(args.paper).bibtex.strip())
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from reproduce.report import write_tables

    for path in write_tables(Path(args.reference) if args.reference else None):
        print(f"wrote {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from reproduce.report import write_report

    path = write_report(Path(args.out) if args.out else None, Path(args.reference) if args.reference else None)
    print(f"wrote {path}")
    return 0


def _cmd_regress(args: argparse.Namespace) -> int:
    from reproduce.regress import regress

    if args.resume and not args.out:
        raise ConfigError("--resume needs --out DIR, the output folder of the regression run to continue")
    return regress(args.papers, Path(args.reference) if args.reference else None,
                   Path(args.out) if args.out else None, resume=args.resume)


def _split(values: list[str] | None) -> list[str]:
    """``--x a b`` and ``--x a,b`` alike."""
    return [v for item in values or [] for v in item.split(",") if v]


def _cmd_bench(args: argparse.Namespace) -> int:
    from reproduce.bench import run_bench

    json_path, md_path, _ = run_bench(
        optimizers=_split(args.optimizers) or None, shapes=args.shapes, impls=_split(args.impl) or None,
        steps=args.steps, warmup=args.warmup, device=args.device, out_dir=Path(args.out),
        with_alternatives=not args.no_alternatives, rounds=args.rounds,
    )
    print(md_path.read_text())
    print(f"wrote {json_path}\nwrote {md_path}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from common.data.prepare import CORPORA, corpus_documents, get_encoder, prepare_tokens

    if args.source is not None and args.dataset not in CORPORA:
        raise ConfigError(f"--from gives the local copy of a named dataset ({', '.join(CORPORA)}); "
                          f"for local files alone use: reproduce prepare {args.source} --out DIR")
    texts, source = corpus_documents(args.dataset, args.source, args.text_field)
    default = CORPORA[args.dataset].tokenizer if args.dataset in CORPORA else "gpt2"
    encoder = get_encoder(args.tokenizer or default)
    corpus = CORPORA.get(args.dataset)
    if corpus is not None and corpus.paper_tokenizer != encoder.name:
        encoder.note += (f"; the papers tokenized {args.dataset} with {corpus.paper_tokenizer} "
                         f"({corpus.used_by}): --tokenizer {corpus.paper_tokenizer} when it can be loaded")
        print(f"note: {args.dataset} is tokenized with {encoder.name}, not the papers' {corpus.paper_tokenizer} "
              "(recorded in the manifest)", file=sys.stderr)
    manifest = prepare_tokens(texts, encoder, Path(args.out), source=source, max_tokens=args.max_tokens,
                              shard_tokens=args.shard_tokens, val_fraction=args.val_fraction,
                              checkpoint_tokens=args.checkpoint_tokens, progress=not args.quiet)
    out = Path(args.out)
    if manifest.get("val_note"):
        print(f"note: {manifest['val_note']}", file=sys.stderr)
    print(f"wrote {sum(len(v) for v in manifest['shards'].values())} shards to {out}: "
          f"{manifest['tokens']} tokens ({manifest['dtype']}, {manifest['tokenizer']['name']}) from "
          f"{manifest['documents']} documents, sha256 {manifest['sha256'][:16]}\n"
          f"use it: reproduce <paper> <claim> claims.<claim>.data.corpus=tokens:{out}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from reproduce.compare.cli import compare

    if args.optimizers is not None:  # --x a b and --x a,b alike
        args.optimizers = _split(args.optimizers)
    args.workloads = _split(args.workloads)
    return compare(args)


def _cmd_run(argv: list[str]) -> int:
    from reproduce.registry import get_paper
    from reproduce.run import default_out_dir, default_preset, load_preset, run_claims, select_claims

    p = _Parser(prog="reproduce <paper>", description="Run a paper's claims at a preset.")
    p.add_argument("paper")
    p.add_argument("rest", nargs="*", metavar="claim|key=value")
    p.add_argument("--preset", default=None)
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    p.add_argument("--out", default=None, help="output folder (default runs/<paper>/<preset>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the killed run in --out: reuse its finished claims and runs, resume the "
                        "interrupted run from its last checkpoint")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (runs, steps, tokens or images, parameters, H100 GPU-hours) and run 2 steps "
                        "of every arm on shrunk data in a temporary folder; writes nothing else")
    args = p.parse_intermixed_args(argv)
    if args.dry_run and (args.resume or args.out):
        raise ConfigError("--dry-run writes only to a temporary folder: drop --resume/--out")
    if args.resume and not args.out:
        raise ConfigError("--resume needs --out DIR, the output folder of the run to continue")
    paper = get_paper(args.paper)
    preset = args.preset
    if preset is None:
        preset, why = default_preset()
        print(f"preset: {preset} (default: {why}; choose with --preset)", file=sys.stderr)
    overrides = [r for r in args.rest if "=" in r]
    wanted = [r for r in args.rest if "=" not in r]
    cfg = load_preset(paper, preset, overrides, args.seeds, keep_dry_run=args.dry_run)
    if args.dry_run:
        from reproduce.dry_run import dry_run, strip_dry_run

        dry = strip_dry_run(cfg)
        return dry_run(paper, select_claims(paper, cfg, preset, wanted), cfg, preset, dry)
    claims = select_claims(paper, cfg, preset, wanted)
    out = Path(args.out) if args.out else default_out_dir(paper, preset)
    if args.resume and not out.is_dir():
        raise ConfigError(f"--resume: {out} does not exist (nothing to continue; drop --resume to start)")
    runs = run_claims(paper, claims, cfg, preset, out, resume=args.resume)
    from reproduce.run import process_rank

    if process_rank():  # a DDP rank >= 1 (Lightning re-ran this command): rank 0 reports
        return 0
    print(f"\n{paper.title} ({paper.id}, preset {preset})")
    for r in runs:
        print(f"  {r.claim.id}: {r.verdict.label:22s} {r.headline}")
        print(f"        record: {r.record_path}")
    print(f"Cite: {paper.authors}, {paper.venue}. {paper.arxiv_url} (BibTeX: reproduce cite {paper.id})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    sub.add_parser("list", help="papers, their claims and presets")
    cite = sub.add_parser("cite", help="BibTeX of a paper")
    cite.add_argument("paper")
    table = sub.add_parser("table", help="rebuild RESULTS.md and paper READMEs from results/reference")
    table.add_argument("--reference", default=None)
    rep = sub.add_parser("report", help="write the static HTML results page (results/report/index.html)")
    rep.add_argument("--out", default=None, help="folder for index.html (default results/report)")
    rep.add_argument("--reference", default=None)
    reg = sub.add_parser("regress", help="rerun the reference records and compare within tolerance")
    reg.add_argument("papers", nargs="*", metavar="paper[/claim]", help="default: every paper's references")
    reg.add_argument("--reference", default=None)
    reg.add_argument("--out", default=None)
    reg.add_argument("--resume", action="store_true", help="continue a killed regression run in --out")
    bench = sub.add_parser("bench", help="time every optimizer step against fused AdamW and the bandwidth bound")
    bench.add_argument("--optimizers", nargs="+", default=None,
                       help="adamw radam adabelief mars-adamw mars-lion sophiag spam stablespam soap riemannian-adam "
                       "riemannian-sgd riemannian-adagrad (default: all; the riemannian ones on the wordnet shapes "
                       "only)")
    bench.add_argument("--shapes", default="tiny", help="tiny (3.3M params, 52 tensors) | gpt2-small (124M, 148) | "
                       "wordnet-5 / wordnet-10 (one 82,115 x d embedding table)")
    bench.add_argument("--impl", nargs="+", default=None,
                       help="reference foreach compiled triton native step-compiled (native: the C kernel of the "
                       "optimizers that have one, on CPU; default: all that run on the device)")
    bench.add_argument("--steps", type=int, default=30, help="timed steps after warm-up (default 30)")
    bench.add_argument("--warmup", type=int, default=10)
    bench.add_argument("--rounds", type=int, default=5,
                       help="interleaved rounds of each optimizer's and the yardstick's timed steps (default 5)")
    bench.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    bench.add_argument("--out", default="results/bench")
    bench.add_argument("--no-alternatives", action="store_true",
                       help="skip torch.optim / pytorch-optimizer / adabelief-pytorch comparisons")
    prep = sub.add_parser(
        "prepare", help="tokenize a corpus into memory-mapped token shards (claims.<c>.data.corpus=tokens:DIR)",
        description="Tokenize a corpus into uint16/uint32 token shards plus manifest.json (source, tokenizer, token "
                    "counts, SHA-256). Resumable: rerun the same command after a kill. Datasets: openwebtext, "
                    "fineweb-edu, c4 stream from the Hugging Face hub (pip install datasets; online or cached), or "
                    "--from a local copy; or give a local .jsonl/.parquet/.txt file or folder. Tokenizers: gpt2 "
                    "(GPT-2 BPE, offline, the default for every dataset); t5 (T5's 32k SentencePiece, which the C4 "
                    "runs of SOAP and Stable-SPAM used; needs transformers and the hub or its cache: no PyPI package "
                    "ships it, so offline C4 is tokenized with gpt2 and the manifest says so).")
    prep.add_argument("dataset", help="openwebtext | fineweb-edu | c4 | PATH (local .jsonl/.parquet/.txt or folder)")
    prep.add_argument("--out", required=True, help="output folder (new, or the folder of an interrupted run)")
    prep.add_argument("--max-tokens", type=int, default=None, help="stop after N tokens (train + val)")
    prep.add_argument("--tokenizer", choices=["gpt2", "t5"], default=None, help="default gpt2 (see above)")
    prep.add_argument("--from", dest="source", default=None, help="local files holding a named dataset's documents")
    prep.add_argument("--text-field", default=None, help="JSON/parquet field with the text (default text)")
    prep.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens per shard (default 1e8)")
    prep.add_argument("--val-fraction", type=float, default=0.0005,
                      help="fraction of documents held out for val (default 0.0005, as nanoGPT)")
    prep.add_argument("--checkpoint-tokens", type=int, default=10_000_000,
                      help="tokens between resume checkpoints (default 1e7)")
    prep.add_argument("--quiet", action="store_true", help="no progress bar")
    cmp_ = sub.add_parser(
        "compare", help="every optimizer of the repo on shared workloads, tuned alike: leaderboard and profiles",
        description="Tune each optimizer's lr by the protocol on each workload (tuning seeds, bracketing), run the "
                    "choice on eval seeds and with schedules ending at 0.5 T and 0.75 T, time its step against "
                    "fused AdamW; write one record per cell, leaderboard.md/json and profile.png under --out.")
    cmp_.add_argument("overrides", nargs="*", metavar="key=value", help="preset overrides, e.g. seeds=5")
    cmp_.add_argument("--preset", default=None, help="smoke | cpu | gpu | FILE.yaml (default: gpu with CUDA, "
                      "else cpu)")
    cmp_.add_argument("--optimizers", nargs="+", default=None, help="zoo names (default: the preset's matrix)")
    cmp_.add_argument("--workloads", nargs="+", default=None, help="workload names (default: the preset's)")
    cmp_.add_argument("--optimizer", action="append", default=[], metavar="PKG.MODULE:CLASS",
                      help="your own optimizer class, called as Class(params, lr=lr, **kwargs) (repeatable)")
    cmp_.add_argument("--hparams", action="append", default=[], metavar="FILE",
                      help="YAML for the matching --optimizer: name, family (adam|sgd), lrs, kwargs")
    cmp_.add_argument("--out", default=None, help="output folder (default results/compare/<preset>)")
    cmp_.add_argument("--resume", action="store_true", help="reuse finished cells and runs in --out")
    cmp_.add_argument("--list", action="store_true", help="list optimizers and workloads, run nothing")
    cmp_.add_argument("--jobs", type=int, default=1,
                      help="cells run at once, each in its own process on one torch thread (default 1; 2 on a "
                           "2-core machine)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            build_parser().print_help()
            print("\nrun a paper:  reproduce <paper> [claim ...] [--preset P] [--seeds N] [--out DIR] "
                  "[key=value ...]")
            return 0 if argv else 2
        if argv[0] in COMMANDS:
            args = build_parser().parse_args(argv)
            return {"list": _cmd_list, "cite": _cmd_cite, "table": _cmd_table,
                    "regress": _cmd_regress, "report": _cmd_report, "bench": _cmd_bench,
                    "prepare": _cmd_prepare, "compare": _cmd_compare}[args.command](args)
        return _cmd_run(argv)
    except OptreproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if argv and argv[0] == "prepare":
            print("error: interrupted; the shards up to the last checkpoint are kept (rerun the same command to "
                  "resume)", file=sys.stderr)
            return 130
        print("error: interrupted; finished claims and runs are kept, the unfinished one is not written "
              "(continue with the same command plus --resume --out DIR)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
