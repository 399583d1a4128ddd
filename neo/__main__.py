"""``python -m neo``: the same entry point as the ``neo`` console script."""

from neo.cli import main

if __name__ == "__main__":
    main()
