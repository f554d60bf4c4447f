"""``python -m ttapi_async.cli``: the same as the ``ttapi`` console script."""

from . import main

if __name__ == "__main__":
    main()
