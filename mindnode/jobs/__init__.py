"""mindnode's side of jobs: spec files (`spec`), bundled examples (`examples`), the provider
benchmark (`benchmark`), and the transactions the CLI signs (`txs`). The chain rules are in
`ledger.jobs` (ledger/JOBS.md)."""
