"""A training worker: one peer's share of a data-parallel job, in sync, async (DiLoCo) or local mode.

- ``sync``: every step each worker computes the mean-loss gradient on its slice of the global
  batch, the group averages the gradients weighted by samples (``Averager``), and every worker
  applies the same optimizer step. With equal slices this is exactly one process with the global
  batch (tests check 3 workers with batch b against 1 process with 3b to 1e-5 after 20 steps).
- ``async``: DiLoCo. H inner steps of AdamW on local slices, then the workers average their
  parameter deltas from the shared anchor (weighted by samples) and apply an outer SGD with
  Nesterov momentum to the anchor. One averaging per H steps: about H times fewer bytes.
- ``local``: no averaging (a single worker, or the replay reference).

A peer admitted with ``admit(peer_id)`` is announced in the next round's commit; once that round
commits, this worker (the donor) sends it a state snapshot (a checkpoint: parameters, optimizer
states, step, data position, round, group) and every member counts it in from the next round.
The joiner calls ``Worker.join(donor)`` instead of ``run()``'s fresh start.

Signed sketches (sync, optional): a worker built with a ``signer`` (bytes -> signature) and a
``verify_peer`` ends each sync step by swapping signed sketches of its gradient contribution with
the group (``trainer/sketch.py``); a peer whose sketch does not match what it sent fails the run
with ``RoundFailed`` naming it, and every rank's signed message is kept in ``sketch_log`` for a
verifier, which can then name the one rank that sent a wrong gradient.

Data: ``BatchPlan`` gives each worker its slice of each global batch by (seed, rank, world,
position); the position (global samples consumed) is checkpointed, so a resumed or joined
worker continues with the right data even if the group size changed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trio

from trainer import checkpoint as ckpt_mod
from trainer.allreduce import Averager, RoundResult
from trainer.data import BatchPlan, Dataset
from trainer.errors import CheckpointError, PeerFailure, SpecError, TrainerError, leaf_exceptions
from trainer.transport import CountingTransport, Transport
from trainer.zoo import ModelSpec, accuracy, build_model, load_pretrained, loss_fn, trainable_names

log = logging.getLogger("mindnode.trainer")
MODES = ("sync", "async", "local")
STATE_CHUNK = 1 << 22
MAX_HISTORY = 10_000  # per-step records kept in TrainResult.history (the newest)


@dataclass
class TrainConfig:
    """How to train. ``steps`` counts optimizer steps (inner steps in async mode)."""

    mode: str = "sync"
    steps: int = 100
    batch_size: int = 32  # per worker
    optimizer: str = "adamw"  # sync/local optimizer and async inner optimizer: adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # for sgd
    inner_steps: int = 20  # H, async only
    outer_lr: float = 0.7
    outer_momentum: float = 0.5  # Nesterov; 0.9 (the DiLoCo paper's LM setting) lost ~1 point on digits
    compression: str = "none"  # none | fp16 | int8
    seed: int = 0
    round_timeout: float = 10.0
    chunk_elems: int = 1 << 20  # 4 MiB fp32 chunks: fastest of 128K..2M values in scripts/bench/allreduce.py
    quorum: int | None = None
    checkpoint_every: int = 0  # steps (sync/local) or at the first round boundary after (async); 0 = off
    keep_checkpoints: int = 2
    max_state_bytes: int = 1 << 31  # a joiner refuses a bigger snapshot

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Strict: unknown keys are an error (a typo must not silently train with defaults)."""
        if not isinstance(d, dict):
            raise SpecError("train config must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise SpecError(f"unknown train config key(s) {sorted(unknown)}; allowed: {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.mode not in MODES:
            raise SpecError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.optimizer not in ("adamw", "sgd"):
            raise SpecError(f"optimizer must be adamw or sgd, got {self.optimizer!r}")
        for name in ("steps", "batch_size", "inner_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "outer_lr", "round_timeout"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SpecError(f"{name} must be a positive number, got {v!r}")
        for name in ("momentum", "outer_momentum"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise SpecError(f"{name} must be in [0, 1), got {v!r}")
        if self.compression not in ("none", "fp16", "int8"):
            raise SpecError(f"compression must be none, fp16 or int8, got {self.compression!r}")
        for name in ("seed", "chunk_elems", "checkpoint_every", "keep_checkpoints", "max_state_bytes"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise SpecError(f"{name} must be a non-negative integer, got {v!r}")
        if not 1 <= self.chunk_elems <= 1 << 24:
            raise SpecError("chunk_elems must be in 1..16M")
        if self.quorum is not None and (not isinstance(self.quorum, int) or self.quorum < 1):
            raise SpecError(f"quorum must be a positive integer or null, got {self.quorum!r}")


@dataclass
class Progress:
    """What a progress bar shows, reported after every optimizer step."""

    step: int
    total_steps: int
    loss: float
    samples_per_s: float
    bytes_sent: int
    bytes_recv: int
    round: int
    peers: int


@dataclass
class TrainResult:
    steps: int
    rounds: int
    final_loss: float
    eval_loss: float
    eval_accuracy: float
    bytes_sent: int
    bytes_recv: int
    seconds: float
    group: tuple[str, ...]
    params_digest: str  # sha-256 of the trainable parameters (equal on all workers in sync mode)
    history: list[dict[str, Any]] = field(default_factory=list)


def flat_params(params: Sequence[torch.Tensor]) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in params]).numpy().astype(np.float32, copy=True)


def set_flat(params: Sequence[torch.Tensor], flat: np.ndarray, grad: bool = False) -> None:
    t = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32))
    i = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            chunk = t[i : i + n].view_as(p)
            if grad:
                p.grad = chunk.clone()
            else:
                p.copy_(chunk)
            i += n
    if i != t.numel():
        raise TrainerError(f"vector of {t.numel()} values does not fit {i} parameters")


def params_digest(params: Sequence[torch.Tensor]) -> str:
    return hashlib.sha256(flat_params(params).tobytes()).hexdigest()


class Worker:
    """One worker of a job. Build it, then ``await run()`` (fresh or resumed) or ``await join(donor)``.

    ``transport`` reaches the other workers; ``peers`` is the group at start (including this
    worker's id); ``job_id`` namespaces the channels so jobs sharing a transport never mix.
    """

    def __init__(
        self,
        transport: Transport,
        peers: Sequence[str],
        model_spec: ModelSpec,
        dataset: Dataset,
        config: TrainConfig,
        *,
        job_id: str = "job",
        checkpoint_dir: Path | None = None,
        progress: Callable[[Progress], None] | None = None,
        init_weights: dict[str, torch.Tensor] | None = None,
        signer: Callable[[bytes], bytes] | None = None,
        verify_peer: Callable[[str, bytes, bytes], bool] | None = None,
    ):
        config.validate()
        self.transport = CountingTransport(transport)
        self.self_id = transport.self_id
        self.group = tuple(sorted(set(peers) | {self.self_id})) if config.mode != "local" else (self.self_id,)
        self.spec = model_spec
        self.data = dataset
        self.cfg = config
        self.job_id = job_id
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.progress = progress
        self.model = build_model(model_spec, seed=config.seed)
        if init_weights is not None:
            load_pretrained(self.model, init_weights)
        names = trainable_names(self.model)
        named = dict(self.model.named_parameters())
        self.params = [named[n] for n in names]
        _check_fit(model_spec, self.model, dataset)
        self.plan = BatchPlan(dataset.n_train, config.seed, config.batch_size)
        self.x_train = torch.from_numpy(dataset.x_train)
        self.y_train = torch.from_numpy(dataset.y_train)
        self.opt = self._make_inner_optimizer()
        self.outer: torch.optim.Optimizer | None = None
        self.anchor: np.ndarray | None = None
        if config.mode == "async":
            self.anchor = flat_params(self.params)
            self.outer = torch.optim.SGD(self.params, lr=config.outer_lr, momentum=config.outer_momentum,
                                         nesterov=config.outer_momentum > 0)
        self.averager = Averager(self.transport, timeout=config.round_timeout, chunk_elems=config.chunk_elems,
                                 compression_name=config.compression, quorum=config.quorum,
                                 namespace=f"{job_id}/avg", keep_received=signer is not None)
        # Signed gradient sketches (sync mode, trainer/sketch.py): with a signer, every sync step ends
        # with an exchange of signed sketches, checked against what each peer actually sent; every
        # rank's signed message per step is kept in ``sketch_log`` (the evidence a verifier reads).
        if signer is not None and verify_peer is None:
            raise ValueError("a worker that signs sketches must also verify its peers' signatures")
        self.signer = signer
        self.verify_peer = verify_peer
        self.sketch_log: list[list[Any]] = []  # per sync step: every rank's SignedSketch, group order
        self.step = 0
        self.position = 0
        self.round = 0
        self.samples_since_round = 0
        self.last_checkpoint_step = 0
        self._pending_joiners: set[str] = set()
        self.history: list[dict[str, Any]] = []
        self._loss = math.nan
        self._out: np.ndarray | None = None
        # async: this worker's own parameters just before the last averaging round (and its weight),
        # kept in its checkpoints so a verifier can replay one worker's inner steps alone
        self._round_local: tuple[np.ndarray, float] | None = None
        self._background: trio.Nursery | None = None

    # -- public API ------------------------------------------------------------------------
    def admit(self, peer_id: str) -> None:
        """Let ``peer_id`` join: announced at the next round, then sent our state by this worker."""
        if peer_id == self.self_id:
            raise ValueError("a worker cannot admit itself")
        self._pending_joiners.add(peer_id)

    async def run(self, resume: bool = True) -> TrainResult:
        """Train until ``config.steps``; resumes from the newest checkpoint in ``checkpoint_dir``."""
        if resume and self.checkpoint_dir is not None:
            ck = ckpt_mod.latest(self.checkpoint_dir)
            if ck is not None:
                self._restore(ck)
                log.info("%s resumed from step %d", self.self_id, self.step)
        if self.cfg.mode != "local" and len(self.group) > 1:
            await self._handshake()
        return await self._train()

    async def join(self, donor: str, timeout: float = 120.0) -> TrainResult:
        """Download the current state from ``donor`` (which ``admit``ted us), then train with the group."""
        data = await self._recv_state(donor, timeout)
        ck = ckpt_mod.loads(data)
        self._restore(ck)
        log.info("%s joined at round %d (step %d) with %s", self.self_id, self.round, self.step, self.group)
        return await self._train()

    def snapshot(self) -> ckpt_mod.Checkpoint:
        """The full training state, as a checkpoint."""
        opts = {"inner": self.opt.state_dict()}
        extra: dict[str, torch.Tensor] = {}
        if self.outer is not None:
            opts["outer"] = self.outer.state_dict()
        if self.anchor is not None:
            extra["anchor"] = torch.from_numpy(self.anchor.copy())
        extra.update(self._round_local_extra())
        header = {"step": self.step, "data_position": self.position, "round": self.round,
                  "group": list(self.group), "mode": self.cfg.mode, "model_spec": self.spec.to_json(),
                  "metrics": {"loss": None if math.isnan(self._loss) else self._loss},
                  "config": {k: v for k, v in asdict(self.cfg).items()}}
        return ckpt_mod.Checkpoint({k: v.clone() for k, v in self.model.state_dict().items()}, opts, extra, header)

    def _round_local_extra(self) -> dict[str, torch.Tensor]:
        """Async checkpoints carry ``local`` (this worker's parameters before the round's average) and
        ``local_weight`` (the samples it averaged with): its own inner steps are checkable without
        the other workers' (jobs verification replays each worker's round and names the one that
        differs). Ignored on restore."""
        if self._round_local is None:
            return {}
        local, weight = self._round_local
        return {"local": torch.from_numpy(local.copy()), "local_weight": torch.tensor([weight], dtype=torch.float64)}

    def evaluate(self) -> tuple[float, float]:
        """(loss, accuracy) on the held-out split."""
        x = torch.from_numpy(self.data.x_test)
        y = torch.from_numpy(self.data.y_test)
        self.model.eval()
        with torch.no_grad():
            loss = float(loss_fn(self.spec, self.model, x, y))
        acc = accuracy(self.spec, self.model, x, y)
        self.model.train()
        return loss, acc

    # -- internals -------------------------------------------------------------------------
    def _make_inner_optimizer(self) -> torch.optim.Optimizer:
        c = self.cfg
        if c.optimizer == "adamw":
            return torch.optim.AdamW(self.params, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(self.params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    def _restore(self, ck: ckpt_mod.Checkpoint) -> None:
        h = ck.header
        if h.get("model_spec") != self.spec.to_json():
            raise CheckpointError("checkpoint was made for a different model spec")
        if h.get("mode") != self.cfg.mode:
            raise CheckpointError(f"checkpoint is for mode {h.get('mode')}, this worker runs {self.cfg.mode}")
        ckpt_mod.load_weights(self.model, ck.model)
        try:
            # torch keeps (and later mutates in place) the very tensors it is given: copy them
            self.opt.load_state_dict(_cloned(ck.optimizers["inner"]))
            if self.outer is not None:
                self.outer.load_state_dict(_cloned(ck.optimizers["outer"]))
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"optimizer state does not fit: {exc}") from None
        if self.anchor is not None:
            if "anchor" not in ck.extra or ck.extra["anchor"].numel() != self.anchor.size:
                raise CheckpointError("async checkpoint lacks a fitting anchor")
            self.anchor = ck.extra["anchor"].numpy().astype(np.float32, copy=True)
        self.step = int(h["step"])
        self.position = int(h["data_position"])
        self.round = int(h["round"])
        if self.cfg.mode != "local":
            group = h.get("group") or list(self.group)
            self.group = tuple(sorted(set(group) | {self.self_id}))
        self.last_checkpoint_step = self.step

    def _rank_world(self) -> tuple[int, int]:
        return self.group.index(self.self_id), len(self.group)

    def _local_step(self, average: bool) -> tuple[float, int]:
        """Forward/backward on this worker's slice; steps the optimizer unless ``average``."""
        rank, world = self._rank_world()
        idx = torch.from_numpy(self.plan.indices(self.position, rank, world))
        x, y = self.x_train[idx], self.y_train[idx]
        self.opt.zero_grad(set_to_none=True)
        loss = loss_fn(self.spec, self.model, x, y)
        loss.backward()
        self.position += world * self.cfg.batch_size
        if not average:
            self.opt.step()
        return float(loss.detach()), len(idx)

    async def _average(self, vector: np.ndarray, weight: float) -> RoundResult:
        joiners = sorted(self._pending_joiners)
        if self._out is None or self._out.size != vector.size:
            self._out = np.empty(vector.size, dtype=np.float32)  # reused every round: no page faults
        result = await self.averager.average(self.round, self.group, vector, weight, joiners=joiners, out=self._out)
        self.round += 1
        return result

    async def _after_round(self, result: RoundResult) -> None:
        """Adopt the round's group (dropping the dead, adding joiners); serve state to our joiners."""
        new_group = tuple(sorted(set(result.group) | set(result.joiners)))
        mine = [j for j in result.joiners if j in self._pending_joiners]
        self.group = new_group
        if mine:
            # snapshot now (the state as of this round), send in the background: a big model's
            # state can take longer than a round timeout, and the others must not wait on us
            data = ckpt_mod.dumps(self.snapshot())
            for j in mine:
                self._pending_joiners.discard(j)
                assert self._background is not None
                self._background.start_soon(self._send_state_logged, j, data)

    async def _send_state_logged(self, peer: str, data: bytes) -> None:
        try:
            await self._send_state(peer, data)
        except TrainerError as exc:
            log.warning("could not send state to joiner %s: %s", peer, exc)

    async def _train(self) -> TrainResult:
        try:
            async with trio.open_nursery() as background:
                self._background = background
                try:
                    return await self._train_loop()
                finally:
                    self._background = None
        except BaseExceptionGroup as group:  # noqa: B036 - unwrap the nursery's group for callers
            leaves = leaf_exceptions(group)
            if len(leaves) == 1 and isinstance(leaves[0], Exception):
                raise leaves[0] from None
            raise

    async def _train_loop(self) -> TrainResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        samples = 0
        while self.step < cfg.steps:
            if cfg.mode == "sync":
                loss, n = self._local_step(average=True)
                grads = flat_grads(self.params)
                result = await self._average(grads, float(n))
                set_flat(self.params, result.vector, grad=True)
                self.opt.step()
                self.step += 1
                if self.signer is not None:
                    await self._exchange_sketches(result, grads, float(n))
                await self._after_round(result)
            elif cfg.mode == "local":
                loss, n = self._local_step(average=False)
                self.step += 1
            else:
                loss, n = self._local_step(average=False)
                self.step += 1
                self.samples_since_round += n
                if self.step % cfg.inner_steps == 0 or self.step == cfg.steps:
                    await self._outer_step()
            samples += n
            self._loss = loss
            elapsed = time.perf_counter() - t0
            p = Progress(self.step, cfg.steps, loss, samples / elapsed if elapsed > 0 else 0.0,
                         self.transport.bytes_sent, self.transport.bytes_recv, self.round, len(self.group))
            self.history.append({"step": p.step, "loss": p.loss, "round": p.round})
            if len(self.history) > MAX_HISTORY:
                del self.history[: len(self.history) - MAX_HISTORY]
            if self.progress is not None:
                self.progress(p)
            self._maybe_checkpoint()
            await trio.lowlevel.checkpoint()
        eval_loss, eval_acc = self.evaluate()
        return TrainResult(self.step, self.round, self._loss, eval_loss, eval_acc, self.transport.bytes_sent,
                           self.transport.bytes_recv, time.perf_counter() - t0, self.group,
                           params_digest(self.params), self.history)

    async def _exchange_sketches(self, result: RoundResult, grads: np.ndarray, weight: float) -> None:
        """Sign and swap this step's gradient sketches (trainer/sketch.py); a peer whose sketch does
        not match what it sent ends the run with ``RoundFailed`` naming it. At checkpoint steps and
        the last step the message also signs the parameters' digest, so a verifier can tell a
        checkpoint or result nobody trained from the state every rank held."""
        from trainer import compression
        from trainer import sketch as sk

        every = self.cfg.checkpoint_every
        attest = (every and self.step % every == 0) or self.step == self.cfg.steps
        params = sk.params_digest_of(flat_params(self.params)) if attest else sk.NO_PARAMS
        assert self.signer is not None and self.verify_peer is not None
        row = await sk.exchange(self.transport, result, grads, weight, namespace=self.job_id, step=self.step,
                                codec=compression.codec_id(self.cfg.compression), chunk_elems=self.cfg.chunk_elems,
                                params=params, signer=self.signer, verify_peer=self.verify_peer,
                                timeout=self.cfg.round_timeout, own_sketches=self._sketch_override(result, grads))
        self.sketch_log.append(row)

    def _sketch_override(self, result: RoundResult, grads: np.ndarray) -> np.ndarray | None:
        """None: sketch what was sent (the honest path). Tests replace it to make a rank lie."""
        return None

    async def _outer_step(self) -> None:
        assert self.anchor is not None and self.outer is not None
        local = flat_params(self.params)
        self._round_local = (local, float(self.samples_since_round))
        delta = self.anchor - local  # outer gradient: how far we moved, negated
        result = await self._average(delta, float(self.samples_since_round))
        self.samples_since_round = 0
        set_flat(self.params, self.anchor)
        set_flat(self.params, result.vector, grad=True)
        self.outer.step()
        self.outer.zero_grad(set_to_none=True)
        self.anchor = flat_params(self.params)
        await self._after_round(result)

    def _maybe_checkpoint(self) -> None:
        every = self.cfg.checkpoint_every
        if not every or self.checkpoint_dir is None:
            return
        if self.cfg.mode == "async" and self.step % self.cfg.inner_steps != 0 and self.step != self.cfg.steps:
            return  # only at round boundaries, where the anchor is the state
        if self.step - self.last_checkpoint_step >= every or self.step == self.cfg.steps:
            ckpt_mod.save(self.checkpoint_dir, self.snapshot(), keep=self.cfg.keep_checkpoints)
            self.last_checkpoint_step = self.step

    async def _handshake(self) -> None:
        """Check that every member starts at the same step, round and data position.

        Without it, workers resumed from different checkpoints would name different rounds and
        only time out; a worker restarted alone while the others train on would wait forever.
        Both now end with a ``TrainerError`` that says what to do.
        """
        mine = {"step": self.step, "round": self.round, "position": self.position, "group": list(self.group)}
        body = json.dumps(mine, sort_keys=True).encode()
        ch = f"{self.job_id}/start"
        t = self.cfg.round_timeout
        others = [p for p in self.group if p != self.self_id]
        try:
            async with trio.open_nursery() as nursery:
                for p in others:
                    nursery.start_soon(self.transport.send, p, ch, body, t)
            theirs = {p: await self.transport.recv(p, ch, 3 * t) for p in others}
        except PeerFailure as exc:
            raise TrainerError(f"start handshake failed ({exc}); a worker that restarts while the others "
                               "train on must rejoin through a member (admit + join)") from None
        for p, raw in theirs.items():
            try:
                state = json.loads(bytes(raw[:4096]).decode()) if len(raw) <= 4096 else None
            except (ValueError, UnicodeDecodeError):
                state = None
            if state != mine:
                raise TrainerError(f"peer {p} starts at {state}, this worker at {mine}: restart every worker "
                                   "from the same checkpoint step, or rejoin through a member")

    # -- state transfer for joiners --------------------------------------------------------
    def _state_channel(self) -> str:
        return f"{self.job_id}/state"

    async def _send_state(self, peer: str, data: bytes) -> None:
        t = self.cfg.round_timeout
        head = struct.pack("<Q", len(data)) + hashlib.sha256(data).digest()
        await self.transport.send(peer, self._state_channel(), head, t)
        view = memoryview(data)
        for i in range(0, len(data), STATE_CHUNK):
            await self.transport.send(peer, self._state_channel(), view[i : i + STATE_CHUNK], t)

    async def _recv_state(self, donor: str, timeout: float) -> bytes:
        ch = self._state_channel()
        head = await self.transport.recv(donor, ch, timeout)
        if len(head) != 40:
            raise TrainerError(f"donor {donor} sent a malformed state header")
        (size,) = struct.unpack_from("<Q", head)
        if size > self.cfg.max_state_bytes:
            raise TrainerError(f"donor {donor} offers {size} bytes of state, above the {self.cfg.max_state_bytes} limit")
        buf = bytearray()
        while len(buf) < size:
            part = await self.transport.recv(donor, ch, self.cfg.round_timeout)
            if len(buf) + len(part) > size:
                raise TrainerError(f"donor {donor} sent more state than announced")
            buf += part
        if hashlib.sha256(buf).digest() != bytes(head[8:]):
            raise TrainerError(f"state from donor {donor} does not match its hash")
        return bytes(buf)


def flat_grads(params: Sequence[torch.Tensor]) -> np.ndarray:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in params]).numpy().astype(np.float32, copy=True)


def _cloned(state_dict: dict[str, Any]) -> dict[str, Any]:
    return {"state": {k: {n: (v.clone() if isinstance(v, torch.Tensor) else v) for n, v in st.items()}
                      for k, st in state_dict["state"].items()},
            "param_groups": state_dict["param_groups"]}


def _check_fit(spec: ModelSpec, model: torch.nn.Module, dataset: Dataset) -> None:
    """A model that cannot eat the data is a spec error now, not a torch traceback mid-job."""
    wants = "lm" if spec.name in ("transformer", "lora") else "classification"
    if dataset.kind != wants:
        raise SpecError(f"model {spec.name!r} needs a {wants} dataset, got a {dataset.kind} one")
    try:
        with torch.no_grad():
            x = torch.from_numpy(dataset.x_train[:1])
            y = torch.from_numpy(dataset.y_train[:1])
            loss_fn(spec, model, x, y)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise SpecError(f"model {spec.name!r} does not fit the dataset: {exc}") from None
