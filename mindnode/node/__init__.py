"""The Mind Node daemon: what `mindnode start` runs, and what `mindnode devnet` runs N of.

Modules, each named for what it does:

* `service`   -- `NodeService`: one trio nursery running the network, the HTTP API, range sync,
  the validator's sealing loop, votes and finality tracking (and `setup_logging`, JSON logs);
* `chain`     -- `Chain`: the ledger `Store` driven by `ledger.consensus` (snapshots, the store's
  consensus hook, fork choice and reorganisation, vote pool, seal guard, evidence), plus JSON views;
* `network`   -- `Network`: the daemon's adapter over `p2p.node.Node` (topic kinds, one error type,
  a test-only deny list);
* `sync`      -- the ``/mindnode/sync/1.0.0`` request/response wire format and its bounds;
* `mempool`   -- `Mempool`: bounded, fee-then-nonce ordered, replacement by higher fee only;
* `api`       -- the FastAPI app over a `NodeView`, served by hypercorn on trio (127.0.0.1);
* `metrics`   -- per-node Prometheus registry;
* `rpc_client`-- `RpcClient`, the synchronous httpx client the CLI, tests and benchmarks use;
* `runner`    -- `run_node`: data directory, lock, signals, clean shutdown;
* `devnet`    -- `Devnet`: N node processes on fixed (or given) ports, used by the CLI and tests;
* `faults`    -- TEST-ONLY switches read from ``MINDNODE_TEST_FAULTS``;
* `errors`    -- `NodeError` and its subclasses (one-line CLI errors, HTTP status codes).
"""
