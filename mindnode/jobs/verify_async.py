"""Verifying an async (DiLoCo) job worker by worker, so a failing replay names the worker(s) that
cheated and nobody else.

What an async worker's checkpoints hold (the trainer saves one at every averaging round in a chain
job, `work._async_every_round`): the state after the round's outer step (the new anchor, equal on
every worker), this worker's own inner optimizer state, and `local`: its parameters just before
the average (what its H inner steps produced; the delta it averaged is `anchor - local`).

For each averaging round that overlaps the drawn range, and for EVERY worker with a list in the
evidence bundle (cost: workers x the covering rounds' inner steps; at most 16 x ~100 steps, so no
subset is drawn), the verifier:

1. replays the worker's inner steps from its own checkpoint at the round's start (or the rebuilt
   step-0 state) with its rank in that round's group, and compares with its recorded `local`
   (tolerance `ASYNC_REPLAY_RTOL` of the round's movement): a mismatch names that worker alone;
2. recomputes the round's average from every worker's recorded `local` and applies the outer step
   (outer optimizer state from the round's start), and compares with each worker's end state:
   a worker whose end state alone differs is named; when every end state differs from an average
   of honestly replayed locals, someone averaged a different delta than it recorded, which only
   commitments to the averaged vectors could attribute: every worker of the round is named (as a
   sync replay without sketches does).

Evidence problems are the poster's: a worker the result pays while still active whose signed list
is missing or forged (`evidence.missing_lists`), or an unreadable bundle. A list that is signed but
useless (undecodable checkpoints, no checkpoint where the round needs one, a wrong group) is the
worker's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ledger.keys import address_to_text
from mindnode.jobs import verify, work
from mindnode.jobs.spec import JobSpec

#: An honest replay of a worker's inner steps is bitwise equal on one machine (same thread count);
#: across machines float rounding differs slightly. A round passes within this fraction of how far
#: the worker's parameters moved in it (or the trainer's REPLAY_ATOL). A worker scaling its updates
#: by 3 is off by twice its movement.
ASYNC_REPLAY_RTOL = 1e-3


@dataclass
class AsyncVerdict:
    """The outcome over every worker. `bad`: providers whose own work failed; `reasons` per provider."""

    metrics: dict[str, float]
    weights_match: bool
    start_step: int
    end_step: int
    bad: list[bytes] = field(default_factory=list)
    reasons: dict[bytes, str] = field(default_factory=dict)
    max_abs_diff: float = 0.0
    checked: int = 0                 # (worker, round) replays done

    @property
    def ok(self) -> bool:
        return not self.bad and self.weights_match

    @property
    def reason(self) -> str:
        parts = [f"{address_to_text(p)[:12]}: {r}" for p, r in sorted(self.reasons.items())]
        if not self.weights_match:
            parts.append("the result weights are not the final checkpoint's model")
        return "; ".join(parts)


def _flat(tensors: dict, names: list[str]) -> np.ndarray:
    return np.concatenate([tensors[n].reshape(-1).numpy().astype(np.float32) for n in names])


def _outer_step(spec: JobSpec, dataset, start, avg_delta: np.ndarray) -> np.ndarray:
    """The anchor after one outer step from checkpoint `start` with averaged delta `avg_delta`,
    computed by the trainer's own code (a worker restored from `start`)."""
    from trainer.worker import Worker, flat_params, set_flat

    w = Worker(verify._Offline("verifier"), ["verifier"], work.model_spec(spec), dataset, work.train_config(spec))
    w._restore(start)
    anchor = w.anchor.copy()
    set_flat(w.params, anchor)
    set_flat(w.params, avg_delta, grad=True)
    w.outer.step()
    return flat_params(w.params)


def round_bounds(spec: JobSpec) -> list[int]:
    """The steps every honest async worker checkpoints at: each round boundary (H, 2H, ...) and the
    last step; 0 is the rebuilt initial state."""
    h = work.train_config(spec).inner_steps
    return sorted({*range(0, spec.steps, h), spec.steps})


def covering_rounds(spec: JobSpec, replay_from: int, replay_steps: int) -> list[tuple[int, int]]:
    """The rounds (start step, end step) overlapping [replay_from, replay_from + replay_steps]."""
    bounds = round_bounds(spec)
    end_want = replay_from + replay_steps
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > replay_from and a < end_want]


def needed_list_positions(spec: JobSpec, replay_from: int, replay_steps: int) -> dict[int, int]:
    """{step: position in a worker's list} of the checkpoints the covering rounds need. A worker's
    list holds its checkpoints in step order, one per round boundary (position k = step bounds[k+1]),
    so a verifier fetches only these few; a list that is not in that order fails on its own worker
    (the checkpoint at the position has another step)."""
    bounds = round_bounds(spec)
    steps = {s for r in covering_rounds(spec, replay_from, replay_steps) for s in r} - {0}
    return {s: bounds.index(s) - 1 for s in sorted(steps)}


def verify_async_workers(spec: JobSpec, dataset, lists: dict[bytes, list[bytes]], weights: bytes,
                         replay_from: int, replay_steps: int, *, base: dict | None = None,
                         final_checkpoint: bytes | None = None,
                         initial_group: list[str] | None = None) -> AsyncVerdict:
    """Replay the rounds covering [replay_from, replay_from + replay_steps] for every worker in `lists`
    (provider address -> its checkpoint blobs: all of them, or just those at `needed_list_positions`)
    and name those whose own work fails.

    `final_checkpoint`: the poster's checkpoint at the last step (from `job_result.checkpoints`); the
    result weights must equal its model. Ranks: a round's inner steps take their data slice from the
    group at the round's START (a worker dropped in the round leaves the group only after its
    average), so the rank comes from the start checkpoint's group; for the first round, from
    `initial_group` (the job's first assignment, by address text; default: the end checkpoint's)."""
    from safetensors.torch import load

    from trainer import checkpoint as ck
    from trainer.errors import CheckpointError
    from trainer.replay import REPLAY_ATOL, replay
    from trainer.zoo import build_model, trainable_names

    cfg = work.train_config(spec)
    ms = work.model_spec(spec)
    names = trainable_names(build_model(ms, seed=0))
    metrics = verify.evaluate(spec, dataset, weights)
    verdict = AsyncVerdict(metrics, True, replay_from, replay_from + replay_steps)
    w = load(weights)
    if final_checkpoint is not None:
        try:
            fin = ck.loads(final_checkpoint)
            verdict.weights_match = set(w) == set(fin.model) and all(
                np.array_equal(w[k].numpy(), fin.model[k].numpy()) for k in w)
        except CheckpointError:
            verdict.weights_match = False
    initial = verify.initial_checkpoint(spec, dataset, base=base)

    def blame(p: bytes, why: str) -> None:
        if p not in verdict.reasons:
            verdict.bad.append(p)
            verdict.reasons[p] = why

    # every worker's checkpoints by step; a worker whose list is unusable is its own fault
    by_step: dict[bytes, dict[int, ck.Checkpoint]] = {}
    for p, blobs in lists.items():
        try:
            cks = {c.step: c for c in (ck.loads(b) for b in blobs)}
        except CheckpointError as exc:
            blame(p, f"unreadable checkpoint: {exc}")
            continue
        off = verify.base_mismatch(spec, base, list(cks.values()), weights)
        if off:
            blame(p, off)
            continue
        by_step[p] = {0: initial, **cks}
    rounds = covering_rounds(spec, replay_from, replay_steps)
    if rounds:
        verdict.start_step, verdict.end_step = rounds[0][0], rounds[-1][1]
    for a, b in rounds:
        locals_: dict[bytes, tuple[np.ndarray, float]] = {}
        for p, cks in by_step.items():
            if p in verdict.reasons:
                continue
            start, end = cks.get(a), cks.get(b)
            if start is None or end is None:
                blame(p, f"no checkpoint at step {a if start is None else b} (a round boundary)")
                continue
            group = list((start.header.get("group") if a > 0 else initial_group) or end.header.get("group") or ())
            me = address_to_text(p)
            if me not in group or "local" not in end.extra:
                blame(p, f"checkpoint step {b} is not this worker's async round state")
                continue
            try:
                got = replay(ms, dataset, cfg, start, b - a, rank=sorted(group).index(me), world=len(group))
            except (CheckpointError, ValueError, RuntimeError) as exc:
                blame(p, f"checkpoint step {a} cannot be replayed: {exc}")
                continue
            claimed = end.extra["local"].numpy().astype(np.float32)
            if claimed.shape != got.shape:
                blame(p, f"checkpoint step {b}: local parameters of the wrong size")
                continue
            moved = float(np.abs(got - _flat(start.model, names)).max())
            diff = float(np.abs(got - claimed).max())
            tol = max(REPLAY_ATOL, ASYNC_REPLAY_RTOL * moved)
            verdict.checked += 1
            verdict.max_abs_diff = max(verdict.max_abs_diff, diff)
            if diff > tol:
                blame(p, f"replay of its steps {a}..{b} differs by {diff:.3g} (tolerance {tol:.3g})")
                continue
            weight = float(end.extra["local_weight"].reshape(-1)[0]) if "local_weight" in end.extra else 1.0
            locals_[p] = (claimed, weight)
        _check_average(spec, dataset, names, by_step, locals_, a, b, blame, verdict)
    return verdict


def _check_average(spec, dataset, names, by_step, locals_, a, b, blame, verdict) -> None:
    """Step 2 of the module docstring for round a..b, over the workers whose own replay passed.

    Checked only when every member of the round's group has a passing replay (with a worker
    already named, the average mixed its delta and tells nothing more)."""
    if not locals_:
        return
    first = next(iter(locals_))
    group = set(by_step[first][b].header.get("group") or ())
    if {address_to_text(p) for p in locals_} != group:
        return
    start = by_step[first][a]
    anchor = start.extra["anchor"].numpy().astype(np.float32) if "anchor" in start.extra else _flat(start.model, names)
    total = sum(wt for _, wt in locals_.values())
    avg = sum((anchor - loc) * (wt / total) for loc, wt in locals_.values()).astype(np.float32)
    want = _outer_step(spec, dataset, start, avg)
    moved = float(np.abs(want - anchor).max())
    tol = max(1e-6, ASYNC_REPLAY_RTOL * moved)
    off = {p: float(np.abs(_flat(by_step[p][b].model, names) - want).max()) for p in locals_}
    bad = [p for p, d in off.items() if d > tol]
    if bad and len(bad) < len(off):
        for p in bad:
            blame(p, f"its state after round {a}..{b} is not the group's average (off by {off[p]:.3g})")
    elif bad:
        for p in bad:
            blame(p, f"the average of round {a}..{b} is not what the recorded local steps give "
                     f"(off by {off[p]:.3g}): someone averaged another delta than it recorded")
