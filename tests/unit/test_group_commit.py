"""Group commit: concurrent single requests share one write; failures stay with their item."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kaskad.interfaces.http.batching import GroupCommit
from kaskad.services.errors import Invalid


class Store:
    def __init__(self) -> None:
        self.writes: list[list[str]] = []

    def write(self, items: Sequence[str]) -> list[str]:
        if any(i.startswith("bad") for i in items):
            raise Invalid("bad_item", "bad item")
        if any(i == "crash" for i in items):
            raise ConnectionError("database went away")
        self.writes.append(list(items))
        return [i.upper() for i in items]


async def _submit_all(group: GroupCommit[str, str], items: list[str]) -> list[object]:
    return await asyncio.gather(*(group.submit(i) for i in items), return_exceptions=True)


def test_concurrent_submissions_share_one_write() -> None:
    store = Store()
    group = GroupCommit(store.write, window=0.01)
    results = asyncio.run(_submit_all(group, ["a", "b", "c"]))
    assert results == ["A", "B", "C"]
    assert store.writes == [["a", "b", "c"]]


def test_a_bad_item_fails_alone() -> None:
    store = Store()
    group = GroupCommit(store.write, window=0.01)
    results = asyncio.run(_submit_all(group, ["a", "bad", "c"]))
    assert results[0] == "A"
    assert results[2] == "C"
    assert isinstance(results[1], Invalid)
    assert store.writes == [["a"], ["c"]]


def test_an_infrastructure_error_reaches_every_request() -> None:
    store = Store()
    group = GroupCommit(store.write, window=0.01)
    results = asyncio.run(_submit_all(group, ["a", "crash"]))
    assert all(isinstance(r, ConnectionError) for r in results)
    assert store.writes == []


def test_groups_are_capped() -> None:
    store = Store()
    group = GroupCommit(store.write, window=0.01, max_batch=2)
    results = asyncio.run(_submit_all(group, ["a", "b", "c", "d", "e"]))
    assert results == ["A", "B", "C", "D", "E"]
    assert sorted(len(w) for w in store.writes) == [1, 2, 2]


def test_without_a_window_each_request_writes_at_once() -> None:
    store = Store()
    group = GroupCommit(store.write, window=0)

    async def one_by_one() -> list[str]:
        return [await group.submit(i) for i in ("a", "b")]

    assert asyncio.run(one_by_one()) == ["A", "B"]
    assert store.writes == [["a"], ["b"]]


def test_single_bad_item_raises_to_its_caller() -> None:
    group = GroupCommit(Store().write, window=0)
    with pytest.raises(Invalid):
        asyncio.run(group.submit("bad"))
