import sys

from .cli import main

if __name__ == "__main__":  # Dask spawns workers that re-import this module
    sys.exit(main())
