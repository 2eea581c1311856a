"""Test helpers: write a tiny WordNet 3.0 database (data.noun, index.noun with real byte offsets) and lay out a
WordNet folder the way nltk 3.10's reader needs it (copies, not symlinks; a lexnames file; an empty index.sense)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

HEADER = ("  1 This software and database is being provided to you, the LICENSEE, by  \n"
          "  2 WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.  \n")

# lexnames(5WN): file number, name, syntactic category
LEXNAMES = ["adj.all 3", "adj.pert 3", "adv.all 4", "noun.Tops 1", "noun.act 1", "noun.animal 1", "noun.artifact 1",
            "noun.attribute 1", "noun.body 1", "noun.cognition 1", "noun.communication 1", "noun.event 1",
            "noun.feeling 1", "noun.food 1", "noun.group 1", "noun.location 1", "noun.motive 1", "noun.object 1",
            "noun.person 1", "noun.phenomenon 1", "noun.plant 1", "noun.possession 1", "noun.process 1",
            "noun.quantity 1", "noun.relation 1", "noun.shape 1", "noun.state 1", "noun.substance 1",
            "noun.time 1", "verb.body 2", "verb.change 2", "verb.cognition 2", "verb.communication 2",
            "verb.competition 2", "verb.consumption 2", "verb.contact 2", "verb.creation 2", "verb.emotion 2",
            "verb.motion 2", "verb.perception 2", "verb.possession 2", "verb.social 2", "verb.stative 2",
            "verb.weather 2", "adj.ppl 3"]


def write_tiny_wordnet(folder: Path, synsets: Sequence[tuple[Sequence[str], Sequence[tuple[str, int]]]]) -> Path:
    """Write ``synsets`` (each: its words, its pointers as (symbol, index of the target synset)) as data.noun and
    index.noun in ``folder``, with every offset the true byte position of its line (so nltk can seek to it)."""
    folder.mkdir(parents=True, exist_ok=True)

    def line(i: int, offsets: list[int]) -> str:
        words, ptrs = synsets[i]
        w = " ".join(f"{word} 0" for word in words)
        p = " ".join(f"{sym} {offsets[j]:08d} n 0000" for sym, j in ptrs)
        return f"{offsets[i]:08d} 03 n {len(words):02x} {w} {len(ptrs):03d} {p}{' ' if p else ''}| gloss {i}  \n"

    offsets = [0] * len(synsets)  # every offset prints as 8 digits, so line lengths do not depend on the values
    pos = len(HEADER.encode())
    for i in range(len(synsets)):
        offsets[i] = pos
        pos += len(line(i, offsets).encode())
    (folder / "data.noun").write_text(HEADER + "".join(line(i, offsets) for i in range(len(synsets))))
    senses: dict[str, list[int]] = {}
    for i, (words, _) in enumerate(synsets):
        for word in words:
            senses.setdefault(word.lower(), []).append(offsets[i])
    index = "".join(f"{lemma} n {len(offs)} 1 @ {len(offs)} 0 {' '.join(f'{o:08d}' for o in offs)}  \n"
                    for lemma, offs in sorted(senses.items()))
    (folder / "index.noun").write_text(HEADER + index)
    for pos_name in ("verb", "adj", "adv"):  # nltk opens every part of speech
        for kind in ("data", "index"):
            (folder / f"{kind}.{pos_name}").write_text(HEADER)
    for pos_name in ("noun", "verb", "adj", "adv"):
        (folder / f"{pos_name}.exc").write_text("")
    return folder


def nltk_layout(source: Path, cache: Path) -> Path:
    """``cache/corpora/wordnet`` with copies of WordNet's files plus lexnames and an empty index.sense."""
    target = cache / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("data", "index"):
        for pos_name in ("noun", "verb", "adj", "adv"):
            shutil.copyfile(source / f"{name}.{pos_name}", target / f"{name}.{pos_name}")
    for pos_name in ("noun", "verb", "adj", "adv"):
        exc = source / f"{pos_name}.exc"
        if exc.is_file():
            shutil.copyfile(exc, target / f"{pos_name}.exc")
        else:
            (target / f"{pos_name}.exc").write_text("")
    (target / "lexnames").write_text("".join(f"{i:02d}\t{entry.split()[0]}\t{entry.split()[1]}\n"
                                             for i, entry in enumerate(LEXNAMES)))
    (target / "index.sense").write_text("")
    return target


def nltk_reader(source: Path, cache: Path):  # -> nltk's WordNetCorpusReader
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    target = nltk_layout(source, cache)
    if str(cache) not in nltk.data.path:
        nltk.data.path.insert(0, str(cache))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": no OMW reader, as intended
        return WordNetCorpusReader(str(target), None)
