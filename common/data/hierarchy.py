"""A transitive closure of a hierarchy (a DAG): named nodes, (child, ancestor) edges, and the queries embedding
experiments need (is (u, v) an edge, descendants of v, degrees, depths, the transitive reduction).

``Hierarchy.edges`` holds every pair (u, v) with v a proper ancestor of u, once, sorted; ``direct`` holds the
parent links the closure was built from (for plots). WordNet (``common.data.wordnet``) and the synthetic
``balanced_tree`` both produce one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """Nodes ``0..n-1`` named ``names``; ``edges`` (E, 2) int64 rows (child, ancestor) of the closure, sorted."""

    names: tuple[str, ...]
    edges: np.ndarray
    direct: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    @property
    def n(self) -> int:
        return len(self.names)

    @cached_property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    @cached_property
    def _keys(self) -> np.ndarray:
        return self.edges[:, 0] * self.n + self.edges[:, 1]

    def is_edge(self, child: np.ndarray, ancestor: np.ndarray) -> np.ndarray:
        """Elementwise: is ``ancestor`` a proper ancestor of ``child`` (vectorised, any shapes that broadcast)."""
        keys = np.asarray(child, dtype=np.int64) * self.n + np.asarray(ancestor, dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1) if len(self._keys) else pos
        return (self._keys[pos] == keys) if len(self._keys) else np.zeros(keys.shape, dtype=bool)

    @cached_property
    def _by_ancestor(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR of descendants: (indptr over ancestors, children sorted by ancestor)."""
        order = np.argsort(self.edges[:, 1], kind="stable")
        counts = np.bincount(self.edges[:, 1], minlength=self.n)
        return np.concatenate([[0], np.cumsum(counts)]), self.edges[order, 0]

    def descendants(self, v: int) -> np.ndarray:
        ptr, kids = self._by_ancestor
        return kids[ptr[v]:ptr[v + 1]]

    @cached_property
    def n_descendants(self) -> np.ndarray:
        return np.bincount(self.edges[:, 1], minlength=self.n)

    @cached_property
    def n_ancestors(self) -> np.ndarray:
        """Per node, its number of proper ancestors (0 for a root): the depth used to colour plots."""
        return np.bincount(self.edges[:, 0], minlength=self.n)

    @cached_property
    def degree(self) -> np.ndarray:
        """How often each node occurs in the closure's edge list (either end): the sampling counts of Nickel &
        Kiela (2017), raised to a power for the burn-in negatives."""
        return np.bincount(self.edges.ravel(), minlength=self.n)

    @cached_property
    def leaves(self) -> np.ndarray:
        return np.flatnonzero(self.n_descendants == 0)

    @cached_property
    def roots(self) -> np.ndarray:
        return np.flatnonzero(self.n_ancestors == 0)

    def reduction(self) -> np.ndarray:
        """The transitive reduction: closure edges (u, v) with no w such that u < w < v."""
        ptr, kids = self._by_ancestor
        keep = []
        anc: dict[int, set[int]] = {}
        for u, v in self.edges:
            anc.setdefault(int(u), set()).add(int(v))
        for u, v in self.edges:
            via = anc[int(u)] - {int(v)}
            if not any(int(v) in anc.get(w, ()) for w in via):
                keep.append((u, v))
        return np.asarray(keep, dtype=np.int64).reshape(-1, 2)

    def subset(self, nodes: Iterable[int]) -> Hierarchy:
        """The closure restricted to ``nodes`` (renumbered in their given order): edges with both ends inside."""
        keep = np.asarray(list(nodes), dtype=np.int64)
        new = np.full(self.n, -1, dtype=np.int64)
        new[keep] = np.arange(len(keep))

        def restrict(e: np.ndarray) -> np.ndarray:
            m = (new[e[:, 0]] >= 0) & (new[e[:, 1]] >= 0)
            return _sorted(new[e[m]])

        return Hierarchy(tuple(self.names[i] for i in keep), restrict(self.edges), restrict(self.direct))


def _sorted(edges: np.ndarray) -> np.ndarray:
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return edges[np.lexsort((edges[:, 1], edges[:, 0]))]


def closure_from_parents(names: Sequence[str], parents: Mapping[int, Sequence[int]]) -> Hierarchy:
    """The transitive closure of the DAG ``parents`` (node -> its direct parents). Cycles raise ValueError."""
    n = len(names)
    ancestors: list[frozenset[int] | None] = [None] * n
    for start in range(n):
        if ancestors[start] is not None:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]  # (node, index of the next parent to visit)
        on_path = {start}
        while stack:
            node, i = stack[-1]
            ps = parents.get(node, ())
            if i < len(ps):
                stack[-1] = (node, i + 1)
                p = ps[i]
                if ancestors[p] is None:
                    if p in on_path:
                        raise ValueError(f"the hierarchy has a cycle through {names[p]!r}")
                    on_path.add(p)
                    stack.append((p, 0))
                continue
            acc: set[int] = set()
            for p in ps:
                acc.add(p)
                acc |= ancestors[p]  # type: ignore[operator]
            ancestors[node] = frozenset(acc)
            on_path.discard(node)
            stack.pop()
    total = sum(len(a) for a in ancestors)  # type: ignore[arg-type]
    edges = np.empty((total, 2), dtype=np.int64)
    k = 0
    for u, anc in enumerate(ancestors):
        m = len(anc)  # type: ignore[arg-type]
        edges[k:k + m, 0] = u
        edges[k:k + m, 1] = sorted(anc)  # type: ignore[arg-type]
        k += m
    direct = [(u, p) for u, ps in parents.items() for p in set(ps)]
    return Hierarchy(tuple(names), _sorted(edges), _sorted(np.asarray(direct, dtype=np.int64)))


def balanced_tree(branching: int, depth: int) -> Hierarchy:
    """A complete tree: ``sum(branching^k, k=0..depth)`` nodes named ``t``, ``t.0``, ``t.0.2``, ... (root first).
    branching 3, depth 4 gives 121 nodes and 426 closure edges."""
    if branching < 1 or depth < 0:
        raise ValueError(f"branching must be >= 1 and depth >= 0, got {branching}, {depth}")
    names = ["t"]
    parents: dict[int, list[int]] = {}
    frontier = [0]
    for _ in range(depth):
        nxt = []
        for p in frontier:
            for j in range(branching):
                parents[len(names)] = [p]
                nxt.append(len(names))
                names.append(f"{names[p]}.{j}")
        frontier = nxt
    return closure_from_parents(names, parents)
