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
