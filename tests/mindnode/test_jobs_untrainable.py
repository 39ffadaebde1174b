"""A job that cannot be trained through its own fault fails fast with a full refund (`job_abort`),
instead of sitting `running` at step 0 until its deadline: agents over a real chain (as in
test_jobs_agent) get a job whose dataset artifact is not a safetensors file, or that no peer has;
every worker's training fails, each declares the job untrainable, and the chain fails it within
a few blocks, nobody paid or penalised."""

import pytest
import trio
from test_jobs_agent import Blobs, LocalNet, Port, provider_agents, register_all, run_until_finished
from test_jobs_dataset_artifact import artifact_spec

from ledger.jobs import records as R
from ledger.jobs.cid import cid_of
from ledger.jobs.views import job_view
from ledger.keys import devnet_key
from mindnode.jobs.agent import ProviderAgent, untrainable_cause
from mindnode.jobs.errors import JobSpecError
from p2p.errors import BlobNotFound
from trainer.errors import DatasetError, PeerFailure

PROVIDERS = [devnet_key(i) for i in range(2, 6)]     # 2 workers, 2 that only verify
SUB = devnet_key(1)


class PeerBlobs(Blobs):
    """Blobs as the node's exchange answers for an id nobody holds: `BlobNotFound`."""

    async def get(self, cid):
        if cid not in self.data:
            raise BlobNotFound(f"no reachable peer had blob {cid} intact (no peers)")
        return await super().get(cid)


async def _run(tmp_path, blobs, spec, wait_s=30.0):
    from trainer.transport import InMemoryHub

    net = LocalNet(tmp_path / "chain", providers=PROVIDERS)
    hub = InMemoryHub()
    agents = provider_agents(net, PROVIDERS, blobs, hub, tmp_path, offering=2)
    for a in agents:
        a.missing_blob_wait_s = wait_s
    await register_all(net, PROVIDERS)
    before = {k.address: net.store.state().account(k.address).balance for k in (SUB, *PROVIDERS)}
    job = await run_until_finished(net, agents, spec, timeout=60)
    st = net.store.state()
    rep = {k.address: R.get_provider(st, k.address) for k in PROVIDERS}
    assert all(p.reputation == 5_000 and p.active_jobs == 0 and p.jobs_failed == 0 for p in rep.values())
    assert {k.address: st.account(k.address).balance for k in (SUB, *PROVIDERS)} == before   # full refund
    assert st.account(R.JOB_ESCROW).balance == 0
    view = job_view(st, job.id)
    net.store.close()
    return job, agents, view


@pytest.mark.timeout(120)
async def test_a_dataset_artifact_that_is_not_safetensors_fails_the_job_fast_with_a_full_refund(
        tmp_path, capsys, monkeypatch):
    blobs = Blobs()
    job, agents, view = await _run(tmp_path, blobs, artifact_spec(blobs.put(b"not a safetensors file")))
    assert job.state == R.FAILED, (job.reason, [a.errors for a in agents])
    assert job.reason.startswith("untrainable: dataset: DatasetError: dataset blob is not a valid safetensors")
    assert job.refunded == job.budget and job.fee_paid == 0 and not job.payments and not job.verifier_payments
    assert sorted(a.worker for a in job.aborts) == sorted(w.provider for w in job.assigned)   # both declared
    assert {a.code for a in job.aborts} == {"dataset"}
    # a few blocks after the workers were assigned (not at the deadline: hours on a real network)
    assert job.settled_height - max(a.height for a in job.aborts) == 0
    assert max(a.height for a in job.aborts) - job.window_close_height <= 5
    assert [(a["code"], a["reason"][:12]) for a in view["aborts"]] == [("dataset", "DatasetError")] * 2
    # `mindnode job status` prints the reason and the declarations; a worker's reason is its own
    # text on chain, so rich markup in it (`[/]` made rich raise) is printed as it is
    from mindnode.commands.job_cmds import _print_job

    monkeypatch.setenv("COLUMNS", "400")
    _print_job(view)
    out = capsys.readouterr().out
    assert "failed (untrainable: dataset: DatasetError: dataset blob is not a valid safetensors file" in out
    assert out.count(": dataset: DatasetError") == 3          # the state row and one per declaring worker
    view["reason"] = view["aborts"][0]["reason"] = "untrainable: spec: [/] [bold]x[/bold]"
    _print_job(view)
    assert "untrainable: spec: [/] [bold]x[/bold]" in capsys.readouterr().out


@pytest.mark.timeout(120)
async def test_an_artifact_no_peer_has_is_asked_for_again_then_the_job_is_declared_untrainable(tmp_path):
    missing = cid_of(b"nobody published this dataset")
    job, agents, _ = await _run(tmp_path, PeerBlobs(), artifact_spec(missing), wait_s=0.3)
    assert job.state == R.FAILED, (job.reason, [a.errors for a in agents])
    assert job.reason.startswith(f"untrainable: dataset: BlobNotFound: no reachable peer had blob {missing}")


def _job(job_id, spec) -> R.Job:
    """A job record with only what the agent reads here (id and spec)."""
    return R.Job(**{f: None for f in R.Job.__record_key_order__} | {"id": job_id, "spec": spec.canonical()})


async def test_a_blob_that_turns_up_during_the_wait_is_trained_again_not_aborted(tmp_path):
    blobs = PeerBlobs()
    raw = b"published late"
    net = LocalNet(tmp_path / "chain", providers=PROVIDERS)
    agent = ProviderAgent(PROVIDERS[0].address, Port(net, PROVIDERS[0]), blobs, None, tmp_path / "a")
    agent.missing_blob_wait_s = 0.2
    agent._training[7] = trio.CancelScope()

    async def publish_late():
        await trio.sleep(0.05)
        blobs.put(raw)

    async with trio.open_nursery() as n:
        n.start_soon(publish_late)
        handled = await agent._abort_if_untrainable(_job(7, artifact_spec(cid_of(raw))), {"peers": ["x"]},
                                                    BlobNotFound(f"no reachable peer had blob {cid_of(raw)}"))
    assert handled and not net.pending                   # no job_abort sent
    assert 7 not in agent._training and agent._failed[7] == (1, set())      # poll() trains it again
    net.store.close()


def test_what_counts_as_the_job_s_fault():
    job = _job(3, artifact_spec(cid_of(b"data")))
    data = cid_of(b"data")
    assert untrainable_cause(DatasetError("dataset blob is not a valid safetensors file"), job)[:2] == (
        "dataset", "DatasetError: dataset blob is not a valid safetensors file")
    assert untrainable_cause(BlobNotFound(f"no reachable peer had blob {data}"), job)[::2] == ("dataset", data)
    assert untrainable_cause(JobSpecError("job 3 spec: model: unknown\x1b[0m"), job)[:2] == (
        "spec", "JobSpecError: job 3 spec: model: unknown [0m")
    assert untrainable_cause(ExceptionGroup("g", [DatasetError("x"), DatasetError("y")]), job)[0] == "dataset"
    # a peer next to it, a peer alone, or anything else: not the job's fault
    assert untrainable_cause(ExceptionGroup("g", [DatasetError("x"), PeerFailure("p", "gone")]), job) is None
    assert untrainable_cause(PeerFailure("p", "gone"), job) is None
    assert untrainable_cause(RuntimeError("disk full"), job) is None
    assert len(untrainable_cause(DatasetError("x" * 500), job)[1]) == 160
