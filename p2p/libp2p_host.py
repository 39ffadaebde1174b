"""Construction of a bare py-libp2p host with the security choices mindnode insists on.

Why a dedicated constructor: py-libp2p 0.8.1's defaults are unsafe or slow for us --
  * the default ``sec_opt`` also offers ``/plaintext/2.0.0``; a plaintext dialer gets an
    unencrypted connection (trap 1).  We pass Noise alone, so anything else fails negotiation;
  * the default muxer set includes mplex (4-6x slower than yamux here): yamux only;
  * ``host.connect`` waits a fixed 250 ms "happy eyeballs" head start before it returns when
    ``max_connections_per_peer`` > 1 (the cancel that ends the wait fires only once the per-peer
    connection count is reached).  One connection per peer is all we use, so setting
    ``max_connections_per_peer=1`` makes connect return as soon as the handshake is done
    (~5-15 ms instead of ~251 ms) without monkey-patching the swarm;
  * the swarm's auto-connector would dial peerstore peers on its own (see ``build_host``).
"""

from __future__ import annotations

import os

import multiaddr
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from p2p.errors import ConfigError
from p2p.identity import key_pair_from_seed

# py-libp2p's yamux sends a WINDOW_UPDATE after *every* read by default ("release on read"): one
# extra Noise-encrypted frame per ~12 KiB moved, a third of a bulk stream's CPU.  Its own tuning
# knob turns that into go-yamux's batching (an update once half the window is consumed):
# measured 140 -> 175-185 MB/s of CPU per 100 MB stream here.  setdefault: an operator's own
# PY_YAMUX_* setting wins.
os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")


def parse_multiaddr(addr: str) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(addr)
    except Exception as exc:
        raise ConfigError(f"not a valid multiaddr: {addr!r} ({exc})") from exc


def build_host(seed: bytes, *, max_peers: int = 50, enable_mdns: bool = False) -> IHost:
    """A libp2p host for ``seed``: TCP, Noise only, yamux only, one connection per peer."""
    kp = key_pair_from_seed(seed)
    noise = NoiseTransport(kp, noise_privkey=x25519_key_pair().private_key)
    cfg = ConnectionConfig(
        max_connections=max(2, max_peers + 2),
        min_connections=0,
        low_watermark=max_peers + 2,  # the pruner trims only above max_peers (+2 for transients)
        high_watermark=max_peers + 2,
        max_connections_per_peer=1,
        dial_timeout=5.0,
        inbound_upgrade_timeout=5.0,
        outbound_upgrade_timeout=5.0,
        outbound_stream_protocol_negotiation_timeout=5.0,
        inbound_stream_protocol_negotiation_timeout=5.0,
    )
    host = new_host(
        key_pair=kp,
        sec_opt={TProtocol(NOISE_ID): noise},
        muxer_opt={TProtocol(YAMUX_ID): Yamux},
        connection_config=cfg,
        enable_mDNS=enable_mdns,
    )
    _cache_addrs(host)
    # The swarm's AutoConnector dials every peer in the peerstore up to the watermark midpoint,
    # banned peers included.  Discovery is the node's job (bootnodes + DHT, honouring bans and
    # max_peers), so this instance's auto-connector is turned into a no-op.
    auto = getattr(host.get_network(), "auto_connector", None)
    if auto is not None:
        async def _no_auto_connect(*_args, **_kwargs) -> None:
            return None

        auto.maybe_connect = _no_auto_connect
    return host


def _cache_addrs(host: IHost, ttl: float = 1.0) -> None:
    """Memoise ``host.get_addrs()`` for ``ttl`` seconds on this host.

    Every outgoing pubsub RPC attaches our signed peer record, and to decide whether the cached
    record is still current py-libp2p rebuilds the address list (multiaddr parsing) each time:
    ~12% of a gossip burst's CPU.  Addresses change rarely (listen, identify observations); a
    one-second-old list is fine.  Empty lists (not listening yet) are never cached.
    """
    import time

    original = host.get_addrs
    state: dict = {"at": -1e9, "addrs": []}

    def get_addrs():
        now = time.monotonic()
        if now - state["at"] < ttl:
            return list(state["addrs"])
        addrs = original()
        if addrs:
            state["at"], state["addrs"] = now, list(addrs)
        return addrs

    host.get_addrs = get_addrs  # type: ignore[method-assign]
