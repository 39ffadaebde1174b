"""The verifier's side of a chain job: replay the drawn step range from the workers' checkpoints,
check the result weights, evaluate the acceptance metric on the held-out split, and build the
`job_verify` body.

Which steps are replayed: the chain draws `replay_from` and `replay_steps`; checkpoints exist only
every `checkpoint_every` steps, so the verifier replays the whole checkpoint interval that covers
the drawn range: from the last checkpoint at or before `replay_from` to the first checkpoint at or
after `replay_from + replay_steps` (the drawn range is unknown to the workers when they train, so
any interval may be checked). Before the first checkpoint, the verifier starts from the step-0
state it rebuilds itself from the spec (`initial_checkpoint`). The replayed parameters must match that checkpoint within the
trainer's tolerance (`trainer.replay`: bitwise for local/async inner steps on one machine,
`SYNC_REPLAY_ATOL` for sync steps replayed as one process over the global batch). The result
weights must equal the last checkpoint's model when it is at the final step, and the metric is
measured on those weights.

Attribution: async checkpoints are per worker (their local steps), so a failing replay names that
worker. A sync step mixes every worker's gradient; the checkpoints cannot tell who sent a wrong
one, so a failing sync replay names every worker of the result (the trainer would need per-rank
gradient commitments to do better; see ledger/JOBS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ledger.txkinds.job_verify import JobVerify
from mindnode.jobs import work
from mindnode.jobs.errors import JobSpecError
from mindnode.jobs.spec import JobSpec


@dataclass(frozen=True)
class Verdict:
    replay_ok: bool
    start_step: int
    end_step: int
    max_abs_diff: float
    weights_match: bool
    metrics: dict[str, float]
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.replay_ok and self.weights_match


def _flat(model_tensors: dict, names: list[str]) -> np.ndarray:
    return np.concatenate([model_tensors[n].reshape(-1).numpy().astype(np.float32) for n in names])


def evaluate(spec: JobSpec, dataset, weights: bytes) -> dict[str, float]:
    """Held-out loss and accuracy of `weights` (safetensors) for the spec's model."""
    import torch
    from safetensors.torch import load

    from trainer.checkpoint import load_weights
    from trainer.zoo import accuracy, build_model, loss_fn

    ms = work.model_spec(spec)
    model = build_model(ms, seed=0)
    load_weights(model, load(weights))
    x, y = torch.from_numpy(dataset.x_test), torch.from_numpy(dataset.y_test)
    model.eval()
    with torch.no_grad():
        loss = float(loss_fn(ms, model, x, y))
    return {"loss": loss, "accuracy": accuracy(ms, model, x, y)}


class _Offline:
    """A transport that is never used: replays and initial states need no network."""

    def __init__(self, self_id: str):
        self.self_id = self_id

    async def send(self, peer_id, channel, data, timeout):  # pragma: no cover - never called
        raise RuntimeError("offline")

    async def recv(self, peer_id, channel, timeout):  # pragma: no cover - never called
        raise RuntimeError("offline")


def initial_checkpoint(spec: JobSpec, dataset):
    """The state at step 0, which every worker starts from (weights from the spec's seed, fresh
    optimizer): a verifier rebuilds it instead of trusting a posted one. (A job fine-tuning a
    base model artifact would load it here too: not supported yet.)"""
    from trainer.worker import Worker

    if spec.base_model:
        raise JobSpecError("verifying a job on a base model artifact needs the artifact (not supported yet)")
    return Worker(_Offline("verifier"), ["verifier"], work.model_spec(spec), dataset, work.train_config(spec)).snapshot()


def verify_result(spec: JobSpec, dataset, checkpoints: list[bytes], weights: bytes, replay_from: int,
                  replay_steps: int, world: int | None = None, rank: int = 0) -> Verdict:
    """Replay the checkpoint interval covering [replay_from, replay_from + replay_steps] and check.
    `world` (sync: the number of workers whose global batch a step took) defaults to the group
    recorded in the interval's end checkpoint."""
    from safetensors.torch import load

    from trainer import checkpoint as ck
    from trainer.replay import REPLAY_ATOL, SYNC_REPLAY_ATOL, replay
    from trainer.zoo import build_model, trainable_names

    cfg = work.train_config(spec)
    ms = work.model_spec(spec)
    cks = sorted((ck.loads(b) for b in checkpoints), key=lambda c: c.step)
    if not cks:
        raise JobSpecError("the result has no checkpoints to replay from")
    names = trainable_names(build_model(ms, seed=0))
    end_want = replay_from + replay_steps
    start = next((c for c in reversed(cks) if c.step <= replay_from), None) or initial_checkpoint(spec, dataset)
    end = next((c for c in cks if c.step >= end_want), None)
    metrics = evaluate(spec, dataset, weights)
    final = cks[-1]
    weights_match = True
    if final.step == spec.steps:
        w = load(weights)
        weights_match = set(w) == set(final.model) and all(np.array_equal(w[k].numpy(), final.model[k].numpy())
                                                          for k in w)
    if end is None or end.step <= start.step:
        return Verdict(False, start.step, end.step if end else -1, float("inf"), weights_match,
                       metrics, "no checkpoint at or after the drawn range")
    if world is None:       # the group that computed the interval, as the checkpoint at its end records it
        world = len(end.header.get("group") or ()) or 1
    got = replay(ms, dataset, cfg, start, end.step - start.step, rank=rank, world=world)
    diff = float(np.abs(got - _flat(end.model, names)).max())
    tol = SYNC_REPLAY_ATOL if cfg.mode == "sync" else REPLAY_ATOL
    ok = diff <= tol
    return Verdict(ok, start.step, end.step, diff, weights_match, metrics,
                   "" if ok else f"replay of steps {start.step}..{end.step} differs by {diff:.3g} (tolerance {tol})")


def verify_body(job, verdict: Verdict, metric: str, suspects: list[bytes] | None = None) -> JobVerify:
    """The `job_verify` body for chain job record `job` (ledger.jobs.records.Job)."""
    bad: tuple = ()
    if not verdict.ok:
        bad = tuple(sorted(suspects if suspects is not None else [w.provider for w in job.result.work]))
    return JobVerify(job_id=job.id, replay_from=job.replay_from, replay_steps=job.replay_steps, bad_workers=bad,
                     metric_ppm=work.metric_ppm(verdict.metrics[metric]))
