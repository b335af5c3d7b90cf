"""`python -m reclift_local run|invoke|status|redrive` (see cli.py)."""

from .cli import main

if __name__ == "__main__":
    main()
