"""Mutation operators cosmic-ray lacks, which the bugs we look for need: `in` <-> `not in`, a call statement
deleted (a forgotten `flush()`, `unlink()`, `cancel()`), and `return x` -> `return None`.

cosmic-ray finds operators through the `cosmic_ray.operator_providers` entry point; rather than install one, this
module adds the "cascade" provider to the running cosmic-ray and then runs its command line:

    .venv/bin/python scripts/mutation_operators.py init cosmic-ray.toml session.sqlite    # = cosmic-ray init ...

scripts/mutation.py runs cosmic-ray this way (and calls `register()` before testing mutants in-process).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator

import parso
from cosmic_ray.operators.operator import Example, Operator
from parso.python.tree import Keyword
from parso.tree import BaseNode, NodeOrLeaf

Position = tuple[tuple[int, int], tuple[int, int]]


class _MembershipSwap(Operator):
    """`in` -> `not in` (or the other way) in a comparison, one operator at a time."""

    FROM = ""
    TO = ""

    def _points(self, node: NodeOrLeaf) -> Iterator[int]:
        if node.type == "comparison":
            assert isinstance(node, BaseNode)
            for i, op in enumerate(node.children[1::2]):
                if " ".join(op.get_code().split()) == self.FROM:
                    yield 2 * i + 1

    def mutation_positions(self, node: NodeOrLeaf) -> Iterator[Position]:
        for i in self._points(node):
            assert isinstance(node, BaseNode)
            yield node.children[i].start_pos, node.children[i].end_pos

    def mutate(self, node: NodeOrLeaf, index: int) -> NodeOrLeaf:
        i = next(itertools.islice(self._points(node), index, None))
        assert isinstance(node, BaseNode)
        node.children[i] = parso.parse(" " + self.TO)
        return node


class ReplaceIn_NotIn(_MembershipSwap):
    FROM, TO = "in", "not in"

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("x in y", "x not in y"),)


class ReplaceNotIn_In(_MembershipSwap):
    FROM, TO = "not in", "in"

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("x not in y", "x in y"),)


def _is_call(node: NodeOrLeaf) -> bool:
    """`f(...)`, `a.b(...)`, `await f(...)`: an expression whose last part is a call's argument list."""
    if node.type not in ("atom_expr", "power"):
        return False
    assert isinstance(node, BaseNode)
    last = node.children[-1]
    return last.type == "trailer" and last.children[0].get_code() == "("


class DeleteCallStatement(Operator):
    """A call whose result is thrown away, made `pass`: the side effect it was there for goes."""

    def mutation_positions(self, node: NodeOrLeaf) -> Iterator[Position]:
        if node.parent is not None and node.parent.type == "simple_stmt" and _is_call(node):
            yield node.start_pos, node.end_pos

    def mutate(self, node: NodeOrLeaf, index: int) -> NodeOrLeaf:
        return Keyword("pass", node.start_pos, prefix=node.get_first_leaf().prefix)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("f.flush()", "pass"),)


class ReplaceReturnWithNone(Operator):
    """`return x` -> `return None` (a bare `return` and `return None` are left alone)."""

    def mutation_positions(self, node: NodeOrLeaf) -> Iterator[Position]:
        if node.type == "return_stmt":
            assert isinstance(node, BaseNode)
            if len(node.children) == 2 and node.children[1].get_code().strip() != "None":
                yield node.start_pos, node.end_pos

    def mutate(self, node: NodeOrLeaf, index: int) -> NodeOrLeaf:
        assert isinstance(node, BaseNode)
        value = node.children[1]
        node.children[1] = Keyword("None", value.start_pos, prefix=" ")
        return node

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("def f():\n    return x + 1\n", "def f():\n    return None\n"),)


_OPERATORS = {op.__name__: op for op in (ReplaceIn_NotIn, ReplaceNotIn_In, DeleteCallStatement, ReplaceReturnWithNone)}


class Provider:
    def __iter__(self) -> Iterator[str]:
        return iter(_OPERATORS)

    def __getitem__(self, name: str) -> type[Operator]:
        return _OPERATORS[name]


def register() -> None:
    """Make the operators above known, as `cascade/<name>`, to the cosmic-ray in this process."""
    import cosmic_ray.plugins

    cosmic_ray.plugins.OPERATOR_PROVIDERS.setdefault("cascade", Provider())


if __name__ == "__main__":
    register()
    from cosmic_ray.cli import cli

    sys.exit(cli())
