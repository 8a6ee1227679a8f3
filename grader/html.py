"""Every HTML page and fragment cloudlabs writes comes from a Jinja2 template in
``grader/templates`` with autoescaping on: no text of a submission reaches a page unescaped.
Templates clean texts with the ``clean`` filter (:func:`grader.text.clean`: capped, with no
character HTML cannot carry)."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from markupsafe import Markup

from grader.results import MESSAGE_LIMIT
from grader.text import clean


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("grader", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["clean"] = lambda value, limit=MESSAGE_LIMIT: clean(value, limit)
    return env


def render(name: str, /, **context: Any) -> str:
    """The template ``name`` (in grader/templates) rendered with ``context`` (which may itself
    hold a ``name``). Pass a fragment rendered earlier through :func:`trusted`, or it is escaped."""
    return environment().get_template(name).render(**context)


def trusted(markup: str) -> Markup:
    """HTML the grader made itself (the lab's markdown, a fragment rendered from a template):
    inserted as is."""
    return Markup(markup)
