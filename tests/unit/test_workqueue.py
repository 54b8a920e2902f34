"""WorkQueue: bursts collapse into one pass, a key is never processed twice at once, and none is lost."""

from __future__ import annotations

import asyncio

from payguard.workqueue import WorkQueue


async def drain(queue: WorkQueue[str]) -> list[str]:
    """Every key ready now, in order, each marked done as soon as it is taken."""
    taken: list[str] = []
    while len(queue):
        key = await asyncio.wait_for(queue.get(), timeout=1)
        taken.append(key)
        queue.done(key)
    return taken


def test_keys_come_out_in_the_order_they_were_added() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("payments/a", "payments/b", "payments/c"):
            queue.add(key)
        return await drain(queue)

    assert asyncio.run(scenario()) == ["payments/a", "payments/b", "payments/c"]


def test_duplicate_adds_collapse_into_one_entry() -> None:
    async def scenario() -> tuple[int, list[str]]:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("payments/a", "payments/b", "payments/a", "payments/a", "payments/b"):
            queue.add(key)
        return len(queue), await drain(queue)

    assert asyncio.run(scenario()) == (2, ["payments/a", "payments/b"])


def test_key_added_while_active_is_requeued_after_done() -> None:
    async def scenario() -> tuple[int, int, str, int]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        key = await queue.get()
        queue.add("payments/a")
        queue.add("payments/a")
        while_active = len(queue)
        queue.done(key)
        after_done = len(queue)
        again = await asyncio.wait_for(queue.get(), timeout=1)
        queue.done(again)
        return while_active, after_done, again, len(queue)

    assert asyncio.run(scenario()) == (0, 1, "payments/a", 0)


def test_key_is_not_handed_out_again_while_its_pass_runs() -> None:
    async def scenario() -> bool:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        await queue.get()
        queue.add("payments/a")
        try:
            await asyncio.wait_for(queue.get(), timeout=0.05)
        except TimeoutError:
            return True
        return False

    assert asyncio.run(scenario()) is True


def test_key_added_while_merely_queued_is_not_requeued_after_done() -> None:
    async def scenario() -> tuple[list[str], int]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        queue.add("payments/a")  # still queued, not active: collapses
        taken = await drain(queue)
        return taken, len(queue)

    assert asyncio.run(scenario()) == (["payments/a"], 0)


def test_done_without_a_readd_leaves_the_queue_empty() -> None:
    async def scenario() -> int:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        queue.done(await queue.get())
        return len(queue)

    assert asyncio.run(scenario()) == 0


def test_key_can_be_added_again_after_its_pass_is_done() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        first = await drain(queue)
        queue.add("payments/a")
        return first + await drain(queue)

    assert asyncio.run(scenario()) == ["payments/a", "payments/a"]


def test_requeued_key_goes_behind_keys_already_waiting() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        queue.add("payments/b")
        active = await queue.get()
        queue.add("payments/a")
        queue.add("payments/c")
        queue.done(active)
        return [active, *await drain(queue)]

    assert asyncio.run(scenario()) == ["payments/a", "payments/b", "payments/c", "payments/a"]


def test_other_keys_are_handed_out_while_one_is_active() -> None:
    async def scenario() -> tuple[str, str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        queue.add("payments/b")
        first = await queue.get()
        second = await asyncio.wait_for(queue.get(), timeout=1)
        return first, second

    assert asyncio.run(scenario()) == ("payments/a", "payments/b")


def test_waiting_consumer_wakes_when_a_key_is_added() -> None:
    async def scenario() -> str:
        queue: WorkQueue[str] = WorkQueue()
        consumer = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        assert not consumer.done()
        queue.add("payments/a")
        return await asyncio.wait_for(consumer, timeout=1)

    assert asyncio.run(scenario()) == "payments/a"


def test_changes_go_before_routine_resyncs() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("payments/a", "payments/b", "payments/c"):
            queue.add(key, urgent=False)
        queue.add("payments/tampered")
        return await drain(queue)

    assert asyncio.run(scenario()) == ["payments/tampered", "payments/a", "payments/b", "payments/c"]


def test_a_change_promotes_a_key_already_waiting_for_its_resync() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("payments/a", "payments/b"):
            queue.add(key, urgent=False)
        queue.add("payments/b")
        return await drain(queue)

    assert asyncio.run(scenario()) == ["payments/b", "payments/a"]


def test_a_routine_add_never_demotes_a_change() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a", urgent=False)
        queue.add("payments/b")
        queue.add("payments/b", urgent=False)
        return await drain(queue)

    assert asyncio.run(scenario()) == ["payments/b", "payments/a"]


def test_a_change_during_a_pass_is_queued_as_a_change_afterwards() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("payments/a")
        running = await queue.get()
        queue.add("payments/r", urgent=False)
        queue.add("payments/a", urgent=False)
        queue.add("payments/a")  # a change while its pass runs
        queue.done(running)
        return await drain(queue)

    assert asyncio.run(scenario()) == ["payments/a", "payments/r"]


def test_a_promoted_key_is_handed_out_once_and_its_old_place_is_skipped() -> None:
    """A promotion leaves the key's routine entry behind; it must neither run the key twice nor hand it
    out later as if it were queued again."""

    async def scenario() -> tuple[list[str], int, list[str]]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a", urgent=False)
        queue.add("b", urgent=False)
        queue.add("a")  # promoted
        first = await drain(queue)
        left = len(queue)
        queue.add("a", urgent=False)  # queued again after its pass: a fresh routine entry
        return first, left, await drain(queue)

    assert asyncio.run(scenario()) == (["a", "b"], 0, ["a"])
