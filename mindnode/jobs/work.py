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

    cfg = _async_every_round(_default_checkpoints(TrainConfig.from_dict(spec.trainer_spec()["train"])))
    if cfg.checkpoint_every:
        cfg = dataclasses.replace(cfg, keep_checkpoints=cfg.steps // cfg.checkpoint_every + 2)
    return cfg


#: Checkpoints of a chain job whose spec sets none (`checkpoint_every` 0): this many per run.
DEFAULT_CHECKPOINTS = 4


def _default_checkpoints(cfg):
    """A chain job is verified by replaying from checkpoints, so it always has some: a spec without
    `checkpoint_every` gets one every steps / DEFAULT_CHECKPOINTS (a job without any could never be
    verified, and its workers never paid: the bundled text-lora was such a job)."""
    import dataclasses

    if cfg.checkpoint_every:
        return cfg
    return dataclasses.replace(cfg, checkpoint_every=max(1, cfg.steps // DEFAULT_CHECKPOINTS))


def _async_every_round(cfg):
    """Async jobs checkpoint at every averaging round (checkpoint_every = H), whatever the spec says:
    a round's checkpoint holds each worker's own pre-average parameters, so a verifier can replay any
    one worker's round alone and name it. Across several rounds that is impossible (the anchor of
    round 2 already mixes every worker's round-1 delta), so coarser checkpoints would lose attribution."""
    import dataclasses

    if cfg.mode != "async":
        return cfg
    return dataclasses.replace(cfg, checkpoint_every=cfg.inner_steps)


def load_data(spec: JobSpec, fetch: Callable[[str], bytes] | None = None):
    from trainer.data import DatasetSpec, load_dataset

    d = spec.trainer_spec()["dataset"]
    return load_dataset(DatasetSpec(d["kind"], d["config"]), fetch=fetch)


#: A dataset artifact is read whole into memory (training needs it there): refuse bigger ones.
MAX_DATASET_BYTES = 1 << 30


async def fetch_data(spec: JobSpec, get):
    """The spec's dataset, fetching a `dataset.artifact` by content id first (`get(cid) -> bytes`,
    e.g. the node's blob exchange, which checks the bytes against the id and may find them already
    prefetched from the job's announcement). Why async and separate from `load_data`: the fetch is
    network I/O on the node's loop; parsing and splitting is CPU work for a thread."""
    import trio

    from mindnode.jobs.errors import JobSpecError

    cid = spec.data["dataset"].get("artifact")
    if cid is None:
        return await trio.to_thread.run_sync(load_data, spec)
    data = await get(cid)
    if len(data) > MAX_DATASET_BYTES:
        raise JobSpecError(f"dataset {cid} is {len(data)} bytes; the limit is {MAX_DATASET_BYTES}")
    blobs = {cid: bytes(data)}
    return await trio.to_thread.run_sync(load_data, spec, blobs.__getitem__)


def weights_blob(model) -> bytes:
    """The final weights as safetensors bytes (the result artifact; its CID goes on chain)."""
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()})


#: A base model artifact to fine-tune is read whole into memory (safetensors): refuse bigger ones.
MAX_BASE_MODEL_BYTES = 1 << 30


def base_weights(spec: JobSpec, data: bytes) -> dict:
    """The base model artifact (`model.base`, safetensors bytes) as tensors for `trainer.worker.Worker`'s
    `init_weights`, checked against the spec's model before any training: bounded size, safetensors
    only (no pickle), every weight of the base architecture present with its shape (a `transformer`
    artifact for a `lora` job's frozen base, or the `transformer` itself), nothing unknown.
    Raises JobSpecError saying what does not fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from mindnode.jobs.errors import JobSpecError
    from trainer.errors import SpecError
    from trainer.zoo import build_model, load_pretrained

    cid = spec.base_model
    if len(data) > MAX_BASE_MODEL_BYTES:
        raise JobSpecError(f"base model {cid} is {len(data)} bytes; the limit is {MAX_BASE_MODEL_BYTES}")
    try:
        tensors = load(bytes(data))
    except (SafetensorError, ValueError) as exc:
        raise JobSpecError(f"base model {cid} is not a safetensors file: {exc}") from None
    model = build_model(model_spec(spec), seed=0)
    base_names = {n for n in model.state_dict() if ".lora_" not in n}
    want = {n.replace(".base.", ".") for n in base_names}     # a plain transformer's names
    missing = sorted(want - set(tensors))
    if missing:
        raise JobSpecError(f"base model {cid} does not fit model {model_spec(spec).to_json()}: "
                           f"missing weight(s) {missing[:5]}")
    try:
        load_pretrained(model, tensors)
    except SpecError as exc:
        raise JobSpecError(f"base model {cid} does not fit the job's model config: {exc}") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


async def fetch_base_weights(spec: JobSpec, get) -> dict | None:
    """Fetch the spec's base model artifact by content id (`get(cid) -> bytes`, e.g. the blob exchange,
    which checks the bytes against the id) and check it (`base_weights`); None without a base."""
    if not spec.base_model:
        return None
    import trio

    data = await get(spec.base_model)
    return await trio.to_thread.run_sync(base_weights, spec, data)


def with_evidence(body: JobResult, evidence_cid: str) -> JobResult:
    """`body` with the evidence bundle's content id (async jobs: the workers' signed checkpoint lists)."""
    import dataclasses

    return dataclasses.replace(body, evidence=evidence_cid)


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
