"""The window of in-flight sends: urgent waiters are served first, FIFO within each kind,
and nothing is lost when a waiter gives up."""

from __future__ import annotations

import asyncio

import pytest

from kaskad.adapters.channels.window import PriorityWindow


async def _order_served(arrivals: list[tuple[str, bool]], size: int = 1) -> list[str]:
    window = PriorityWindow(size)
    for _ in range(size):
        await window.acquire()  # the window starts full
    served: list[str] = []

    async def wait(name: str, urgent: bool) -> None:
        await window.acquire(urgent)
        served.append(name)

    tasks = [asyncio.create_task(wait(name, urgent)) for name, urgent in arrivals]
    await asyncio.sleep(0)  # every waiter queued
    for _ in arrivals:
        window.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return served


@pytest.mark.parametrize(
    ("arrivals", "served"),
    [
        ([("b1", False), ("b2", False)], ["b1", "b2"]),
        ([("b1", False), ("b2", False), ("otp", True)], ["otp", "b1", "b2"]),
        ([("u1", True), ("b1", False), ("u2", True)], ["u1", "u2", "b1"]),
        ([("otp", True)], ["otp"]),
    ],
    ids=["bulk-in-order", "urgent-jumps-the-queue", "urgent-in-order", "alone"],
)
def test_the_next_slot_goes_to_the_oldest_urgent_waiter(
    arrivals: list[tuple[str, bool]], served: list[str]
) -> None:
    assert asyncio.run(_order_served(arrivals)) == served


def test_a_free_window_admits_at_once_up_to_its_size() -> None:
    async def go() -> tuple[int, bool]:
        window = PriorityWindow(3)
        for _ in range(3):
            await window.acquire()
        late = asyncio.create_task(window.acquire())
        await asyncio.sleep(0)
        blocked = not late.done()
        window.release()
        await late
        return window.waiting, blocked

    assert asyncio.run(go()) == (0, True)


def test_a_waiter_that_gives_up_passes_its_slot_on() -> None:
    async def go() -> list[str]:
        window = PriorityWindow(1)
        await window.acquire()
        served: list[str] = []

        async def wait(name: str) -> None:
            await window.acquire()
            served.append(name)

        quitter = asyncio.create_task(wait("quitter"))
        patient = asyncio.create_task(wait("patient"))
        await asyncio.sleep(0)
        quitter.cancel()
        window.release()
        await patient
        return served

    assert asyncio.run(go()) == ["patient"]


def test_a_window_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PriorityWindow(0)
