"""One call to run a training job as a worker: the entry point the jobs layer (mindnode) uses.

A job is data, never code: ``JobSpec`` = a zoo model spec + a dataset spec + a train config,
with one canonical JSON form (sorted keys, no spaces) that can be hashed, signed or gossiped.
``run_worker`` loads the dataset (fetching content-addressed blobs through the caller's
``fetch``), builds the worker, and either starts (resuming from ``checkpoint_dir`` if it has a
checkpoint) or joins a running group through ``join_from``.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.data import DatasetSpec, Fetch
from trainer.errors import SpecError
from trainer.transport import Transport

MAX_JOB_JSON = 64 * 1024


@dataclass(frozen=True)
class JobSpec:
    model: dict[str, Any]  # {"name": ..., "config": {...}} (trainer.zoo.ModelSpec)
    dataset: dict[str, Any]  # {"kind": ..., "config": {...}} (trainer.data.DatasetSpec)
    train: dict[str, Any]  # trainer.worker.TrainConfig fields

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> JobSpec:
        if len(text) > MAX_JOB_JSON:
            raise SpecError(f"job spec exceeds {MAX_JOB_JSON} bytes")
        try:
            obj = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError(f"job spec is not valid JSON: {exc}") from None
        if not isinstance(obj, dict) or set(obj) != {"model", "dataset", "train"}:
            raise SpecError('job spec must be {"model": ..., "dataset": ..., "train": ...}')
        if not all(isinstance(obj[k], dict) for k in obj):
            raise SpecError("job spec model, dataset and train must be objects")
        spec = cls(obj["model"], obj["dataset"], obj["train"])
        spec.validate()
        return spec

    def validate(self) -> None:
        """Check everything that can be checked without torch or data (cheap, for gossip validators)."""
        if set(self.model) - {"name", "config"} or not isinstance(self.model.get("name"), str):
            raise SpecError('model must be {"name": str, "config": {...}}')
        if set(self.dataset) - {"kind", "config"} or not isinstance(self.dataset.get("kind"), str):
            raise SpecError('dataset must be {"kind": str, "config": {...}}')
        from trainer.worker import TrainConfig  # imports torch: only when validating fully

        TrainConfig.from_dict(self.train)


async def run_worker(
    transport: Transport,
    peers: Sequence[str],
    job: JobSpec,
    *,
    job_id: str,
    fetch: Fetch | Callable[[str], Awaitable[bytes]] | None = None,
    checkpoint_dir: Path | None = None,
    progress: Callable[[Any], None] | None = None,
    join_from: str | None = None,
    init_weights: dict[str, Any] | None = None,
):
    """Train ``job`` as this worker; returns ``trainer.worker.TrainResult``.

    ``fetch(cid) -> bytes`` (plain or async) supplies content-addressed dataset blobs.
    ``peers``: the group at start (this worker's id included or not); ``join_from``: a member
    that has ``admit``ted us (we download its state, then take part from its next round).
    Keep a handle on the worker to admit others: use ``make_worker`` + ``Worker.run`` instead.
    """
    cid = job.dataset.get("config", {}).get("cid") if job.dataset.get("kind") == "blob" else None
    if cid is not None and fetch is not None and inspect.iscoroutinefunction(fetch):
        blob = await fetch(cid)  # e.g. the p2p blob exchange; verified against the cid on load
        fetch = lambda _cid: blob  # noqa: E731
    worker = make_worker(transport, peers, job, job_id=job_id, fetch=fetch, checkpoint_dir=checkpoint_dir,
                         progress=progress, init_weights=init_weights)
    if join_from is not None:
        return await worker.join(join_from)
    return await worker.run()


def make_worker(transport: Transport, peers: Sequence[str], job: JobSpec, *, job_id: str,
                fetch: Fetch | None = None, checkpoint_dir: Path | None = None,
                progress: Callable[[Any], None] | None = None, init_weights: dict[str, Any] | None = None):
    """Build the ``Worker`` for ``job`` (dataset loaded, model built), without starting it."""
    from trainer.data import load_dataset
    from trainer.worker import TrainConfig, Worker
    from trainer.zoo import ModelSpec

    cfg = TrainConfig.from_dict(job.train)
    dataset = load_dataset(DatasetSpec(job.dataset["kind"], job.dataset.get("config", {})), fetch=fetch,
                           split_seed=cfg.seed)
    model = ModelSpec(job.model["name"], job.model.get("config", {}))
    return Worker(transport, peers, model, dataset, cfg, job_id=job_id, checkpoint_dir=checkpoint_dir,
                  progress=progress, init_weights=init_weights)
