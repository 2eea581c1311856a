"""WordNet hierarchies from WordNet's database files: a tiny database written here (so these tests need no package),
cross-checked against nltk's reader; then the real Debian files (wordnet-base, installed by ./bootstrap) give the
paper's counts, and nltk agrees on every noun's name and on the mammal closure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.data.hierarchy import balanced_tree, closure_from_parents
from common.data.wordnet import (
    DEBIAN_DIR,
    MAMMAL_COUNTS,
    MAMMAL_FILTER,
    NOUN_COUNTS,
    find_wordnet,
    mammal_closure,
    noun_closure,
    subtree_closure,
)
from common.errors import DataError
from tests.wordnet_files import nltk_reader, write_tiny_wordnet

# entity <- animal(=beast) <- dog <-i Rex ; entity <- beast (a second sense of "beast"); dog <- puppy; animal <- cat
TINY = [
    (["entity"], []),
    (["Animal", "beast"], [("@", 0)]),
    (["dog"], [("@", 1), ("~", 3)]),  # a hyponym pointer: not a hypernym, must be ignored
    (["Rex"], [("@i", 2)]),
    (["beast"], [("@", 0)]),
    (["puppy"], [("@", 2)]),
    (["cat"], [("@", 1)]),
]


def _edges(h) -> set[tuple[str, str]]:
    return {(h.names[u], h.names[v]) for u, v in h.edges}


def test_tiny_database_parses_to_nltk_names_and_the_closure_over_hypernym_and_instance_links(tmp_path):
    h = noun_closure(write_tiny_wordnet(tmp_path / "wn", TINY))
    assert h.names == ("entity.n.01", "animal.n.01", "dog.n.01", "rex.n.01", "beast.n.02", "puppy.n.01", "cat.n.01")
    assert _edges(h) == {
        ("animal.n.01", "entity.n.01"), ("beast.n.02", "entity.n.01"),
        ("dog.n.01", "animal.n.01"), ("dog.n.01", "entity.n.01"),
        ("rex.n.01", "dog.n.01"), ("rex.n.01", "animal.n.01"), ("rex.n.01", "entity.n.01"),
        ("puppy.n.01", "dog.n.01"), ("puppy.n.01", "animal.n.01"), ("puppy.n.01", "entity.n.01"),
        ("cat.n.01", "animal.n.01"), ("cat.n.01", "entity.n.01"),
    }
    sub = subtree_closure(h, "animal.n.01", exclude=("dog.n.01",))
    assert set(sub.names) == {"animal.n.01", "rex.n.01", "puppy.n.01", "cat.n.01"}
    assert _edges(sub) == {("rex.n.01", "animal.n.01"), ("puppy.n.01", "animal.n.01"), ("cat.n.01", "animal.n.01")}


def test_tiny_database_agrees_with_nltk(tmp_path):
    folder = write_tiny_wordnet(tmp_path / "wn", TINY)
    wn = nltk_reader(folder, tmp_path / "nltk_data")
    theirs = set()
    for s in wn.all_synsets("n"):
        for a in s.closure(lambda x: x.hypernyms() + x.instance_hypernyms()):
            theirs.add((s.name(), a.name()))
    h = noun_closure(folder)
    assert {s.name() for s in wn.all_synsets("n")} == set(h.names)
    assert _edges(h) == theirs


def test_missing_and_malformed_files_are_data_errors_that_say_how_to_get_wordnet(tmp_path, monkeypatch):
    monkeypatch.delenv("OPTREPRO_WORDNET", raising=False)
    with pytest.raises(DataError, match="wordnet-base"):
        find_wordnet(tmp_path)
    folder = write_tiny_wordnet(tmp_path / "wn", TINY)
    monkeypatch.setenv("OPTREPRO_WORDNET", str(folder))
    assert find_wordnet() == folder
    bad = folder / "data.noun"
    bad.write_text(bad.read_text() + "00009999 03 n 01 broken\n")
    with pytest.raises(DataError, match="not a WordNet data line"):
        noun_closure(folder)


def test_a_cycle_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="cycle"):
        closure_from_parents(["a", "b", "c"], {0: [1], 1: [2], 2: [0]})


def test_balanced_tree_counts_queries_and_reduction():
    t = balanced_tree(3, 4)
    assert (t.n, len(t.edges)) == (121, 426)
    assert len(t.leaves) == 81 and list(t.roots) == [0] and t.n_ancestors.max() == 4
    assert len(t.reduction()) == 120 and {tuple(e) for e in t.reduction()} == {tuple(e) for e in t.direct}
    assert set(t.descendants(0).tolist()) == set(range(1, 121))
    u, v = t.edges[:, 0], t.edges[:, 1]
    assert t.is_edge(u, v).all() and not t.is_edge(v, u).any()
    assert t.degree.sum() == 2 * 426


# ---------------------------------------------------------------- the real files (./bootstrap installs them)


def _real() -> Path:
    assert (DEBIAN_DIR / "data.noun").is_file(), "wordnet-base missing: run ./bootstrap (apt-get install wordnet-base)"
    return DEBIAN_DIR


@pytest.mark.slow  # parses the full noun database
def test_debian_wordnet_gives_the_papers_counts():
    nouns = noun_closure(_real())
    assert (nouns.n, len(nouns.edges)) == NOUN_COUNTS == (82_115, 743_241)
    m = mammal_closure(_real())
    assert (m.n, len(m.edges)) == MAMMAL_COUNTS == (1_180, 6_540)
    assert m.names[0] == "mammal.n.01" and list(m.roots) == [0]
    assert not set(MAMMAL_FILTER) & set(m.names)
    assert len(m.leaves) == 887 and m.n_ancestors.max() == 9
    inner = ~np.isin(m.edges, np.concatenate([m.leaves, m.roots])).any(axis=1)
    assert int(inner.sum()) == 1_084  # the edges link prediction may hold out
    assert len(m.reduction()) == 1_180


@pytest.mark.slow  # parses the full noun database twice (ours and nltk's)
def test_debian_wordnet_agrees_with_nltk_on_names_and_the_mammal_closure(tmp_path):
    wn = nltk_reader(_real(), tmp_path / "nltk_data")
    nouns = noun_closure(_real())
    assert {s.name() for s in wn.all_synsets("n")} == set(nouns.names)
    mammal = wn.synset("mammal.n.01")
    keep = ({mammal} | set(mammal.closure(lambda s: s.hyponyms() + s.instance_hyponyms())))
    keep = {s for s in keep if s.name() not in MAMMAL_FILTER}
    theirs = {(s.name(), a.name()) for s in keep
              for a in s.closure(lambda x: x.hypernyms() + x.instance_hypernyms()) if a in keep}
    m = mammal_closure(_real())
    assert set(m.names) == {s.name() for s in keep}
    assert _edges(m) == theirs
