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

Attribution: a sync step mixes every worker's gradient, so the checkpoints alone cannot tell who
sent a wrong one (`verify_body` names every worker). `attribute_sync` does better from the
poster's sketch log (trainer/sketch.py, mindnode/jobs/sketchlog.py): every rank signed, per step,
a sketch of the gradient it contributed (its peers checked it against what they received) and, at
checkpoint and final steps, the digest of the parameters. So: weights or checkpoints that differ
from the signed parameters, or a log that is missing or not signed by its ranks -> the poster
alone; a failing replay -> the ranks whose signed sketch is off the honest gradient at the FIRST
deviating step (`SKETCH_RTOL`, `SKETCH_DOMINANCE`); none off -> the poster if it posted an end
checkpoint nobody signed, else nobody (inconclusive). `attributed_verify_body` names exactly
those. Async (DiLoCo) jobs are verified by `mindnode/jobs/verify_async.py` instead: every worker's
own checkpoints (from the evidence bundle) and its own rounds, naming only the worker(s) whose
rounds fail; `verify_result` is the sync/local path.

Fine-tuning (`model.base`, a content id): the verifier fetches the same safetensors artifact the
workers load (`work.base_weights`), rebuilds step 0 from it (`initial_checkpoint(base=...)`) and
checks that the frozen weights of every checkpoint and of the result are the artifact's
(`base_mismatch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ledger.keys import address_from_text, address_to_text
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
    tolerance: float = 0.0          # of the interval that decided (the last checked, or the failing one)

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


def initial_checkpoint(spec: JobSpec, dataset, *, base: dict | None = None):
    """The state at step 0, which every worker starts from (weights from the spec's seed, fresh
    optimizer): a verifier rebuilds it instead of trusting a posted one. A fine-tuning job
    (`model.base`) starts from the base model artifact: pass its checked tensors as `base`
    (`work.base_weights` of the bytes fetched by content id), exactly what workers load."""
    from trainer.worker import Worker

    if spec.base_model and base is None:
        raise JobSpecError(f"job fine-tunes base model {spec.base_model}: fetch it and pass base= to rebuild step 0")
    return Worker(_Offline("verifier"), ["verifier"], work.model_spec(spec), dataset, work.train_config(spec),
                  init_weights=base).snapshot()


def base_mismatch(spec: JobSpec, base: dict | None, checkpoints: list, weights: bytes) -> str:
    """Why the posted state did not start from the base model artifact, or "" when it did.

    The frozen weights of a `lora` fine-tune never change, so every checkpoint and the result must
    carry the artifact's values exactly; a worker that skipped loading the base (trained on the
    seeded initialisation instead) is caught here whatever interval is drawn. (A full `transformer`
    fine-tune trains every weight: its start is checked by replaying from the rebuilt step 0.)"""
    if not spec.base_model or base is None:
        return ""
    from safetensors.torch import load

    start = initial_checkpoint_model(spec, base)
    frozen = {k: v for k, v in start.items() if ".lora_" not in k} if spec.data["model"]["zoo"] == "lora" else {}
    states = [("the result weights", load(weights))] + [(f"checkpoint step {c.step}", c.model) for c in checkpoints]
    for what, tensors in states:
        for k, v in frozen.items():
            if k not in tensors or not np.array_equal(tensors[k].numpy(), v.numpy()):
                return f"{what}: frozen weight {k} is not the base model's ({spec.base_model})"
    return ""


def initial_checkpoint_model(spec: JobSpec, base: dict) -> dict:
    """The model tensors at step 0 of a fine-tune: the spec's model with the base artifact loaded."""
    from trainer.zoo import build_model, load_pretrained

    model = build_model(work.model_spec(spec), seed=spec.data.get("seed", 0))
    load_pretrained(model, base)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


#: Sync replays (one process over the global batch) differ from the group's float32 averaging by
#: rounding that early AdamW steps amplify: measured on digits-mlp, |replay - claimed| / |interval's
#: parameter movement| was <= 1e-6 for every interval but the first after initialisation with batch
#: 16 (1.7e-3, |diff| 5e-5 > the trainer's 1e-5). A sync interval passes within 1% of its movement
#: (or SYNC_REPLAY_ATOL): a 1% tampered state or a wrong gradient in the average moves far more.
SYNC_REPLAY_RTOL = 1e-2


def _world(c) -> int:
    return len(c.header.get("group") or ())


def verify_result(spec: JobSpec, dataset, checkpoints: list[bytes], weights: bytes, replay_from: int,
                  replay_steps: int, *, initial_world: int | None = None, rank: int = 0,
                  base: dict | None = None) -> Verdict:
    """Replay, pair by pair, the checkpoint intervals that cover [replay_from, replay_from +
    replay_steps] and check each against the checkpoint at its end.

    Each interval is replayed with the group size its end checkpoint records (sync: the workers
    whose global batch a step took). An interval across which the group changed (a worker dropped
    or joined) is not replayable (see ledger/JOBS.md): it is skipped, and when every interval of
    the range is such, the nearest replayable interval is checked instead. `initial_world`: the
    group size at step 0 (the job's first assignment; default: the first checkpoint's). `base`: the
    checked base model tensors of a fine-tuning job (`work.base_weights`)."""
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
    metrics = evaluate(spec, dataset, weights)
    final = cks[-1]
    weights_match = True
    if final.step == spec.steps:
        w = load(weights)
        weights_match = set(w) == set(final.model) and all(np.array_equal(w[k].numpy(), final.model[k].numpy())
                                                          for k in w)
    off_base = base_mismatch(spec, base, cks, weights)
    if off_base:
        return Verdict(False, replay_from, -1, float("inf"), weights_match, metrics, off_base)
    points = cks if cks[0].step == 0 else [initial_checkpoint(spec, dataset, base=base), *cks]
    worlds = [_world(c) for c in points]
    if cks[0].step != 0:
        worlds[0] = initial_world or worlds[1]
    end_want = replay_from + replay_steps
    pairs = [i for i in range(len(points) - 1)
             if points[i + 1].step > replay_from and points[i].step < end_want]
    if not pairs or points[pairs[-1] + 1].step < end_want:
        return Verdict(False, replay_from, -1, float("inf"), weights_match, metrics,
                       "no checkpoint at or after the drawn range")
    note = ""
    usable = [i for i in pairs if worlds[i] == worlds[i + 1]]
    if not usable:
        others = sorted((i for i in range(len(points) - 1) if worlds[i] == worlds[i + 1]),
                        key=lambda i: min(abs(i - pairs[0]), abs(i - pairs[-1])))
        if not others:
            return Verdict(False, points[pairs[0]].step, points[pairs[-1] + 1].step, float("inf"), weights_match,
                           metrics, "the group changed in every checkpoint interval: nothing is replayable")
        usable = others[:1]
        note = (f"steps {points[pairs[0]].step}..{points[pairs[-1] + 1].step} span a group change; "
                f"checked steps {points[usable[0]].step}..{points[usable[0] + 1].step} instead. ")
    worst = 0.0
    for i in usable:
        a, b = points[i], points[i + 1]
        got = replay(ms, dataset, cfg, a, b.step - a.step, rank=rank, world=worlds[i + 1] or 1)
        want = _flat(b.model, names)
        diff = float(np.abs(got - want).max())
        tol = REPLAY_ATOL
        if cfg.mode == "sync":
            tol = max(SYNC_REPLAY_ATOL, SYNC_REPLAY_RTOL * float(np.abs(want - _flat(a.model, names)).max()))
        worst = max(worst, diff)
        if diff > tol:
            return Verdict(False, a.step, b.step, diff, weights_match, metrics,
                           note + f"replay of steps {a.step}..{b.step} differs by {diff:.3g} (tolerance {tol:.3g})",
                           tol)
    if not weights_match:
        note += "the result weights are not the final checkpoint's model. "
    return Verdict(True, points[usable[0]].step, points[usable[-1] + 1].step, worst, weights_match, metrics,
                   note.strip(), tol)


def verify_body(job, verdict: Verdict, metric: str, suspects: list[bytes] | None = None) -> JobVerify:
    """The `job_verify` body for chain job record `job` (ledger.jobs.records.Job)."""
    bad: tuple = ()
    if not verdict.ok:
        bad = tuple(sorted(suspects if suspects is not None else [w.provider for w in job.result.work]))
    return JobVerify(job_id=job.id, replay_from=job.replay_from, replay_steps=job.replay_steps, bad_workers=bad,
                     metric_ppm=work.metric_ppm(verdict.metrics[metric]))


# ---------------------------------------------------------------------------------------------
# Sync attribution from signed gradient sketches (trainer/sketch.py, mindnode/jobs/sketchlog.py)

#: How far a rank's signed sketch may be from the sketch of the gradient the verifier recomputes
#: at the replayed parameters, relative to the RMS of the honest sketch of that part. The replay
#: reproduces the group's arithmetic (`trainer.replay.SyncRankReplay`), so on one machine honest
#: ranks match to float rounding (0 on one machine, <= 4e-6 with another thread count over 50
#: steps); a rank scaling its gradient by 1.001 is off by 2e-3, by 3 by ~4. ledger/JOBS.md has more.
SKETCH_RTOL = 1e-3
#: After the interval's first step, a rank over the tolerance is blamed only if its deviation is this
#: many times the largest deviation among the ranks within it (drift moves every rank together).
SKETCH_DOMINANCE = 10.0


@dataclass(frozen=True)
class Attribution:
    """Who a sync verification blames: `bad` addresses (empty = nobody) and why."""

    bad: tuple[bytes, ...]
    reason: str
    step: int = -1                 # the first deviating step, when ranks were blamed by their sketches
    worst_honest: float = 0.0      # largest deviation among ranks that passed at that step (for the record)


def _trainable_flat(tensors: dict, names: list[str]) -> np.ndarray:
    return _flat(tensors, names)


def attribute_sync(spec: JobSpec, dataset, checkpoints: list[bytes], weights: bytes, verdict: Verdict,
                   log_data: bytes | None, *, job_id: int, workers: list[bytes], poster: bytes,
                   base: dict | None = None) -> Attribution:
    """Name only who cheated in a sync job, from the poster's signed sketch log.

    * No log, or a log that is malformed, incomplete or not signed by its ranks: the poster (it
      holds every rank's signed messages whenever its training finished).
    * The result weights, or a posted checkpoint, differ from the parameter digest every rank signed
      at that step: made up by the poster.
    * The replay (`verdict`) failed: replay its failing interval step by step, recompute every rank's
      honest gradient at the replayed parameters, sketch it with the logged seed and compare with the
      rank's signed sketch. The ranks off at the FIRST deviating step are blamed (after it the real
      parameters left the replay's, and honest ranks would look wrong too); after the interval's
      first step only if they stand out (`SKETCH_DOMINANCE`) from the ranks within tolerance, since
      a cheat below the tolerance can make every rank drift. Otherwise nobody is named (inconclusive:
      a wrong accusation would slash an honest worker). No rank off and an end checkpoint nobody
      signed: the poster made it up.
    """
    from safetensors.torch import load

    from mindnode.jobs import sketchlog
    from trainer import checkpoint as ck
    from trainer import sketch as sk
    from trainer.replay import SyncRankReplay
    from trainer.zoo import build_model, trainable_names

    if log_data is None:
        return Attribution((poster,), "the result has no sketch log to attribute a sync step by")
    try:
        steps = sketchlog.load(log_data, job_id, [address_to_text(w) for w in workers])
    except sketchlog.SketchLogError as exc:
        return Attribution((poster,), f"the poster's sketch log is unusable: {exc}")
    ms = work.model_spec(spec)
    names = trainable_names(build_model(ms, seed=0))
    cks = {c.step: c for c in (ck.loads(b) for b in checkpoints)}

    def signed_params(step: int) -> set[bytes]:
        row = steps.get(step)
        return {m.params for m in row.messages.values()} if row else set()

    final = signed_params(spec.steps)
    if not final or sk.NO_PARAMS in final:
        return Attribution((poster,), f"the sketch log lacks the signed final state (step {spec.steps})")
    got = sk.params_digest_of(_trainable_flat(load(weights), names))
    if final != {got}:
        return Attribution((poster,), "the result weights are not the parameters the ranks signed at the last step")
    for s, c in sorted(cks.items()):
        signed = signed_params(s)
        if s > 0 and signed and sk.NO_PARAMS not in signed and signed != {sk.params_digest_of(_trainable_flat(
                c.model, names))}:
            return Attribution((poster,), f"the checkpoint at step {s} is not the state the ranks signed")
    if verdict.ok:
        return Attribution((), "")
    if verdict.replay_ok:
        return Attribution((poster,), "the result weights are not the final checkpoint's model")
    if verdict.end_step < 0 or (verdict.start_step not in cks and verdict.start_step != 0):
        return Attribution((poster,), f"no replayable interval: {verdict.reason}")
    start = cks[verdict.start_step] if verdict.start_step in cks else initial_checkpoint(spec, dataset, base=base)
    if start.step > 0 and (not signed_params(start.step) or sk.NO_PARAMS in signed_params(start.step)):
        # a start state nobody signed could be made up, and then every rank would look wrong
        return Attribution((poster,), f"the checkpoint at step {start.step} is not attested in the sketch log")
    first = steps.get(start.step + 1)
    if first is None:
        return Attribution((poster,), f"the sketch log lacks step {start.step + 1}")
    world = len(first.messages)
    cfg = work.train_config(spec)
    from trainer import compression

    codec = compression.codec_id(cfg.compression)
    rep = SyncRankReplay(ms, dataset, cfg, start, world)
    for s in range(start.step + 1, verdict.end_step + 1):
        row = steps.get(s)
        if row is None or len(row.messages) != world:
            return Attribution((poster,), f"the sketch log lacks step {s} (or its group changed)")
        group = sorted(row.messages)
        any_msg = row.messages[group[0]]
        seed = sk.sketch_seed(any_msg.namespace, s, any_msg.digest)
        grads = rep.rank_gradients()
        parts = _parts(grads[0][0].size, world)
        devs: dict[str, float] = {}
        for i, peer in enumerate(group):
            m = row.messages[peer]
            honest = [sk.sketch(sk.contribution(grads[i][0], parts, i, j, codec, cfg.chunk_elems), seed, j)
                      for j in range(world)]
            floor = 1e-3 * max(sk.rms(h) for h in honest)
            dev = max(sk.deviation(m.sketches[j], honest[j], floor) for j in range(world))
            devs[peer] = math.inf if m.weight != grads[i][1] else dev
        over = {p: d for p, d in devs.items() if not d <= SKETCH_RTOL}
        quiet = max((d for p, d in devs.items() if p not in over), default=math.inf)
        if over:
            detail = ", ".join(f"{p[:12]} off by {d:.3g}" for p, d in sorted(over.items()))
            # At the interval's first step the parameters are the attested checkpoint's: nothing
            # can have drifted, so whoever is over the tolerance sent something else. Later, a
            # sub-tolerance cheat may have moved the real trajectory away from the replay and every
            # rank drifts: blame only ranks that stand out from the quiet ones, else nobody.
            if s == start.step + 1:
                bad = tuple(over)
            else:
                bad = tuple(p for p, d in over.items() if d >= SKETCH_DOMINANCE * quiet)
            if not bad:
                return Attribution((), f"step {s}: sketches drift ({detail}) without a rank standing out from the "
                                       f"others (within {quiet:.3g}): inconclusive, nobody named", s, quiet)
            who = tuple(sorted(address_from_text(p) for p in bad))
            q = 0.0 if quiet == math.inf else quiet
            return Attribution(who, f"step {s}: signed gradient sketches deviate from the data ({detail}; "
                                    f"tolerance {SKETCH_RTOL}, the other ranks within {q:.3g})", s, q)
        rep.apply(grads)
    end_signed = signed_params(verdict.end_step)
    if end_signed and sk.NO_PARAMS not in end_signed:
        # every rank signed the end state (checked above) and no sketch stands out: the group
        # really went there (a sub-tolerance deviation or replay nondeterminism), not the poster
        return Attribution((), f"{verdict.reason}; but every rank signed the end state and no rank's sketch "
                               "deviates: inconclusive, nobody named")
    return Attribution((poster,), f"{verdict.reason or 'the result fails'}; yet every rank's signed sketch matches "
                                  "its honest gradient: the unattested end checkpoint was made up")


def _parts(size: int, world: int):
    from trainer.allreduce import part_bounds

    return part_bounds(size, world)


def attributed_verify_body(job, verdict: Verdict, metric: str, attribution: Attribution) -> JobVerify:
    """The `job_verify` body naming exactly `attribution.bad` (possibly nobody); the metric as measured."""
    return JobVerify(job_id=job.id, replay_from=job.replay_from, replay_steps=job.replay_steps,
                     bad_workers=tuple(sorted(set(attribution.bad))), metric_ppm=work.metric_ppm(verdict.metrics[metric]))
