"""Job spec files: parse, validate with errors that name the field, normalise, and turn into
(a) the `job_submit` transaction body and (b) the trainer's job spec.

The format (JSON; documented with examples in ledger/JOBS.md, bundled ones in `examples/`)::

    {
      "name": "digits-mlp",                                     optional, <= 64 chars
      "description": "...",                                     optional
      "model": {"zoo": "mlp", "config": {...}}                  a model of the trainer's zoo
               | {"zoo": "lora", "config": {...}, "base": CID}  fine-tune a base model artifact
      "dataset": {"source": "digits" | "text", "config": {...}}  built-in source
               | {"artifact": CID, "format": "tensors" | "text", "config": {...}}
      "optimizer": {"name": "adamw" | "sgd", "lr": 0.01, "weight_decay": 0, "momentum": 0,
                    "batch_size": 32}
      "mode": "sync" | "async",  "H": 20                        (H: local steps per round, async only)
      "limits": {"steps": 300} | {"epochs": 5},  "deadline_s": 3600
      "workers": 3, "min_workers": 2                            (min_workers: continue with fewer)
      "hardware": {"class": "cpu", "min_score": 1}
      "acceptance": {"metric": "accuracy" | "loss", "op": ">=" | "<=", "threshold": 0.95}
      "budget": "50",  "max_price": "1"                         NMT, decimal strings
      "scheduling": {"offer_window": 5, "replay_steps": 5, "strategy": "default"}   optional
      "seed": 0, "compression": "none", "checkpoint_every": 50  optional
    }

Why our own envelope around the trainer's {model, dataset, train}: the chain needs the scheduling
terms (workers, hardware, budget, acceptance, deadline) as typed fields it can enforce, and users
should not have to know the trainer's internal key names.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ledger.genesis import DEFAULT_HARDWARE_CLASSES, NMT
from ledger.jobs import rules
from ledger.jobs.cid import check_cid
from ledger.jobs.errors import JobError
from mindnode.jobs.errors import JobSpecError

MAX_SPEC_FILE = 64 * 1024
ZOO = ("mlp", "cnn", "transformer", "lora")
SOURCES = ("digits", "text")
METRICS = ("accuracy", "loss")
#: Training samples of the built-in digits source (1,797 images, 20% held out): epochs -> steps.
DIGITS_TRAIN = 1797 - round(1797 * 0.2)
TOP_KEYS = {"name", "description", "model", "dataset", "optimizer", "mode", "H", "limits", "deadline_s", "workers",
            "min_workers", "hardware", "acceptance", "budget", "max_price", "scheduling", "seed", "compression",
            "checkpoint_every"}
REQUIRED = ("model", "dataset", "optimizer", "mode", "limits", "deadline_s", "workers", "hardware", "acceptance",
            "budget", "max_price")


def _err(field: str, msg: str) -> JobSpecError:
    if field.startswith("--"):          # parse_nmt on a command-line option
        return JobSpecError(f"option {field}: {msg}")
    return JobSpecError(f"job spec field {field!r}: {msg}")


def _obj(v: Any, field: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(v, dict):
        raise _err(field, f"must be an object, got {type(v).__name__}")
    unknown = sorted(set(v) - allowed)
    if unknown:
        raise _err(field, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    for k in required:
        if k not in v:
            raise _err(f"{field}.{k}" if field else k, "is required")
    return v


def _int(v: Any, field: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _err(field, f"must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _num(v: Any, field: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not lo <= v <= hi \
            or (lo_open and v == lo):
        raise _err(field, f"must be a number in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}")
    return float(v)


def _str(v: Any, field: str, choices: tuple[str, ...] | None = None, max_len: int = 64) -> str:
    if not isinstance(v, str) or not v or len(v) > max_len:
        raise _err(field, f"must be a non-empty string of at most {max_len} characters, got {v!r}")
    if choices is not None and v not in choices:
        raise _err(field, f"must be one of {', '.join(choices)}, got {v!r}")
    return v


def _cid(v: Any, field: str) -> str:
    try:
        check_cid(v, "content id")
    except JobError as exc:
        raise _err(field, str(exc)) from None
    return v


def parse_nmt(v: Any, field: str) -> int:
    """A decimal string of NMT ("12.5") -> base units; at most 18 decimals, positive."""
    if not isinstance(v, str) or not re.fullmatch(r"\d+(\.\d{1,18})?", v.strip()):
        raise _err(field, f'must be a decimal string of NMT such as "12.5" (at most 18 decimals), got {v!r}')
    try:
        units = int(Decimal(v.strip()) * NMT)
    except InvalidOperation:
        raise _err(field, f"is not a number: {v!r}") from None
    if units <= 0 or units >= 1 << 255:
        raise _err(field, f"must be positive, got {v!r}")
    return units


@dataclass(frozen=True)
class JobSpec:
    """A validated, normalised job spec (`data` is the canonical form that goes on chain)."""

    data: dict

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    def canonical(self) -> bytes:
        return json.dumps(self.data, sort_keys=True, separators=(",", ":")).encode()

    @property
    def steps(self) -> int:
        return self.data["limits"]["steps"]

    @property
    def batch_size(self) -> int:
        return self.data["optimizer"]["batch_size"]

    def trainer_spec(self) -> dict:
        """The trainer's job spec ({model, dataset, train}, `trainer.job.JobSpec`) for this job."""
        d = self.data
        model = {"name": d["model"]["zoo"], "config": d["model"].get("config", {})}
        ds = d["dataset"]
        if "source" in ds:
            dataset = {"kind": ds["source"], "config": ds.get("config", {})}
        else:
            dataset = {"kind": "blob", "config": {"cid": ds["artifact"], "format": ds.get("format", "tensors"),
                                                  **ds.get("config", {})}}
        opt = d["optimizer"]
        train = {"mode": d["mode"], "steps": self.steps, "batch_size": opt["batch_size"], "optimizer": opt["name"],
                 "lr": opt["lr"], "weight_decay": opt.get("weight_decay", 0.0), "momentum": opt.get("momentum", 0.0),
                 "seed": d.get("seed", 0), "compression": d.get("compression", "none"),
                 "checkpoint_every": d.get("checkpoint_every", 0)}
        if d["mode"] == "async":
            train["inner_steps"] = d["H"]
        return {"model": model, "dataset": dataset, "train": train}

    @property
    def base_model(self) -> str | None:
        return self.data["model"].get("base")

    def submit_body(self, now_ms: int):
        """The `job_submit` body, with the deadline `deadline_s` after `now_ms`."""
        from ledger.txkinds.job_submit import JobSubmit

        d = self.data
        sched = d.get("scheduling", {})
        acc = d["acceptance"]
        body = JobSubmit(
            spec=self.canonical(), mode=d["mode"], workers=d["workers"], min_workers=d.get("min_workers", d["workers"]),
            min_class=d["hardware"]["class"], min_score=d["hardware"].get("min_score", 1),
            max_price=parse_nmt(d["max_price"], "max_price"), max_samples=self.steps * self.batch_size,
            steps=self.steps, replay_steps=min(sched.get("replay_steps", rules.DEFAULT_REPLAY_STEPS), self.steps),
            metric=acc["metric"], metric_op=acc["op"], threshold_ppm=round(acc["threshold"] * rules.PPM),
            budget=parse_nmt(d["budget"], "budget"), offer_window=sched.get("offer_window", 5),
            deadline_ms=now_ms + d["deadline_s"] * 1000, strategy=sched.get("strategy", "default"))
        return body


def validate(obj: Any) -> JobSpec:
    """Validate a decoded spec; raises JobSpecError naming the first bad field."""
    d = _obj(obj, "", TOP_KEYS, REQUIRED)
    out: dict[str, Any] = {}
    if "name" in d:
        out["name"] = _str(d["name"], "name")
    if "description" in d:
        out["description"] = _str(d["description"], "description", max_len=500)
    m = _obj(d["model"], "model", {"zoo", "config", "base"}, ("zoo",))
    model = {"zoo": _str(m["zoo"], "model.zoo", ZOO), "config": m.get("config", {})}
    if not isinstance(model["config"], dict):
        raise _err("model.config", "must be an object")
    if "base" in m:
        if model["zoo"] not in ("lora", "transformer"):
            raise _err("model.base", "a base model to fine-tune needs zoo lora or transformer")
        model["base"] = _cid(m["base"], "model.base")
    out["model"] = model
    ds = _obj(d["dataset"], "dataset", {"source", "artifact", "format", "config"})
    if ("source" in ds) == ("artifact" in ds):
        raise _err("dataset", 'give exactly one of "source" (digits, text) or "artifact" (a content id)')
    cfg = ds.get("config", {})
    if not isinstance(cfg, dict):
        raise _err("dataset.config", "must be an object")
    if "source" in ds:
        out["dataset"] = {"source": _str(ds["source"], "dataset.source", SOURCES), "config": cfg}
        if "format" in ds:
            raise _err("dataset.format", "only applies to an artifact")
    else:
        out["dataset"] = {"artifact": _cid(ds["artifact"], "dataset.artifact"),
                          "format": _str(ds.get("format", "tensors"), "dataset.format", ("tensors", "text")),
                          "config": cfg}
    o = _obj(d["optimizer"], "optimizer", {"name", "lr", "weight_decay", "momentum", "batch_size"},
             ("name", "lr", "batch_size"))
    out["optimizer"] = {"name": _str(o["name"], "optimizer.name", ("adamw", "sgd")),
                        "lr": _num(o["lr"], "optimizer.lr", 0, 10, lo_open=True),
                        "weight_decay": _num(o.get("weight_decay", 0.0), "optimizer.weight_decay", 0, 1),
                        "momentum": _num(o.get("momentum", 0.0), "optimizer.momentum", 0, 0.999999),
                        "batch_size": _int(o["batch_size"], "optimizer.batch_size", 1, 65_536)}
    out["mode"] = _str(d["mode"], "mode", ("sync", "async"))
    if out["mode"] == "async":
        if "H" not in d:
            raise _err("H", "async mode needs H, the local steps between averaging rounds")
        out["H"] = _int(d["H"], "H", 1, 10_000)
    elif "H" in d:
        raise _err("H", "only applies to async mode")
    workers = _int(d["workers"], "workers", 1, rules.MAX_WORKERS)
    out["workers"] = workers
    out["min_workers"] = _int(d.get("min_workers", workers), "min_workers", 1, workers)
    lim = _obj(d["limits"], "limits", {"steps", "epochs"})
    if ("steps" in lim) == ("epochs" in lim):
        raise _err("limits", 'give exactly one of "steps" or "epochs"')
    if "steps" in lim:
        steps = _int(lim["steps"], "limits.steps", 1, 10_000_000)
    else:
        epochs = _int(lim["epochs"], "limits.epochs", 1, 100_000)
        if out["dataset"].get("source") != "digits":
            raise _err("limits.epochs", "epochs need a dataset of known size (digits); give steps instead")
        steps = -(-epochs * DIGITS_TRAIN // (out["optimizer"]["batch_size"] * workers))
    if out["mode"] == "async" and steps < out["H"]:
        raise _err("H", f"H ({out['H']}) is more than the steps ({steps}): no averaging round would run")
    out["limits"] = {"steps": steps}
    if out["mode"] == "async":
        _check_async_rounds(steps, out["H"])
    out["deadline_s"] = _int(d["deadline_s"], "deadline_s", 10, 30 * 86400)
    hw = _obj(d["hardware"], "hardware", {"class", "min_score"}, ("class",))
    classes = tuple(c.name for c in DEFAULT_HARDWARE_CLASSES)
    out["hardware"] = {"class": _str(hw["class"], "hardware.class", classes),
                       "min_score": _int(hw.get("min_score", 1), "hardware.min_score", 0, 10**15)}
    acc = _obj(d["acceptance"], "acceptance", {"metric", "op", "threshold"}, ("metric", "op", "threshold"))
    metric = _str(acc["metric"], "acceptance.metric", METRICS)
    op = _str(acc["op"], "acceptance.op", (">=", "<="))
    hi = 1.0 if metric == "accuracy" else 1e6
    out["acceptance"] = {"metric": metric, "op": op, "threshold": _num(acc["threshold"], "acceptance.threshold", 0, hi)}
    out["budget"] = d["budget"]
    parse_nmt(d["budget"], "budget")
    out["max_price"] = d["max_price"]
    parse_nmt(d["max_price"], "max_price")
    if "scheduling" in d:
        s = _obj(d["scheduling"], "scheduling", {"offer_window", "replay_steps", "strategy"})
        sched: dict[str, Any] = {}
        if "offer_window" in s:
            sched["offer_window"] = _int(s["offer_window"], "scheduling.offer_window", rules.MIN_OFFER_WINDOW,
                                         rules.MAX_OFFER_WINDOW)
        if "replay_steps" in s:
            sched["replay_steps"] = _int(s["replay_steps"], "scheduling.replay_steps", 1, rules.MAX_REPLAY_STEPS)
        if "strategy" in s:
            from ledger.jobs.strategy import STRATEGIES

            sched["strategy"] = _str(s["strategy"], "scheduling.strategy", tuple(sorted(STRATEGIES)))
        out["scheduling"] = sched
    out["seed"] = _int(d.get("seed", 0), "seed", 0, 2**63 - 1)
    out["compression"] = _str(d.get("compression", "none"), "compression", ("none", "fp16", "int8"))
    out["checkpoint_every"] = _int(d.get("checkpoint_every", 0), "checkpoint_every", 0, 10_000_000)
    spec = JobSpec(out)
    if len(spec.canonical()) > rules.MAX_SPEC_BYTES:
        raise JobSpecError(f"job spec is {len(spec.canonical())} bytes in canonical form; the limit is "
                           f"{rules.MAX_SPEC_BYTES}")
    _check_with_trainer(spec)
    return spec


#: An async job checkpoints at every averaging round (each worker's round is verified alone; see
#: mindnode/jobs/verify_async.py) and each worker's signed list holds at most 256 checkpoint ids
#: (mindnode/jobs/evidence.py): so at most this many rounds.
MAX_ASYNC_ROUNDS = 255


def _check_async_rounds(steps: int, h: int) -> None:
    rounds = -(-steps // h)
    if rounds > MAX_ASYNC_ROUNDS:
        raise _err("H", f"an async job of {steps} steps with H={h} has {rounds} averaging rounds; at most "
                        f"{MAX_ASYNC_ROUNDS} (every round is checkpointed for verification): raise H to at least "
                        f"{-(-steps // MAX_ASYNC_ROUNDS)} or lower the steps")


def _check_with_trainer(spec: JobSpec) -> None:
    """If the trainer is installed, let it check the training config too (its own strict rules)."""
    try:
        from trainer.errors import SpecError
        from trainer.job import JobSpec as TrainerJob
    except ImportError:
        return
    t = spec.trainer_spec()
    try:
        TrainerJob(t["model"], t["dataset"], t["train"]).validate()
    except SpecError as exc:
        raise JobSpecError(f"job spec rejected by the trainer: {exc}") from None
    _check_model(spec)


#: What the built-in sources feed a model: digits rows of 64 pixels in 10 classes.
DIGITS_FEATURES, DIGITS_CLASSES = 64, 10


def _check_model(spec: JobSpec) -> None:
    """Build the model on torch's meta device (shapes only: no memory, no weights) so a bad
    `model.config` (a misspelt key, a string where a list goes) or a model the built-in dataset
    cannot feed fails here, naming the field, and not on every worker after the budget is escrowed."""
    import torch

    from trainer.errors import SpecError
    from trainer.zoo import ModelSpec, build_model

    d = spec.data
    zoo, cfg = d["model"]["zoo"], d["model"]["config"]
    try:
        with torch.device("meta"):
            build_model(ModelSpec(zoo, cfg))
    except SpecError as exc:
        raise _err("model.config", str(exc)) from None
    source = d["dataset"].get("source")
    if source == "digits" and zoo == "mlp":
        if cfg.get("in_dim") != DIGITS_FEATURES:
            raise _err("model.config.in_dim", f"the digits dataset has {DIGITS_FEATURES} features per sample, "
                                              f"got in_dim={cfg.get('in_dim')!r}")
        if cfg.get("out_dim", 0) < DIGITS_CLASSES:
            raise _err("model.config.out_dim", f"the digits dataset has {DIGITS_CLASSES} classes, "
                                               f"got out_dim={cfg.get('out_dim')!r}")
    elif source == "digits" and zoo == "cnn":
        pixels = cfg.get("in_channels", 1) * cfg.get("image_size", 0) ** 2
        if pixels != DIGITS_FEATURES:
            raise _err("model.config.image_size", f"the digits dataset has {DIGITS_FEATURES} pixels per sample "
                                                  "(image_size 8, in_channels 1), got in_channels * image_size**2 "
                                                  f"= {pixels}")
        if cfg.get("out_dim", 0) < DIGITS_CLASSES:
            raise _err("model.config.out_dim", f"the digits dataset has {DIGITS_CLASSES} classes, "
                                               f"got out_dim={cfg.get('out_dim')!r}")
    elif source == "digits":
        raise _err("model.zoo", f"{zoo} is a byte-level language model; the digits dataset needs mlp or cnn")
    elif source == "text" and zoo in ("mlp", "cnn"):
        raise _err("model.zoo", f"the text dataset is next-byte prediction; it needs transformer or lora, not {zoo}")
    elif source == "text" and zoo in ("transformer", "lora"):
        base = cfg.get("base", {}) if zoo == "lora" else cfg
        ctx, model_ctx = d["dataset"]["config"].get("context", 64), base.get("context", 64)
        if isinstance(ctx, int) and ctx > model_ctx:
            raise _err("dataset.config.context", f"windows of {ctx} bytes do not fit the model's context of "
                                                 f"{model_ctx} (model.config{'.base' if zoo == 'lora' else ''}"
                                                 ".context)")


def parse(text: str | bytes, where: str = "job spec") -> JobSpec:
    if len(text) > MAX_SPEC_FILE:
        raise JobSpecError(f"{where} is over {MAX_SPEC_FILE} bytes")
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobSpecError(f"{where} is not valid JSON: {exc}") from None
    try:
        return validate(obj)
    except JobSpecError as exc:
        raise JobSpecError(f"{where}: {exc}") from None


def load(path: str | Path) -> JobSpec:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise JobSpecError(f"cannot read job spec {p}: {exc.strerror or exc}") from None
    return parse(data, str(p))
