"""The tour's services as `app = durio.app(services)`, the layout ASGI servers' command lines name (module:app).

`hypercorn tests.apps.tour_asgi:app` (asyncio worker), `--worker-class uvloop|trio`, `uvicorn tests.apps.tour_asgi:app`.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import durio

TOUR = pathlib.Path(__file__).resolve().parents[2] / "examples" / "tour"

sys.path.insert(0, str(TOUR))  # the tour's modules import their neighbours
_spec = importlib.util.spec_from_file_location("tour_app", TOUR / "app.py")
assert _spec is not None and _spec.loader is not None
tour = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tour)

app = durio.app(tour.services)
