"""Test without the real service: ``FakeTTAPI`` emulates TTAPI's whole image API locally.

::

    from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

    clock = ManualClock()
    async with FakeTTAPI(clock=clock, job_duration=Duration.fixed(30)) as fake:
        ...                      # point any client at fake.url with fake.api_key
        clock.advance(30)        # every job submitted so far has now ended

The pytest plugin (installed with the package) provides a ``fake_ttapi`` fixture;
``python -m ttapi_async.testing --port 8000`` runs the fake as a process.
"""

from ._clock import Clock, ManualClock
from ._config import Duration, FaultKind, FaultRule
from ._fake import FakeTTAPI
from ._hooks import HookDelivery, is_loopback_url
from ._images import ImageInfo, sniff_image
from ._records import FakeStats, JobView, RequestRecord

__all__ = [
    "Clock",
    "Duration",
    "FakeStats",
    "FakeTTAPI",
    "FaultKind",
    "FaultRule",
    "HookDelivery",
    "ImageInfo",
    "JobView",
    "ManualClock",
    "RequestRecord",
    "is_loopback_url",
    "sniff_image",
]
