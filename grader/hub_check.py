"""The self-check on the class hub: a hub-managed service that grades a student's saved lab with
the visible tests and the state checks, as ``cloudlabs check`` does on one machine.

A student's server cannot run the self-check itself: that needs the lab's sources (its state
checks), which its sandbox never shows. So the check cell of a lab (:func:`grader.check.show`)
sends the saved notebook, as plain data, to this service (``CLOUDLABS_CHECK_URL``, on loopback),
with the server's own hub token. The service asks the hub whose token it is, grades the notebook
in a fresh account of the class's emulator, its kernel behind bubblewrap, and answers with the
table. Nothing is recorded; a student has one check running at a time, and the class at most
:data:`AT_ONCE`.

Run by the hub (grader/hub.py): ``python -m grader.hub_check``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import tempfile
import threading
from pathlib import Path

from grader.config import EmulatorConfig, GradeConfig, load
from grader.errors import CloudlabsError
from grader.hub import HubConfig

AT_ONCE = 2  #: self-checks graded at once for the whole class
MAX_BYTES = 16 * 2**20  #: the largest notebook accepted
LAB = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")


def check_notebook(lab: str, notebook: bytes, *, config: HubConfig) -> dict[str, str]:
    """Grade ``notebook`` (a saved lab, as bytes) with the visible tests and state checks."""
    from grader import check
    from grader.labs import find

    with tempfile.TemporaryDirectory(prefix="cloudlabs-hub-check-") as tmp:
        path = Path(tmp) / f"{lab}.ipynb"
        path.write_bytes(notebook)
        emulator = load(EmulatorConfig, "emulator", backend="external", home=config.data / "check",
                        endpoint_url=config.emulator_url
                        or f"http://127.0.0.1:{config.emulator_port}")  # fmt: skip
        grading = load(GradeConfig, "grade", sandbox="bwrap", workers=1)
        result = check.main(target=str(path), emulator_config=emulator, grade_config=grading)
        the_lab = find(result.lab)
        shown = check.Shown(result, the_lab)
        return {"lab": result.lab, "text": repr(shown), "html": shown._repr_html_(),
                "score": f"{result.score:g}/{result.max_score:g}"}  # fmt: skip


def make_app(config: HubConfig):
    """The tornado application: ``POST /check/<lab>`` with the notebook as the body."""
    import tornado.web
    from jupyterhub.services.auth import HubAuth

    auth = HubAuth()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=AT_ONCE)
    busy: set[str] = set()
    lock = threading.Lock()

    class Check(tornado.web.RequestHandler):
        async def post(self, lab: str) -> None:
            token = self.request.headers.get("Authorization", "").removeprefix("token ").strip()
            user = await auth.user_for_token(token, sync=False) if token else None
            if not user or not user.get("name"):
                return self._answer(403, error="not a user of this hub: send your server's token")
            if not LAB.match(lab):
                return self._answer(404, error=f"no lab called {lab!r}")
            if len(self.request.body) > MAX_BYTES:
                return self._answer(413, error="the notebook is over 16 MiB: clear its outputs")
            name = user["name"]
            with lock:
                if name in busy:
                    return self._answer(429, error="your previous check is still running")
                busy.add(name)
            try:
                loop = asyncio.get_running_loop()
                found = await loop.run_in_executor(
                    pool, lambda: check_notebook(lab, self.request.body, config=config)
                )
                self._answer(200, **found)
            except CloudlabsError as error:
                self._answer(400, error=str(error))
            finally:
                with lock:
                    busy.discard(name)

        def _answer(self, status: int, **body: str) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

    return tornado.web.Application([(r"/check/([^/]+)", Check)])


def serve(config: HubConfig | None = None) -> None:
    """Serve on loopback until the hub stops the service (SIGTERM)."""
    import tornado.ioloop

    config = config or load(HubConfig, "hub")
    make_app(config).listen(config.check_port, address=config.check_ip)
    print(
        f"cloudlabs self-check for the class at {config.check_ip}:{config.check_port}", flush=True
    )
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    serve()
