"""Run the fake as a process: ``python -m ttapi_async.testing --port 8000``."""

from ._server_main import main

raise SystemExit(main())
