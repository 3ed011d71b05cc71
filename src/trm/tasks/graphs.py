"""Graph helpers for tasks over service graphs (networkx underneath).

Nodes are indices 0..n-1; edges are (caller, callee) pairs. Nothing here knows about tokens.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import networkx as nx


def digraph(n: int, edges: Iterable[tuple[int, int]]) -> nx.DiGraph:
    """A DiGraph on nodes 0..n-1 with the given (caller, callee) edges, self-loops dropped."""
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((a, b) for a, b in edges if a != b)
    return g


def wl_key(labels: Sequence[str], edges: Iterable[tuple[int, int]], iterations: int = 3) -> str:
    """A key equal for isomorphic labelled digraphs (renaming, reordering): the Weisfeiler-Lehman hash.

    labels[i] is node i's label (e.g. its quantised signals). Equal graphs always get equal keys; WL
    may also give two non-isomorphic graphs the same key, which for a train/test split only errs on
    the safe side (both land in the same split).
    """
    g = digraph(len(labels), edges)
    nx.set_node_attributes(g, dict(enumerate(labels)), "label")
    with warnings.catch_warnings():  # networkx 3.5 warns that directed hashes changed (a bugfix) at every call
        warnings.simplefilter("ignore", UserWarning)
        return nx.weisfeiler_lehman_graph_hash(g, node_attr="label", iterations=iterations, digest_size=8)


def descendants(n: int, edges: Iterable[tuple[int, int]]) -> list[set[int]]:
    """Every node's transitive callees, itself left out (also when it sits on a cycle)."""
    g = digraph(n, edges)
    return [nx.descendants(g, i) - {i} for i in range(n)]


def orient(n: int, edges: Sequence[tuple[int, int]], capacity: int) -> list[int] | None:
    """Give each edge to one of its two ends so that no node holds more than `capacity` edges.

    Returns, per edge, the node that lists it, or None when no such assignment exists (a subgraph
    with more than `capacity` edges per node). First the cheap rule "the end with fewer edges keeps
    it" (a star: every leaf keeps its own edge); where that overloads a node, an exact max flow
    (source -> edge -> either end -> sink with `capacity` per node) decides.
    """
    degree = [0] * n
    for a, b in edges:
        degree[a] += 1
        degree[b] += 1
    owner = [a if degree[a] <= degree[b] else b for a, b in edges]
    load = [0] * n
    for v in owner:
        load[v] += 1
    if max(load, default=0) <= capacity:
        return owner
    flow = nx.DiGraph()
    for k, (a, b) in enumerate(edges):
        flow.add_edge("s", ("e", k), capacity=1)
        flow.add_edge(("e", k), ("v", a), capacity=1)
        flow.add_edge(("e", k), ("v", b), capacity=1)
    for v in range(n):
        flow.add_edge(("v", v), "t", capacity=capacity)
    value, paths = nx.maximum_flow(flow, "s", "t")
    if value < len(edges):
        return None
    return [a if paths[("e", k)].get(("v", a), 0) == 1 else b for k, (a, b) in enumerate(edges)]
