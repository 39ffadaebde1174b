"""Child process for test_crash.py: import pre-built blocks into a store until done (or killed).

Usage: python crash_importer.py DB_PATH BLOCKS_FILE. Prints each imported height, flushed, so the
parent can see progress. Not a test module (no test_ prefix).
"""
import sys
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.store import Store  # noqa: E402


def main() -> None:
    db_path, blocks_file = sys.argv[1], sys.argv[2]
    blocks = msgpack.unpackb(Path(blocks_file).read_bytes())
    store = Store.open(db_path)          # fsync on every block's write batch
    for i, data in enumerate(blocks, start=1):
        if i <= store.height:
            continue
        store.import_block(data)
        print(store.height, flush=True)
    print("done", flush=True)
    store.close()


if __name__ == "__main__":
    main()
