"""The example regional web app, runnable from a checkout: ``python examples/webapp/app.py``.

The program lives in ``multiregion.demo.webapp`` so that an installed multiregion (which has
no ``examples/``) can run it too; see README.md next to this file.
"""

import sys
from pathlib import Path

try:
    from multiregion.demo.webapp import main
except ModuleNotFoundError:  # a checkout without multiregion installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from multiregion.demo.webapp import main

if __name__ == "__main__":
    raise SystemExit(main())
