"""All the tour's services. `durio serve examples/tour/app.py` (what `make run` does) serves them embedded."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from getting_started import subscription_service  # noqa: E402
from objects import user_subscriptions  # noqa: E402
from sagas import subscription_saga  # noqa: E402
from workflows import signup_workflow  # noqa: E402

services = [subscription_service, subscription_saga, user_subscriptions, signup_workflow]
