"""botocore's service models, read once per process.

botocore caches what it loads per loader, and every boto3 session makes a loader of its own, so
each new session parses the same JSON again (for S3 alone about 2 MB). A grading run makes a
session per submission in the trusted test process and one in every kernel (the lab's setup
cell). :func:`share_loader` gives every botocore session of the process one loader, whose cache
then serves them all (the data is read, never changed, as one loader's callers already share it).
:func:`warm` loads a lab's services ahead of need: the kernel fork server (:mod:`grader.forkserver`)
does it once, before it forks any kernel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import botocore.loaders
import botocore.session


def share_loader() -> None:
    """Every botocore session made from now on in this process uses one loader (once)."""
    session = botocore.session.Session
    if getattr(session.__init__, "cloudlabs_shared", False):
        return
    loader = botocore.loaders.create_loader()
    original = session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register_component("data_loader", loader)

    init.cloudlabs_shared = True  # type: ignore[attr-defined]
    session.__init__ = init  # type: ignore[method-assign]


def warm(services: Iterable[str], region: str = "us-east-1") -> None:
    """Load what a client of each service needs (unknown names are skipped)."""
    share_loader()
    session = botocore.session.Session()
    for name in services:
        with contextlib.suppress(Exception):
            session.create_client(name, region_name=region, aws_access_key_id="warm",
                                  aws_secret_access_key="warm")  # fmt: skip
