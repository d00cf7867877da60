"""The ``multiregion demo``: a two-region failover of an example web app, measured end to end.

``run_demo(DemoConfig(...), view)`` runs it and returns a ``DemoReport``; the regional web app
it launches is ``multiregion.demo.webapp`` (also ``examples/webapp/app.py``).
"""

from multiregion.demo.orchestrator import DemoConfig, run_demo
from multiregion.demo.report import DemoReport

__all__ = ["DemoConfig", "DemoReport", "run_demo"]
