"""Control tasks: small known-answer computations the chain hands to providers now and then (the
Cryptomind seed's honesty checks).

Every `control_interval_blocks` blocks (genesis `params.jobs`) the end-block hook picks one registered provider without an
open task (the lowest beacon draw over addresses, so every node picks the same one) and records a
`ControlTask` with a seed from the beacon. The task: build two n x n matrices of unsigned 32-bit
integers from the seed (SHA-256 in counter mode), multiply them modulo 2**32, answer the SHA-256
of the product (big-endian, row-major). Integer arithmetic, so the answer is exact on any hardware
and the chain itself computes the expected answer in pure Python (~4,000 multiply-adds).
The provider answers with `provider_control`; right -> +rep_control_pass, wrong or no answer within
`control_timeout_blocks` -> -rep_control_fail_penalty. A provider node computes the answer with
`control_answer` (or any implementation that agrees with it).
"""

from __future__ import annotations

import hashlib

from ledger.jobs import beacon, rules
from ledger.jobs.errors import JobError
from ledger.jobs.providers import adjust_reputation
from ledger.jobs.records import (
    CONTROL_COUNTER_KEY,
    ControlTask,
    Provider,
    control_key,
    load,
    next_counter,
    store,
)

MASK32 = (1 << 32) - 1


def _matrix(seed: bytes, tag: bytes, n: int) -> list[list[int]]:
    words: list[int] = []
    counter = 0
    while len(words) < n * n:
        block = hashlib.sha256(seed + tag + counter.to_bytes(4, "big")).digest()
        words.extend(int.from_bytes(block[i:i + 4], "big") for i in range(0, 32, 4))
        counter += 1
    return [words[r * n:(r + 1) * n] for r in range(n)]


def control_answer(seed: bytes, n: int = rules.CONTROL_MATRIX_N) -> bytes:
    a, b = _matrix(seed, b"A", n), _matrix(seed, b"B", n)
    cols = list(zip(*b, strict=True))
    out = bytearray()
    for row in a:
        for col in cols:
            out += (sum(x * y for x, y in zip(row, col, strict=True)) & MASK32).to_bytes(4, "big")
    return hashlib.sha256(bytes(out)).digest()


def open_task(state, provider: bytes) -> ControlTask | None:
    return load(state, control_key(provider), ControlTask)


def issue(state, height: int) -> tuple[bytes, ControlTask] | None:
    """At every `control_interval_blocks`-th height: give one provider a task (None if nobody)."""
    jp = state.params.jobs
    if height % jp.control_interval_blocks:
        return None
    seed = beacon.current(state)
    best = None
    for key, _raw in state.iter_prefix(b"Jp"):
        addr = key[2:]
        if open_task(state, addr) is not None:
            continue
        d = beacon.draw(seed, b"control", addr)
        if best is None or d < best[0]:
            best = (d, addr)
    if best is None:
        return None
    addr = best[1]
    task_id = next_counter(state, CONTROL_COUNTER_KEY)
    task = ControlTask(task_id=task_id, seed=beacon.draw(seed, b"control-seed", addr).to_bytes(32, "big"),
                       issued_height=height, due_height=height + jp.control_timeout_blocks)
    store(state, control_key(addr), task)
    return addr, task


def answer(state, provider: bytes, task_id: int, answer_digest: bytes) -> bool:
    """The provider's answer: returns whether it was right (the reputation moves either way)."""
    task = open_task(state, provider)
    if task is None or task.task_id != task_id:
        raise JobError(f"no open control task {task_id} for this provider")
    ok = answer_digest == control_answer(task.seed)
    store(state, control_key(provider), None)
    if ok:
        adjust_reputation(state, provider, state.params.jobs.rep_control_pass, controls_passed=1)
    else:
        adjust_reputation(state, provider, -state.params.jobs.rep_control_fail_penalty, controls_failed=1)
    return ok


def expire(state, height: int) -> list[bytes]:
    """Fail every open task whose due height has passed."""
    late = []
    for key, raw in state.iter_prefix(b"Jk"):
        task = raw if isinstance(raw, ControlTask) else ControlTask.decode(raw)
        if task.due_height < height:
            late.append(key[2:])
    for addr in late:
        store(state, control_key(addr), None)
        adjust_reputation(state, addr, -state.params.jobs.rep_control_fail_penalty, controls_failed=1)
    return late


__all__ = ["Provider", "answer", "control_answer", "expire", "issue", "open_task"]
