"""TEST-ONLY fault switches, read from the environment variable ``MINDNODE_TEST_FAULTS``.

Why in the product at all: end-to-end tests must show what honest nodes do when a validator
misbehaves (double-sealing) or when links are cut (a partition), with real processes. The switches
are fenced: nothing here is reachable unless the variable is set, and a node with any switch on
logs a loud warning at start and says so in `/status` (``test_faults``).

Values (comma-separated):
* ``double-seal``  -- when this validator seals, it also seals a second, different block at the
  same height and gossips both (equivocation: evidence for the slashing rules).
* ``debug-api``    -- exposes ``POST /debug/deny?arg=<peer id>`` / ``/debug/allow`` on the HTTP API
  to cut/restore links to a peer (partition tests).
* ``few-heartbeats`` -- this provider gossips heartbeats only in hours 0..qualifying_hours-1 of a
  chain day: exactly the bar, which does not qualify for the mining reward (more than 5 needed).
* ``cheat-gradients`` -- when this provider trains a job, it sends 3x its gradient into every
  sync average (`scale_gradients`): the issue's cheating worker, which verification must catch.
  Its signed gradient sketches honestly describe what it sent (its peers would reject anything
  else), so the verifier's sketch comparison names it, and only it (mindnode/jobs/verify.py).
* ``cheat-result`` -- when this provider posts a job's result, it posts made-up weights (every
  parameter scaled by `MADE_UP_SCALE`) and claims made-up metrics (`make_up_result`): the issue's
  other cheat. The weights are not the state the ranks signed, so the verifier names the poster alone.
* ``cheat-async`` -- when this provider trains an async (DiLoCo) job, every local step moves its
  parameters 3x as far as its optimizer says (`scale_local_updates`), so the delta it sends into
  each averaging round is not what its data gives; per-worker replay must name it alone.
* ``lazy-verifier`` -- when this provider is a job's first verifier, it posts a clean verdict
  copying the poster's claimed metric without fetching or replaying anything (`lazy_verdict`): the
  verifier the chain's random audit (ledger/JOBS.md "Audits") must catch on a cheating job. Drawn
  as an auditor or a decider it replays honestly (those verdicts are not audited), so a test can
  make every spare provider lazy and still see an honest audit whichever one the beacon draws first.
"""

from __future__ import annotations

import os

ENV = "MINDNODE_TEST_FAULTS"
KNOWN = {"double-seal", "debug-api", "few-heartbeats", "cheat-gradients", "cheat-result", "cheat-async",
         "lazy-verifier"}

#: What ``cheat-gradients`` multiplies a worker's local gradient by.
CHEAT_GRADIENT_FACTOR = 3.0


def active() -> frozenset[str]:
    raw = os.environ.get(ENV, "")
    return frozenset(f.strip() for f in raw.split(",") if f.strip() in KNOWN)


def scale_gradients(worker, factor: float = CHEAT_GRADIENT_FACTOR) -> None:
    """Make a trainer `Worker` cheat: after each local forward/backward its gradients are scaled by
    `factor`, so what it contributes to a sync average is not what the data gives. Patches this one
    instance (the trainer itself knows nothing of faults)."""
    honest = worker._local_step

    def cheating_step(average: bool):
        out = honest(average)
        for p in worker.params:
            if p.grad is not None:
                p.grad.mul_(factor)
        return out

    worker._local_step = cheating_step


#: What ``cheat-result`` multiplies the posted weights by.
MADE_UP_SCALE = 1.5
#: The metrics ``cheat-result`` claims.
MADE_UP_METRICS = {"accuracy": 0.999, "loss": 0.001}


def make_up_result(weights: bytes, metrics: dict) -> tuple[bytes, dict]:
    """A made-up result in place of the trained one: (safetensors weights, metrics) the poster never
    computed. Set as `ProviderAgent.result_hook` by the daemon when ``cheat-result`` is on."""
    from safetensors.torch import load, save

    fake = {k: (v * MADE_UP_SCALE if v.is_floating_point() else v).contiguous() for k, v in load(weights).items()}
    return save(fake), dict(MADE_UP_METRICS)


#: What ``cheat-async`` multiplies each local (inner) update by.
CHEAT_ASYNC_FACTOR = 3.0


def scale_local_updates(worker, factor: float = CHEAT_ASYNC_FACTOR) -> None:
    """Make an async trainer `Worker` cheat: each local optimizer step's update (new - old
    parameters) is scaled by `factor`. The worker records and averages what it really computed, so
    its own checkpoints show the cheat to anyone who replays its inner steps. Patches this instance."""
    import torch

    honest = worker._local_step

    def cheating_step(average: bool):
        before = [p.detach().clone() for p in worker.params]
        out = honest(average)
        with torch.no_grad():
            for p, b in zip(worker.params, before, strict=True):
                p.copy_(b + (p - b) * factor)
        return out

    worker._local_step = cheating_step


def lazy_verdict(job):
    """The ``lazy-verifier``'s `job_verify` body for `job`, or None when it must verify honestly
    (it is an auditor or a decider): nobody named, the claimed acceptance metric copied."""
    from ledger.txkinds.job_verify import JobVerify

    if job.audit or job.accused:
        return None
    claimed = next(m.value_ppm for m in job.result.metrics if m.name == job.metric)
    return JobVerify(job_id=job.id, replay_from=job.replay_from, replay_steps=job.replay_steps, bad_workers=(),
                     metric_ppm=claimed)
