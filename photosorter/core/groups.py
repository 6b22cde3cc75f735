"""Disjoint sets (union-find): which of ``n`` items end up in one group once pairs are joined. Pure."""

from __future__ import annotations


class DisjointSets:
    def __init__(self, count: int) -> None:
        self.parent = list(range(count))

    def root(self, item: int) -> int:
        """The group's id: the item every member of its group points to (path halving on the way)."""
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def join(self, item: int, other: int) -> None:
        """Put ``item``'s group into ``other``'s (the group keeps ``other``'s id)."""
        self.parent[self.root(item)] = self.root(other)

    def roots(self) -> list[int]:
        return [self.root(item) for item in range(len(self.parent))]
