"""Run several trainer Workers over one InMemoryHub."""
from __future__ import annotations

import trio

from trainer.errors import TrainerError
from trainer.transport import InMemoryHub
from trainer.worker import Worker


async def run_all(workers):
    """Run every worker to the end at once; each one's result, or the TrainerError it raised."""
    results = {}

    async def one(p):
        try:
            results[p] = await workers[p].run()
        except TrainerError as exc:
            results[p] = exc

    async with trio.open_nursery() as n:
        for p in workers:
            n.start_soon(one, p)
    return results


async def run_workers(ids, spec, ds, cfg, hub=None, checkpoint_dirs=None, progress=None):
    hub = hub or InMemoryHub()
    workers = {p: Worker(hub.transport(p), ids, spec, ds, cfg,
                         checkpoint_dir=(checkpoint_dirs or {}).get(p), progress=progress) for p in ids}
    return await run_all(workers), workers
