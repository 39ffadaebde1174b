"""``mindnode job ...`` and ``mindnode provider ...``: job specs, submitting and managing jobs,
registering this node as a provider.

Transactions are signed locally with a keystore key and sent to a node's HTTP API (the node
room's `mindnode.node.rpc_client.RpcClient`); job and provider records are read from the routes of
`mindnode.jobs.api`. Heavy imports stay inside the functions so ``--help`` is instant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from mindnode.cli_common import datadir_from, datadir_option, json_option, password_file_option
from mindnode.commands.tables import grid, kv_table
from mindnode.errors import MindnodeError

DEFAULT_RPC = "http://127.0.0.1:8645"
TERMINAL = ("done", "failed", "expired", "cancelled")
#: Seconds `job submit` (without --wait), `cancel` and `rate` wait for their transaction's block.
SUBMIT_WAIT_S = 30.0

rpc_option = click.option("--rpc", "rpc_url", metavar="URL", default=None, envvar="MINDNODE_RPC",
                          help=f"HTTP API of the node to use [default: the node of --datadir, else {DEFAULT_RPC}].")


def _client(rpc_url: str | None, datadir: Path | None):
    try:
        from mindnode.node.rpc_client import RpcClient
    except ImportError:
        raise MindnodeError("this build has no node HTTP client (mindnode.node); start a node built with it, "
                            "or use `mindnode job show` to check a spec offline") from None
    if not rpc_url:
        try:
            from mindnode.config import load_config

            cfg = load_config(datadir_from(datadir))
            rpc_url = f"http://{cfg.api_host}:{cfg.api_port}"
        except Exception:
            rpc_url = DEFAULT_RPC
    return RpcClient(rpc_url)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, sort_keys=True, default=str))


def _nmt(units: int | str) -> str:
    from decimal import Decimal

    d = Decimal(int(units)) / Decimal(10**18)
    return f"{d.normalize():f} NMT"


def _tx_options(f):
    f = click.option("--fee", default="0", show_default=True, help="Transaction fee in NMT.")(f)
    f = click.option("--key", "key_name", default=None, help="Keystore key to sign with [default: the node key].")(f)
    f = password_file_option(f)
    f = datadir_option(f)
    f = rpc_option(f)
    return f


def _send(client, body, *, datadir, key_name, password_file, fee: str) -> dict:
    """Sign `body` with the keystore key and submit it; returns the node's answer ({hash, ...})."""
    from ledger.keys import address_to_text
    from ledger.tx import sign_tx
    from mindnode.cli_common import read_password
    from mindnode.config import load_config
    from mindnode.jobs.spec import parse_nmt

    dd = datadir_from(datadir)
    name = key_name or load_config(dd).node_key
    store = dd.keystore
    password = read_password(password_file) if store.needs_password(name) else None
    key = store.load(name, password)
    chain_id = client.status()["chain_id"]
    acct = client.account(address_to_text(key.address))
    nonce = int(acct.get("pending_nonce", acct["nonce"]))
    fee_units = 0 if fee.strip() in ("0", "") else parse_nmt(fee, "--fee")
    return client.submit_tx(sign_tx(key, chain_id, nonce, fee_units, body).encode())


# -------------------------------------------------------------------------------------------- job
@click.group()
def job() -> None:
    """Training jobs: bundled examples, spec checks, submit, watch, status, result, cancel, rate.

    \b
    First job on a local devnet (the submitter may neither train nor verify its own job, so sign
    with an account that is not a node's; digits-mlp needs 3 workers + 1 verifier = 4 nodes):
      mindnode devnet --nodes 4 --dir .devnet            (another terminal)
      export MINDNODE_DATADIR=.devnet/node0
      mindnode keys import --name client --devnet 9
      mindnode job submit digits-mlp --key client --wait
      mindnode job result 1 -o out/
    """


@job.command()
@click.argument("name", required=False)
@json_option
def examples(name: str | None, as_json: bool) -> None:
    """List the example job specs bundled with mindnode (use a NAME with `job submit`); with NAME,
    print that spec file, to save and edit: `mindnode job examples digits-mlp > my-job.json`."""
    from mindnode.jobs import examples as ex

    if name is not None:
        click.echo(ex.text(name).decode(), nl=False)
        return
    rows = []
    for name in ex.names():
        s = ex.resolve(name)
        d = s.data
        rows.append({"name": name, "mode": d["mode"], "workers": d["workers"], "model": d["model"]["zoo"],
                     "dataset": d["dataset"].get("source") or d["dataset"].get("artifact"),
                     "steps": s.steps, "budget": d["budget"], "description": d.get("description", "")})
    if as_json:
        _echo_json(rows)
        return
    grid("bundled job specs", ("name", "mode", "workers", "model", "dataset", "steps", "budget (NMT)"),
         [(r["name"], r["mode"], r["workers"], r["model"], r["dataset"], r["steps"], r["budget"]) for r in rows])


@job.command()
@click.argument("spec")
@json_option
def show(spec: str, as_json: bool) -> None:
    """Validate SPEC (a bundled example's name or a JSON file) and print it with the terms it puts on chain."""
    from mindnode.jobs import examples as ex

    s = ex.resolve(spec)
    body = s.submit_body(0)
    terms = {"workers": body.workers, "min_workers": body.min_workers, "mode": body.mode, "steps": body.steps,
             "max_samples_per_worker": body.max_samples, "min_class": body.min_class, "min_score": body.min_score,
             "budget": _nmt(body.budget), "max_price": _nmt(body.max_price) + " per 1,000 samples",
             "acceptance": f"{body.metric} {body.metric_op} {body.threshold_ppm / 1e6}",
             "offer_window_blocks": body.offer_window, "replay_steps": body.replay_steps,
             "deadline_s": s.data["deadline_s"], "spec_bytes": len(body.spec)}
    if as_json:
        _echo_json({"spec": s.data, "terms": terms, "trainer": s.trainer_spec()})
        return
    kv_table(f"job spec {s.name or spec}: valid", [(k, v) for k, v in terms.items()])


@job.command()
@click.argument("spec")
@_tx_options
@click.option("--wait", is_flag=True, help="Wait until the job is finished and print its final record.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to --wait.")
@json_option
def submit(spec: str, rpc_url, datadir, key_name, password_file, fee, wait: bool, timeout: float,
           as_json: bool) -> None:
    """Submit SPEC (a bundled example's name or a JSON file): escrows its budget on chain."""
    from mindnode.jobs import examples as ex

    s = ex.resolve(spec)
    body = s.submit_body(int(time.time() * 1000))
    with _client(rpc_url, datadir) as c:
        warning = provider_submitter_warning(c, _signer_address(datadir, key_name))
        if warning:
            click.echo(warning, err=True)
        res = _send(c, body, datadir=datadir, key_name=key_name, password_file=password_file, fee=fee)
        tx_hash = res["hash"]
        if not wait:
            job_id = _job_id_of(c, tx_hash)
            if as_json:
                _echo_json({**res, "job_id": job_id, "status": "pending" if job_id is None else "included"})
            elif job_id is None:
                click.echo(f"job_submit {tx_hash} sent, not in a block yet; `mindnode job status --tx {tx_hash}` "
                           "shows the job once it is")
            else:
                click.echo(f"job {job_id} submitted (tx {tx_hash}); follow it with `mindnode job watch {job_id}`")
            return
        c.wait_tx(tx_hash, timeout=min(timeout, 120))
        deadline = time.monotonic() + timeout
        while True:
            record = c._call("GET", f"/jobs/by-tx/{tx_hash}")
            if record["state"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise MindnodeError(f"job {record['id']} is still {record['state']} after {timeout:.0f} s")
            time.sleep(1.0)
    if as_json:
        _echo_json(final_record(record))
    else:
        _print_job(record)


def provider_submitter_warning(c, signer: str) -> str | None:
    """A job's submitter may neither train nor verify it, so on a small network (a devnet: every node
    is a provider and submits with its node key by default) a job signed by a provider's key can lack
    workers or a verifier and fail after training. Say so before the budget is escrowed."""
    from mindnode.node import errors as node_errors

    try:
        c._call("GET", f"/providers/{signer}")
    except node_errors.NotFound:
        return None
    return (f"warning: the signing key {signer[:14]}... is a registered provider; it can neither work on nor "
            "verify its own job, so the job needs that many more providers (on a devnet, sign with a key that is "
            "not a node's: `mindnode keys import --name client --devnet 9`, then --key client)")


def final_record(r: dict) -> dict:
    """The job record plus its headline figures at the top level, as the issue's `--json` promises
    (`.metrics.accuracy`, `.result_id`), so a script need not know they live under `result`."""
    res = r.get("result") or {}
    return {**r, "metrics": res.get("metrics", {}), "result_id": res.get("result_id")}


def _job_id_of(c, tx_hash: str, timeout: float = SUBMIT_WAIT_S) -> int | None:
    """The id of the job a just-sent job_submit created, once it is in a block (a few seconds), so the
    user gets the id to `watch` at once; None if it is not included within `timeout`."""
    from mindnode.node import errors as node_errors

    try:
        c.wait_tx(tx_hash, timeout=timeout)
        return c._call("GET", f"/jobs/by-tx/{tx_hash}")["id"]
    except node_errors.NodeError:
        return None


def _audit_line(a: dict) -> str:
    """One line for the job view's `audit` record: who said clean, who audits it, with what metric."""
    line = f"{a['phase']} (drawn at height {a['draw_height']}): clean verdict by {a['clean_verifier']} " \
           f"({a['clean_metric']})"
    if a.get("auditor"):
        audited = "pending" if a.get("audit_metric") is None else a["audit_metric"]
        line += f"; auditor {a['auditor']} ({audited})"
    return line


def _print_job(r: dict) -> None:
    rows = [("id", r["id"]), ("state", r["state"] + (f" ({r['reason']})" if r["reason"] else "")),
            ("mode", r["mode"]), ("workers", [w["provider"] + ("" if w["active"] else " (left)")
                                              for w in r["assigned"]]),
            ("budget", _nmt(r["budget"])), ("escrow", _nmt(r["escrow"]))]
    if r.get("result"):
        rows += [("result id", r["result"]["result_id"]), ("metrics", r["result"]["metrics"])]
    if r.get("verified_metric") is not None and (r["state"] == "done" or r.get("verifier_payments")):
        # only when a verifier's verdict stood: a job failed for want of a verifier has none
        rows.append(("verified " + r["metric"], r["verified_metric"]))
    rows += [("paid", _nmt(r["fee_paid"])), ("refunded", _nmt(r["refunded"])),
             ("payments", [f"{p['provider']}: {_nmt(p['amount'])}" for p in r["payments"]])]
    if r.get("verifier_payments"):
        rows.append(("verifier fees", [f"{p['provider']}: {_nmt(p['amount'])}" for p in r["verifier_payments"]]))
    if r.get("aborts"):        # job_abort declarations (a majority fails the job, full refund)
        rows.append(("untrainable", [f"{a['provider']}: {a['code']}: {a['reason']} (height {a['height']})"
                                     for a in r["aborts"]]))
    if r.get("audit"):         # a random audit of the clean verdict (ledger/JOBS.md "Audits")
        rows.append(("audit", _audit_line(r["audit"])))
    if r.get("pruned"):
        rows.append(("pruned", f"at height {r['pruned_height']}: only the summary is kept (terms, workers, "
                               "offers and checkpoints are gone)"))
    kv_table(f"job {r['id']}", rows)


@job.command()
@click.argument("job_id", type=int, required=False)
@click.option("--tx", "tx_hash", default=None, help="Find the job by its job_submit transaction hash.")
@rpc_option
@datadir_option
@json_option
def status(job_id: int | None, tx_hash: str | None, rpc_url, datadir, as_json: bool) -> None:
    """Show job JOB_ID (or the job of --tx HASH): state, workers, result, verification, payments."""
    if (job_id is None) == (tx_hash is None):
        raise click.UsageError("give a JOB_ID or --tx HASH")
    with _client(rpc_url, datadir) as c:
        r = c._call("GET", f"/jobs/{job_id}" if job_id is not None else f"/jobs/by-tx/{tx_hash}")
    if as_json:
        _echo_json(final_record(r))
    else:
        _print_job(r)


@job.command(name="list")
@click.option("--state", default=None, help="Only jobs in these states (comma-separated).")
@click.option("--submitter", default=None, help="Only jobs of this address (mn...).")
@rpc_option
@datadir_option
@json_option
def list_(state: str | None, submitter: str | None, rpc_url, datadir, as_json: bool) -> None:
    """List jobs on chain."""
    params = {k: v for k, v in (("state", state), ("submitter", submitter)) if v}
    with _client(rpc_url, datadir) as c:
        rows = c._call("GET", "/jobs", params=params)
    if as_json:
        _echo_json(rows)
        return
    grid("jobs", ("id", "state", "mode", "workers", "budget", "submitter", "reason"),
         [(r["id"], r["state"], r["mode"], r["workers"], _nmt(r["budget"]), r["submitter"], r["reason"])
          for r in rows])


# A cancel or rate the chain would refuse is dropped from the block without a trace (the node only
# checks signature, nonce and fee on entry), so "sent" would be a lie: check what the chain will check
# first and say why, then wait for the block and report what happened.
CANCELLABLE = ("open", "running")


def check_can_cancel(rec: dict, signer: str) -> None:
    """Raise a one-line MindnodeError if the chain would refuse `signer`'s job_cancel of job `rec`."""
    if rec["submitter"] != signer:
        raise MindnodeError(f"only the submitter ({rec['submitter']}) can cancel job {rec['id']}; you sign with "
                            f"{signer} (use --key NAME for the submitter's key)")
    if rec["state"] == "verifying":
        raise MindnodeError(f"job {rec['id']} has a result being verified and cannot be cancelled")
    if rec["state"] not in CANCELLABLE:
        raise MindnodeError(f"job {rec['id']} is already {rec['state']}: nothing to cancel")


def check_can_rate(rec: dict, signer: str) -> None:
    """Raise a one-line MindnodeError if the chain would refuse `signer`'s job_rate of job `rec`."""
    if rec["submitter"] != signer:
        raise MindnodeError(f"only the submitter ({rec['submitter']}) can rate job {rec['id']}; you sign with "
                            f"{signer} (use --key NAME for the submitter's key)")
    if rec.get("pruned"):
        raise MindnodeError(f"job {rec['id']} was pruned at height {rec['pruned_height']} and can no longer be rated")
    if rec["state"] != "done":
        raise MindnodeError(f"job {rec['id']} is {rec['state']}; only a finished (done) job can be rated")
    if rec.get("rated"):
        raise MindnodeError(f"job {rec['id']} is already rated ({rec['rated']})")


def _job_record(c, job_id: int) -> dict:
    from mindnode.node import errors as node_errors

    try:
        return c._call("GET", f"/jobs/{job_id}")
    except node_errors.NotFound:
        raise MindnodeError(f"there is no job {job_id} on chain (`mindnode job list` shows the jobs)") from None


def _signer_address(datadir, key_name: str | None) -> str:
    from mindnode.config import load_config

    dd = datadir_from(datadir)
    return dd.keystore.find(key_name or load_config(dd).node_key).address_text


def _after_tx(c, tx_hash: str, job_id: int, kind: str) -> dict:
    """Wait for `tx_hash`'s block, then the job's record; a transaction the chain dropped is an error."""
    from mindnode.node import errors as node_errors

    try:
        c.wait_tx(tx_hash, timeout=SUBMIT_WAIT_S)
    except node_errors.NodeError:
        rec = c._call("GET", f"/jobs/{job_id}")
        raise MindnodeError(f"{kind} {tx_hash} was not included within {SUBMIT_WAIT_S:.0f} s (the chain refused it "
                            f"or is stalled); job {job_id} is {rec['state']}") from None
    return c._call("GET", f"/jobs/{job_id}")


def _summary(rec: dict) -> dict:
    return {k: rec.get(k) for k in ("id", "state", "reason", "refunded", "fee_paid", "rated")}


@job.command()
@click.argument("job_id", type=int)
@_tx_options
@json_option
def cancel(job_id: int, rpc_url, datadir, key_name, password_file, fee, as_json: bool) -> None:
    """Cancel your job JOB_ID: open -> full refund; running -> 10% of the budget pays the workers."""
    from ledger.txkinds.job_cancel import JobCancel

    with _client(rpc_url, datadir) as c:
        check_can_cancel(_job_record(c, job_id), _signer_address(datadir, key_name))
        res = _send(c, JobCancel(job_id=job_id), datadir=datadir, key_name=key_name, password_file=password_file,
                    fee=fee)
        rec = _after_tx(c, res["hash"], job_id, "job_cancel")
    if as_json:
        _echo_json({**res, "status": "included", "job": _summary(rec)})
    else:
        click.echo(f"job {job_id} {rec['state']} ({rec['reason']}): refunded {_nmt(rec['refunded'])}, "
                   f"paid the workers {_nmt(rec['fee_paid'])}")


@job.command()
@click.argument("job_id", type=int)
@click.argument("score", type=click.IntRange(1, 5))
@_tx_options
@json_option
def rate(job_id: int, score: int, rpc_url, datadir, key_name, password_file, fee, as_json: bool) -> None:
    """Rate your finished job JOB_ID from 1 to 5 (moves each paid worker's reputation a bounded step)."""
    from ledger.txkinds.job_rate import JobRate

    with _client(rpc_url, datadir) as c:
        check_can_rate(_job_record(c, job_id), _signer_address(datadir, key_name))
        res = _send(c, JobRate(job_id=job_id, score=score), datadir=datadir, key_name=key_name,
                    password_file=password_file, fee=fee)
        rec = _after_tx(c, res["hash"], job_id, "job_rate")
    if as_json:
        _echo_json({**res, "status": "included", "job": _summary(rec)})
    else:
        click.echo(f"job {job_id} rated {rec['rated']}: each paid worker's reputation moved by it")


class EtaEstimate:
    """Seconds until the last step, from the step rate seen since training started (None until two
    readings of a running job differ; 0 once training is over). Why not the samples/s the workers
    report: that is throughput per worker of the last window, while the steps seen here include the
    averaging and network waits the user actually waits for."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None

    def update(self, now: float, step: int, total: int, state: str) -> float | None:
        if state in TERMINAL or state == "verifying":
            return 0.0
        if state != "running":
            return None
        if self.first is None or step < self.first[1]:
            self.first = (now, step)
            return None
        t0, s0 = self.first
        if step == s0 or now <= t0:
            return None
        return round(max(total - step, 0) * (now - t0) / (step - s0), 1)


@job.command()
@click.argument("job_id", type=int)
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between updates.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Give up after this many seconds.")
@rpc_option
@datadir_option
@json_option
def watch(job_id: int, interval: float, timeout: float, rpc_url, datadir, as_json: bool) -> None:
    """Follow job JOB_ID live until it finishes: a progress bar of the workers' step, loss, workers, ETA
    (progress the workers gossip on the job topic; the node keeps the latest). --json: one line per update."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    deadline = time.monotonic() + timeout
    with _client(rpc_url, datadir) as c:
        def poll() -> tuple[dict, dict]:
            return c._call("GET", f"/jobs/{job_id}"), c._call("GET", f"/jobs/{job_id}/progress")

        if as_json:
            eta = EtaEstimate()
            while True:
                rec, prog = poll()
                total = prog["total_steps"] or rec["steps"]
                _echo_json({"id": job_id, "state": rec["state"], "step": prog["step"], "total_steps": total,
                            "loss": prog["loss"], "samples_per_s": prog.get("samples_per_s"),
                            "workers": sum(1 for w in rec["assigned"] if w["active"]),
                            "eta_s": eta.update(time.monotonic(), prog["step"], total, rec["state"])})
                if rec["state"] in TERMINAL:
                    return
                if time.monotonic() > deadline:
                    raise MindnodeError(f"job {job_id} is still {rec['state']} after {timeout:.0f} s")
                time.sleep(interval)
        cols = (TextColumn("job {task.fields[job]} [bold]{task.fields[state]}[/]"), BarColumn(),
                TextColumn("step {task.fields[steps]}"), TextColumn("loss {task.fields[loss]}"),
                TextColumn("workers {task.fields[workers]}"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn())
        with Progress(*cols) as bar:
            task = bar.add_task("train", total=None, job=job_id, state="?", loss="-", workers=0, steps="-")
            while True:
                rec, prog = poll()
                loss = "-" if prog["loss"] is None else f"{prog['loss']:.4f}"
                total = prog["total_steps"] or rec["steps"]
                bar.update(task, total=total, completed=prog["step"], state=rec["state"],
                           loss=loss, workers=sum(1 for w in rec["assigned"] if w["active"]),
                           steps=f"{prog['step']}/{total}")
                if rec["state"] in TERMINAL:
                    break
                if time.monotonic() > deadline:
                    raise MindnodeError(f"job {job_id} is still {rec['state']} after {timeout:.0f} s")
                time.sleep(interval)
    _print_job(rec)


@job.command()
@click.argument("job_id", type=int)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the weights (safetensors) and the job's metrics into.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds for the download.")
@rpc_option
@datadir_option
@json_option
def result(job_id: int, out_dir: Path, timeout: float, rpc_url, datadir, as_json: bool) -> None:
    """Download the weights of job JOB_ID (the node fetches them from any peer that holds them) and
    check them against the result's content id before writing DIR/job-ID.safetensors."""
    with _client(rpc_url, datadir) as c:
        rec = c._call("GET", f"/jobs/{job_id}")
        if not rec.get("result"):
            raise MindnodeError(f"job {job_id} has no result yet (it is {rec['state']})")
        cid = rec["result"]["result_id"]
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"job-{job_id}.safetensors"
        size = c.download_blob(cid, path, timeout=timeout)    # streamed, checked, then renamed
    meta = {"id": job_id, "result_id": cid, "state": rec["state"], "metrics": rec["result"]["metrics"],
            "verified_metric": rec.get("verified_metric"), "path": str(path), "bytes": size}
    (out_dir / f"job-{job_id}.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    _echo_json(meta) if as_json else click.echo(f"wrote {path} ({size} bytes, id {cid} checked)")


# -------------------------------------------------------------------------------------- provider
@click.group()
def provider() -> None:
    """This node as a compute provider: register or update its record, show its status."""


def _provider_options(f):
    f = click.option("--price", default="0.01", show_default=True, help="Your price in NMT per work unit "
                     "(1,000 samples processed).")(f)
    f = click.option("--capacity", type=click.IntRange(1, 8), default=1, show_default=True,
                     help="Jobs at once.")(f)
    f = click.option("--zone", default="", help="Locality hint, e.g. eu-west (workers of a job are kept close).")(f)
    f = click.option("--bandwidth-kbps", type=click.IntRange(0, 100_000_000), default=100_000, show_default=True,
                     help="Your measured or contracted bandwidth.")(f)
    f = click.option("--bench-seconds", type=float, default=1.0, show_default=True,
                     help="Time the benchmark spends per device.")(f)
    return f


def _provider_body(update: bool, price, capacity, zone, bandwidth_kbps, bench_seconds):
    from mindnode.jobs.benchmark import run
    from mindnode.jobs.spec import parse_nmt

    price_units = parse_nmt(price, "--price")        # before the benchmark: a typo fails fast
    r = run(bench_seconds)
    fields = dict(hardware_class=r.hardware_class, score=r.score, price=price_units,
                  capacity=capacity, zone=zone, bandwidth_kbps=bandwidth_kbps)
    if update:
        from ledger.txkinds.provider_update import ProviderUpdate

        return ProviderUpdate(**fields)
    from ledger.txkinds.provider_register import ProviderRegister

    return ProviderRegister(**fields)


@provider.command()
@_provider_options
@_tx_options
@json_option
def register(price, capacity, zone, bandwidth_kbps, bench_seconds, rpc_url, datadir, key_name, password_file, fee,
             as_json: bool) -> None:
    """Benchmark this machine and register it as a provider at your price."""
    _send_provider_body(False, price, capacity, zone, bandwidth_kbps, bench_seconds, rpc_url, datadir, key_name,
                        password_file, fee, as_json)


@provider.command()
@_provider_options
@_tx_options
@json_option
def update(price, capacity, zone, bandwidth_kbps, bench_seconds, rpc_url, datadir, key_name, password_file, fee,
           as_json: bool) -> None:
    """Re-benchmark and update your provider record (price, capacity, zone, bandwidth)."""
    _send_provider_body(True, price, capacity, zone, bandwidth_kbps, bench_seconds, rpc_url, datadir, key_name,
                        password_file, fee, as_json)


def _send_provider_body(update, price, capacity, zone, bandwidth_kbps, bench_seconds, rpc_url, datadir, key_name,
                        password_file, fee, as_json: bool) -> None:
    """Benchmark, build the register/update body, sign and send it (the two commands differ only in kind)."""
    body = _provider_body(update, price, capacity, zone, bandwidth_kbps, bench_seconds)
    with _client(rpc_url, datadir) as c:
        res = _send(c, body, datadir=datadir, key_name=key_name, password_file=password_file, fee=fee)
    _echo_json(res) if as_json else click.echo(
        f"{body.kind} {res['hash']} sent ({body.hardware_class}, score {body.score})")


@provider.command(name="status")
@click.argument("address", required=False)
@rpc_option
@datadir_option
@json_option
def provider_status(address: str | None, rpc_url, datadir, as_json: bool) -> None:
    """Show a provider record (default: this node's key) and its current duties."""
    if address is None:
        from mindnode.config import load_config

        dd = datadir_from(datadir)
        address = dd.keystore.find(load_config(dd).node_key).address_text
    with _client(rpc_url, datadir) as c:
        rec = c._call("GET", f"/providers/{address}")
        duties = c._call("GET", f"/providers/{address}/duties")
    if as_json:
        _echo_json({"provider": rec, "duties": duties})
        return
    rows = [(k, _nmt(v) + " per 1,000 samples" if k == "price" else v) for k, v in rec.items()]
    kv_table(f"provider {address}", rows + [("duties", duties)])
