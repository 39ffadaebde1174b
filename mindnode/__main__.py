"""``python -m mindnode`` runs the CLI (same as the ``mindnode`` console script)."""

from mindnode.cli import main

if __name__ == "__main__":
    main()
