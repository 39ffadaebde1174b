"""Prometheus metrics of one node, in its own registry.

Why a registry per node instead of prometheus-client's global one: tests and benchmarks run several
nodes in one process, and the global registry refuses a second metric of the same name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeMetrics:
    """The gauges/counters the issue asks for, updated by the node service as things happen."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.height = Gauge("mindnode_chain_height", "Height of the local head block", registry=r)
        self.finalized_height = Gauge("mindnode_finalized_height", "Height of the latest finalized block", registry=r)
        self.peers = Gauge("mindnode_peers", "Connected libp2p peers", registry=r)
        self.mempool_size = Gauge("mindnode_mempool_size", "Transactions waiting in the mempool", registry=r)
        self.blocks_sealed = Counter("mindnode_blocks_sealed", "Blocks sealed by this node", registry=r)
        self.blocks_imported = Counter("mindnode_blocks_imported", "Blocks imported from peers", registry=r)
        self.blocks_rejected = Counter("mindnode_blocks_rejected", "Blocks from peers that failed verification",
                                       registry=r)
        self.txs_rejected = Counter("mindnode_txs_rejected", "Transactions refused by the mempool", registry=r)
        self.import_seconds = Histogram(
            "mindnode_block_import_seconds", "Time to verify and apply one block",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.propagation_seconds = Histogram(
            "mindnode_block_propagation_seconds",
            "Wall time from a block's header timestamp (its seal) to its import here",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
