"""The jobs rules' constants (consensus values: every node must use the same).

Why module constants and not `ledger.genesis.Params`: adding fields there also means extending the
params codec of another room; these defaults are what the devnet and tests need. Moving them into
genesis is a mechanical change (see ledger/JOBS.md, "Not built yet").

Units: blocks for windows (the chain's own clock, so every node agrees without a wall clock),
unix ms for deadlines (the block timestamp), basis points for fractions, reputation in 0..10_000.
"""

from __future__ import annotations

#: A unit of work is this many samples processed; providers price a unit (base units / unit).
WORK_UNIT_SAMPLES = 1_000

# -- offers and assignment -----------------------------------------------------------------------
MIN_OFFER_WINDOW = 1            # blocks
MAX_OFFER_WINDOW = 1_000
MAX_OFFER_ROUNDS = 3            # a window that closes short of workers reopens at most twice
MAX_OFFERS = 64                 # per job
MAX_WORKERS = 16
MAX_REPLACEMENTS = 4            # missing workers replaced per job (bounded retries)
MAX_SPEC_BYTES = 8 * 1024       # the canonical JSON spec carried in job_submit
MAX_JOBS_PER_PROVIDER = 8       # capacity ceiling a provider may declare

# -- verification ----------------------------------------------------------------------------------
VERIFY_DELAY_BLOCKS = 2         # the replay range comes from the beacon this many blocks after the result
VERIFY_TIMEOUT_BLOCKS = 30      # a designated verifier has this long to post its verdict
MAX_VERIFY_ROUNDS = 4           # verifiers tried (confirmers included) before the job fails unverified (refund)
DEFAULT_REPLAY_STEPS = 5
MAX_REPLAY_STEPS = 100
PPM = 1_000_000                 # metrics travel as integer millionths (accuracy 0.95 -> 950_000)

# -- reputation (integer, bounded) -------------------------------------------------------------------
REPUTATION_MIN = 0
REPUTATION_MAX = 10_000
REPUTATION_START = 5_000
REP_VERIFIED_WORK = 100         # each worker paid for a verified job
REP_VERIFIER = 20               # a verifier that posted its verdict in time (an accuser: once confirmed)
REP_FALSE_ACCUSATION = -1_000   # a verifier whose accusation the confirming verifier did not share
REP_CONTROL_PASS = 20
REP_FAILED_VERIFICATION = -1_000
REP_DROPPED = -500              # reported missing by the other workers
REP_EXPIRED = -100              # assigned worker of a job whose deadline passed without a result
REP_CONTROL_FAIL = -200
REP_RATING_STEP = 50            # a client rating r in 1..5 moves each paid worker by (r - 3) * step

# -- cancellation ------------------------------------------------------------------------------------
CANCEL_RUNNING_FEE_BPS = 1_000  # cancelling an assigned job pays 10% of the budget for the work begun

# -- control tasks -------------------------------------------------------------------------------
CONTROL_INTERVAL_BLOCKS = 50    # one control task is issued every this many blocks
CONTROL_TIMEOUT_BLOCKS = 20     # to answer it
CONTROL_MATRIX_N = 16           # size of the known-answer integer matmul
