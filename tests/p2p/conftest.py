"""Helpers for the p2p tests: real Noise/yamux hosts on 127.0.0.1, started and stopped per test."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio

from p2p import Node, NodeConfig


@asynccontextmanager
async def running(n: int, **config) -> AsyncIterator[list[Node]]:
    """``n`` started nodes (DHT off unless asked), stopped in reverse order on exit."""
    config.setdefault("enable_dht", False)
    async with AsyncExitStack() as stack:
        nodes = []
        for _ in range(n):
            node = Node(NodeConfig(seed=os.urandom(32), **config))
            nodes.append(await stack.enter_async_context(node.started()))
        yield nodes


async def connect_all(nodes: list[Node]) -> None:
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            await a.connect(b.addrs[0])


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    with trio.move_on_after(timeout):
        while not pred():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(autouse=True)
def no_unclosed_sockets():
    """Trap 9: a test that leaves a socket open fails (ResourceWarning collected at teardown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
    assert not leaks, f"unclosed sockets: {leaks}"


class BackgroundNode:
    """A node running in its own task, so a test can stop it while others keep running."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._stop = trio.Event()
        self._done = trio.Event()

    async def _run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with self.node.started():
                task_status.started()
                await self._stop.wait()
        finally:
            self._done.set()

    async def stop(self) -> None:
        self._stop.set()
        await self._done.wait()


async def start_background(nursery: trio.Nursery, **config) -> BackgroundNode:
    config.setdefault("enable_dht", False)
    config.setdefault("seed", os.urandom(32))
    bg = BackgroundNode(Node(NodeConfig(**config)))
    await nursery.start(bg._run)
    return bg
