"""ledger: the chain as a deterministic state machine plus its LevelDB store.

No network, no torch, no trio, no wall clock: the only time is a block's timestamp.

Where things are (and the calls other rooms use):

* `ledger.codec`: the strict canonical msgpack codec (`@record class X(Record)`).
* `ledger.keys`, `ledger.sigs`: Ed25519 keys/addresses/peer ids; the one consensus verifier
  (libsodium) with parallel batch verification.
* `ledger.tx`: `Transaction`, `sign_tx(key, chain_id, nonce, fee, body)`, `check_stateless`.
* `ledger.registry` + `ledger.txkinds/`: transaction kinds, one module each (`@tx_kind`), and
  begin/end-block hooks (`@block_hook`).
* `ledger.state`: state records and `State` (journaled, typed access; `validator_set`, `audit`).
* `ledger.execution`: `BlockContext`, `apply_tx`, `execute_block`.
* `ledger.trie`: the state root (compact sparse Merkle tree), `verify_proof`.
* `ledger.block`: `Header`, `Block`, header/body validation.
* `ledger.store`: `Store.create/open`, `import_block`, `build_block`, `rewind_head`, queries.
* `ledger.genesis`, `ledger.genesis_file`, `ledger.vesting`: the genesis contract, its JSON file, vesting.
"""
