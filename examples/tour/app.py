"""All the tour's services. `durio serve examples/tour/app.py` (what `make run` does) serves them embedded."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from communication import concert_ticketing_service, email_service, payment_service  # noqa: E402
from concurrent_tasks import parallel_subscription_service  # noqa: E402
from events import payments  # noqa: E402
from getting_started import subscription_service  # noqa: E402
from objects import user_subscriptions  # noqa: E402
from sagas import subscription_saga  # noqa: E402
from timers import payments_with_timeout  # noqa: E402
from workflows import signup_workflow  # noqa: E402

services = [
    subscription_service,
    subscription_saga,
    user_subscriptions,
    concert_ticketing_service,
    payment_service,
    email_service,
    payments,
    payments_with_timeout,
    parallel_subscription_service,
    signup_workflow,
]


if __name__ == "__main__":
    # The seed's way: serve the tour as a deployment on :9080, then
    #   durio server  (or restate-server)  and  durio deployments register http://localhost:9080
    import functools

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    import durio

    config = Config()
    config.bind = [os.environ.get("TOUR_BIND", "127.0.0.1:9080")]
    config.accesslog = None
    print(f"the tour's services, as a deployment on http://{config.bind[0]}", flush=True)
    trio.run(functools.partial(serve, durio.app(services), config))
