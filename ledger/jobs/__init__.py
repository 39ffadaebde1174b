"""Jobs on the chain: provider records, a job's life (submit, offers, assignment, result,
verification, settlement, faults), control tasks, and their views. Rules: ledger/JOBS.md.

Modules: `records` (state records and keys), `rules` (constants), `providers`, `strategy`
(pluggable assignment), `lifecycle` (the rules the transaction kinds and the end-block hook call),
`settlement` (escrow payouts through the economics' utilisation split), `control` (known-answer
tasks), `beacon` (deterministic randomness), `cid` (content-id form), `views` (API/CLI reads).
"""
