"""TEST-ONLY fault switches, read from the environment variable ``MINDNODE_TEST_FAULTS``.

Why in the product at all: end-to-end tests must show what honest nodes do when a validator
misbehaves (double-sealing) or when links are cut (a partition), with real processes. The switches
are fenced: nothing here is reachable unless the variable is set, and a node with any switch on
logs a loud warning at start and says so in `/status` (``test_faults``).

Values (comma-separated):
* ``double-seal``  -- when this validator seals, it also seals a second, different block at the
  same height and gossips both (equivocation: evidence for the slashing rules).
* ``debug-api``    -- exposes ``POST /debug/deny?arg=<peer id>`` / ``/debug/allow`` on the HTTP API
  to cut/restore links to a peer (partition tests).
* ``few-heartbeats`` -- this provider gossips heartbeats only in hours 0..qualifying_hours-1 of a
  chain day: exactly the bar, which does not qualify for the mining reward (more than 5 needed).
"""

from __future__ import annotations

import os

ENV = "MINDNODE_TEST_FAULTS"
KNOWN = {"double-seal", "debug-api", "few-heartbeats"}


def active() -> frozenset[str]:
    raw = os.environ.get(ENV, "")
    return frozenset(f.strip() for f in raw.split(",") if f.strip() in KNOWN)
