"""HTTP routes of the jobs views, for the node's FastAPI app (the node room wires them with one
call: ``add_job_routes(app, lambda: store.state())``). Read-only; JSON as in `ledger.jobs.views`.

    GET /jobs?submitter=mn...&state=open        summaries
    GET /jobs/{id}                              one job (offers, workers, result, payments)
    GET /jobs/by-tx/{hex hash}                  the job a job_submit transaction created
    GET /providers/{address}                    a provider record (404 if not registered)
    GET /providers/{address}/duties             what that provider should act on now
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_LIST_STATES = 8


class JobApiError(Exception):
    """An error answer of these routes. It is sent as ``{"error": NAME, "message": ...}`` at the top
    level, the body every other route of the node uses, so the RPC client re-raises it as the node's
    matching exception (NotFound, BadRequest) and the CLI prints the message as one line (FastAPI's
    HTTPException would nest it under "detail" and the user would see raw JSON)."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status, self.name = status, name


def add_job_routes(app: Any, state_fn: Callable[[], Any]) -> None:
    from fastapi.responses import JSONResponse

    from ledger.errors import LedgerError
    from ledger.jobs import views
    from ledger.keys import address_from_text

    @app.exception_handler(JobApiError)
    async def _job_api_error(_request: Any, exc: JobApiError) -> JSONResponse:
        return JSONResponse({"error": exc.name, "message": str(exc)}, status_code=exc.status)

    def _addr(text: str) -> bytes:
        try:
            return address_from_text(text)
        except LedgerError as exc:
            raise JobApiError(400, "BadRequest", str(exc)) from None

    @app.get("/jobs", summary="Jobs on chain (optionally one submitter's, or in given states)")
    async def list_jobs(submitter: str | None = None, state: str | None = None) -> list[dict]:
        states = tuple(state.split(","))[:MAX_LIST_STATES] if state else None
        return views.list_jobs(state_fn(), submitter=_addr(submitter) if submitter else None, states=states)

    @app.get("/jobs/by-tx/{tx_hash}", summary="The job created by a job_submit transaction")
    async def job_by_tx(tx_hash: str) -> dict:
        try:
            h = bytes.fromhex(tx_hash.removeprefix("0x"))
        except ValueError:
            raise JobApiError(400, "BadRequest", "transaction hash is not hex") from None
        st = state_fn()
        job_id = views.job_id_of_tx(st, h)
        if job_id is None:
            raise JobApiError(404, "NotFound", f"no job from transaction {tx_hash}")
        return views.job_view(st, job_id)

    @app.get("/jobs/{job_id}", summary="One job: terms, offers, workers, result, verification, payments")
    async def job(job_id: int) -> dict:
        try:
            return views.job_view(state_fn(), job_id)
        except LedgerError as exc:
            raise JobApiError(404, "NotFound", str(exc)) from None

    @app.get("/providers/{address}", summary="A provider record: hardware, price, reputation, counters")
    async def provider(address: str) -> dict:
        v = views.provider_view(state_fn(), _addr(address))
        if v is None:
            raise JobApiError(404, "NotFound", f"{address} is not a registered provider (a node "
                              "registers at start unless --no-provide, or with `mindnode provider register`)")
        return v

    @app.get("/providers/{address}/duties", summary="Open jobs to offer on, assignments, verifications, control")
    async def duties(address: str) -> dict:
        return views.provider_duties(state_fn(), _addr(address))
