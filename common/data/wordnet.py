"""WordNet 3.0 noun hierarchies, read offline from WordNet's own database files (Debian ``wordnet-base`` installs
them in /usr/share/wordnet; ``./bootstrap`` installs the package).

Only ``data.noun`` and ``index.noun`` are read:

* ``data.noun``: one synset per line, ``offset lex_filenum ss_type w_cnt word lex_id ... p_cnt [pointer ...]
  | gloss`` with ``w_cnt`` in hex and each pointer ``symbol offset pos source/target``; lines starting with a space
  are the licence header. The hypernym pointers are ``@`` (hypernym) and ``@i`` (instance hypernym).
* ``index.noun``: ``lemma pos synset_cnt p_cnt [symbol ...] sense_cnt tagsense_cnt offset ...``; the position of a
  synset's offset on its first lemma's line is its sense number.

A synset is named as nltk names it, ``lemma.n.NN`` (first lemma, lower case, NN its sense number). The noun
closure is the transitive closure over ``@`` and ``@i`` at every level: 82,115 nodes and 743,241 edges, the
counts of Nickel & Kiela (2017) and Bécigneul & Ganea (2019). (Nickel & Kiela's ``transitive_closure.py`` via nltk
follows instance links only from the instances themselves and gets 743,086.) The mammal closure is their 2018
rule: mammal.n.01 and its descendants, the closure edges inside that set, minus the nodes their
``mammals_filter.txt`` removes (under pandas ``str.match`` it matches only tusker.n.01 and female_mammal.n.01):
1,180 nodes and 6,540 edges.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from common.data.hierarchy import Hierarchy, closure_from_parents
from common.errors import DataError

DEBIAN_DIR = Path("/usr/share/wordnet")
ENV_VAR = "OPTREPRO_WORDNET"
HYPERNYMS = ("@", "@i")
MAMMAL_ROOT = "mammal.n.01"
MAMMAL_FILTER = ("tusker.n.01", "female_mammal.n.01")
NOUN_COUNTS = (82_115, 743_241)
MAMMAL_COUNTS = (1_180, 6_540)


def _hint() -> str:
    return (f"install the Debian package wordnet-base (apt-get install wordnet-base, or ./bootstrap), or set "
            f"{ENV_VAR} to a folder with WordNet 3.0's data.noun and index.noun")


def find_wordnet(root: str | Path | None = None) -> Path:
    """The folder holding ``data.noun`` and ``index.noun``: ``root``, else $OPTREPRO_WORDNET, else Debian's."""
    candidates = [Path(root)] if root is not None else (
        [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else [DEBIAN_DIR])
    for folder in candidates:
        if (folder / "data.noun").is_file() and (folder / "index.noun").is_file():
            return folder
    raise DataError(f"WordNet not found in {candidates[0]} (need data.noun and index.noun); {_hint()}")


def parse_data_noun(path: Path) -> tuple[list[int], list[str], dict[int, list[int]]]:
    """(offsets in file order, first lemma of each, offset -> hypernym offsets via @ and @i)."""
    offsets: list[int] = []
    lemmas: list[str] = []
    parents: dict[int, list[int]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line[0] == " ":
                continue  # the licence header
            try:
                fields = line.split(" | ", 1)[0].split()
                offset = int(fields[0])
                w_cnt = int(fields[3], 16)
                lemma = fields[4]
                k = 4 + 2 * w_cnt
                p_cnt = int(fields[k])
                ptrs = fields[k + 1:k + 1 + 4 * p_cnt]
                if len(ptrs) != 4 * p_cnt or w_cnt < 1:
                    raise ValueError("truncated")
            except (ValueError, IndexError):
                raise DataError(f"{path}:{lineno}: not a WordNet data line: {line[:80]!r}") from None
            offsets.append(offset)
            lemmas.append(lemma)
            parents[offset] = [int(ptrs[i + 1]) for i in range(0, len(ptrs), 4)
                               if ptrs[i] in HYPERNYMS and ptrs[i + 2] == "n"]
    return offsets, lemmas, parents


def parse_index_noun(path: Path) -> dict[str, list[int]]:
    """lemma -> its synset offsets in sense order."""
    senses: dict[str, list[int]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line[0] == " ":
                continue
            fields = line.split()
            try:
                synset_cnt, p_cnt = int(fields[2]), int(fields[3])
                offsets = [int(x) for x in fields[4 + p_cnt + 2:]]
                if len(offsets) != synset_cnt:
                    raise ValueError("count")
            except (ValueError, IndexError):
                raise DataError(f"{path}:{lineno}: not a WordNet index line: {line[:80]!r}") from None
            senses[fields[0]] = offsets
    return senses


def synset_names(offsets: list[int], lemmas: list[str], senses: dict[str, list[int]]) -> list[str]:
    """nltk's ``lemma.n.NN`` name of each synset."""
    names = []
    for offset, lemma in zip(offsets, lemmas, strict=True):
        key = lemma.lower()
        try:
            number = senses[key].index(offset) + 1
        except (KeyError, ValueError):
            raise DataError(f"index.noun has no sense of {key!r} at offset {offset:08d}") from None
        names.append(f"{key}.n.{number:02d}")
    return names


@lru_cache(maxsize=4)
def _noun_closure(folder: Path) -> Hierarchy:
    offsets, lemmas, parents = parse_data_noun(folder / "data.noun")
    names = synset_names(offsets, lemmas, parse_index_noun(folder / "index.noun"))
    node = {off: i for i, off in enumerate(offsets)}
    missing = sorted({p for ps in parents.values() for p in ps} - node.keys())
    if missing:
        raise DataError(f"data.noun points to hypernyms it does not hold (e.g. offset {missing[0]:08d})")
    return closure_from_parents(names, {node[o]: [node[p] for p in ps] for o, ps in parents.items() if ps})


def noun_closure(root: str | Path | None = None) -> Hierarchy:
    """The WordNet noun closure over hypernym and instance-hypernym links (82,115 nodes, 743,241 edges)."""
    return _noun_closure(find_wordnet(root).resolve())


def subtree_closure(h: Hierarchy, root: str, exclude: tuple[str, ...] = ()) -> Hierarchy:
    """``root`` and its descendants, minus ``exclude``, with the closure edges inside that set."""
    if root not in h.index:
        raise DataError(f"{root!r} is not a node of this hierarchy")
    r = h.index[root]
    drop = {h.index[name] for name in exclude if name in h.index}
    nodes = [r, *sorted(int(u) for u in h.descendants(r) if int(u) not in drop)]
    return h.subset(nodes)


def mammal_closure(root: str | Path | None = None) -> Hierarchy:
    """The mammal closure of Nickel & Kiela (2018): 1,180 nodes and 6,540 edges."""
    return subtree_closure(noun_closure(root), MAMMAL_ROOT, MAMMAL_FILTER)
