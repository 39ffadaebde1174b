"""The economics of the chain as pure, integer, deterministic consensus rules.

Nothing here touches storage: the state machine hands in what it knows (genesis, the day's uptime
masks, prices, validator weights, a job's work) and applies what comes back. Every function is
integer-only with one stated rounding, and every remainder is returned to the pool it came from;
`ledger/ECONOMICS.md` has the formulas.

Modules: `days` (chain day and hour), `uptime` (heartbeats, uptime entries, the >5-hour rule),
`prices` (oracle prices, 7-day average), `mining` (7.2.1), `staking` (6.2/7.2.3, F1), `fees`
(7.2.2), `schedule` (daily caps of the allocation table), `accrual` (per-address rewards and
withdrawal), `settlement` (a whole day), `params_codec` (JSON/msgpack forms of the economics
Params). `ledger_state` is the one module that touches the ledger state: records, settlement hook,
F1 stake hook, the effects of the economics transaction kinds (`ledger/txkinds/`).
"""
