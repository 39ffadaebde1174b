"""A worker's side of a chain job: from the job's spec to the trainer, and from the trainer's
outcome to the `job_result` transaction body.

The chain knows nothing of tensors and the trainer nothing of the chain (ARCHITECTURE.md); this
module is the seam. What a worker does with a job it is assigned to:

1. `trainer_job(spec)` and `load_data(spec)`: the trainer's job spec and dataset (built-in sources
   need no download; an artifact dataset comes through `fetch(cid) -> bytes`, e.g. the p2p blob
   exchange, checked against its id by the trainer);
2. train with `trainer.worker.Worker` (peers = the job's active workers, `checkpoint_every` from
   the spec; the daemon adapts p2p streams to the trainer's transport);
3. `weights_blob(worker)` (safetensors of the final weights) and the checkpoint blobs are published
   by content id; rank 0 posts `result_body(...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ledger.jobs import rules
from ledger.jobs.cid import cid_of
from ledger.jobs.records import Metric, Work
from ledger.txkinds.job_result import JobResult
from mindnode.jobs.spec import JobSpec


def trainer_job(spec: JobSpec):
    from trainer.job import JobSpec as TrainerJob

    t = spec.trainer_spec()
    job = TrainerJob(t["model"], t["dataset"], t["train"])
    job.validate()
    return job


def model_spec(spec: JobSpec):
    from trainer.zoo import ModelSpec

    t = spec.trainer_spec()
    return ModelSpec(t["model"]["name"], t["model"]["config"])


def train_config(spec: JobSpec):
    """The trainer config of the job. Every checkpoint is kept: a verifier may replay any interval."""
    import dataclasses

    from trainer.worker import TrainConfig

    cfg = TrainConfig.from_dict(spec.trainer_spec()["train"])
    if cfg.checkpoint_every:
        cfg = dataclasses.replace(cfg, keep_checkpoints=cfg.steps // cfg.checkpoint_every + 2)
    return cfg


def load_data(spec: JobSpec, fetch: Callable[[str], bytes] | None = None):
    from trainer.data import DatasetSpec, load_dataset

    d = spec.trainer_spec()["dataset"]
    return load_dataset(DatasetSpec(d["kind"], d["config"]), fetch=fetch)


def weights_blob(model) -> bytes:
    """The final weights as safetensors bytes (the result artifact; its CID goes on chain)."""
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()})


def metric_ppm(value: float) -> int:
    """A metric as integer millionths (what the chain stores), rounded half away from zero, >= 0."""
    return max(0, int(round(value * rules.PPM)))


def result_body(job_id: int, spec: JobSpec, weights: bytes, metrics: Mapping[str, float],
                samples: Mapping[bytes, int], checkpoints: Sequence[bytes]) -> JobResult:
    """`samples`: provider address -> samples it processed (a full-run worker: steps x batch size)."""
    return JobResult(job_id=job_id, result_cid=cid_of(weights),
                     metrics=tuple(Metric(name=k, value_ppm=metric_ppm(v)) for k, v in sorted(metrics.items())),
                     work=tuple(Work(provider=a, samples=n) for a, n in sorted(samples.items())),
                     checkpoints=tuple(cid_of(c) for c in checkpoints))


def full_run_samples(spec: JobSpec) -> int:
    """Samples one worker processes in a whole run (sync steps or async inner steps x batch)."""
    return spec.steps * spec.batch_size
