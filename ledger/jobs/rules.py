"""The jobs rules' hard limits: constants that size stored records or bound one block's work.

The policy numbers (offer rounds, verification delay/timeout/rounds, replacements, reputation
deltas, control-task period, cancel fee, slash fraction, work unit, verifier fee, retention) are
genesis parameters: `ledger.jobs.params.JobParams`, read at execution from ``state.params.jobs``.
What stays here, and why:

* MAX_WORKERS, MAX_SPEC_BYTES: size the `Job` record (`reports` holds up to MAX_WORKERS**2
  entries, `spec` up to MAX_SPEC_BYTES); a bigger value is a new record encoding.
* MAX_OFFERS: bounds the offers one window close scans (block work), and the job view's size.
* MIN/MAX_OFFER_WINDOW, MAX_REPLAY_STEPS: what a client validates a spec against before it
  submits (`mindnode.jobs.spec`), and MAX_REPLAY_STEPS bounds what a verifier must replay.
* REPUTATION_MIN/MAX: the scale (stored as UInt(16)); the deltas are parameters.
* CONTROL_MATRIX_N: what a provider node computes for a control task (`control_answer`); a
  different size is a different task, i.e. new node code.
* PPM: the fixed-point unit of metrics in records.

Units: blocks for windows (the chain's own clock), unix ms for deadlines (the block timestamp),
basis points for fractions, reputation in 0..10_000.
"""

from __future__ import annotations

from ledger.jobs.params import REPLACEMENTS_LIMIT, VERIFY_ROUNDS_LIMIT, JobParams

#: The default parameters (what a genesis without a ``jobs`` section runs with). Rules never read
#: these: they read ``state.params.jobs``. Kept for clients and tests that need the defaults.
DEFAULTS = JobParams()
#: The default work unit (samples); consensus reads ``params.jobs.work_unit_samples``.
WORK_UNIT_SAMPLES = DEFAULTS.work_unit_samples

# -- offers and assignment -----------------------------------------------------------------------
MIN_OFFER_WINDOW = 1            # blocks
MAX_OFFER_WINDOW = 1_000
MAX_OFFERS = 64                 # per job
MAX_WORKERS = 16
MAX_SPEC_BYTES = 8 * 1024       # the canonical JSON spec carried in job_submit
MAX_ASSIGNED = MAX_WORKERS + REPLACEMENTS_LIMIT   # Job.assigned (workers + replacements)

# -- verification ----------------------------------------------------------------------------------
MAX_VERIFY_ROUNDS_LIMIT = VERIFY_ROUNDS_LIMIT     # sizes Job.tried_verifiers
DEFAULT_REPLAY_STEPS = 5
MAX_REPLAY_STEPS = 100
PPM = 1_000_000                 # metrics travel as integer millionths (accuracy 0.95 -> 950_000)

# -- reputation scale (integer, bounded) -------------------------------------------------------------
REPUTATION_MIN = 0
REPUTATION_MAX = 10_000

# -- control tasks -------------------------------------------------------------------------------
CONTROL_MATRIX_N = 16           # size of the known-answer integer matmul
