"""A stable share of a class: ``--shard K/N`` grades the students whose id hashes to K.

The share depends only on the student id and N, so every machine and every rerun agrees on who
is in which shard, whatever order the submissions were found in. A shard's workspace records
which students it owns (``shard.json``), so that ``cloudlabs merge`` can tell a shard that was
lost, or killed before it graded everyone, from one that is complete."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from grader.errors import ConfigError
from grader.results import write_atomically

MANIFEST = "shard.json"


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ConfigError(
                f"shard {self.index}/{self.count} does not exist",
                fix="give --shard K/N with 1 <= K <= N (K counts from 1)",
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ConfigError(
                f"--shard {text!r} is not K/N", fix="give --shard K/N, for example --shard 2/8"
            )
        return cls(int(match[1]), int(match[2]))

    def owns(self, student: str) -> bool:
        return shard_of(student, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(student: str, count: int) -> int:
    """The shard (1-based) of ``student`` among ``count``: SHA-256 of the id, not Python's
    ``hash`` (which changes with every process)."""
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What a shard's workspace holds: which lab version, which shard, which students."""

    lab: str
    lab_digest: str
    shard: int
    shards: int
    students: tuple[str, ...]
    late: str = "no due date"  #: the late policy it was graded with (grader.late.Policy.describe)
    due: str = ""  #: its due time, ISO 8601 ("" for none)

    def write(self, root: Path) -> None:
        data = dataclasses.asdict(self) | {"students": list(self.students)}
        write_atomically(root / MANIFEST, json.dumps(data, indent=2))

    @classmethod
    def read(cls, root: Path) -> Manifest:
        path = root / MANIFEST
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                lab=str(data["lab"]), lab_digest=str(data["lab_digest"]),
                shard=int(data["shard"]), shards=int(data["shards"]),
                students=tuple(str(s) for s in data["students"]),
                late=str(data.get("late", "no due date")), due=str(data.get("due", "")),
            )  # fmt: skip
        except FileNotFoundError:
            raise ConfigError(
                f"{root} is not a shard workspace (it has no {MANIFEST})",
                fix="give the --out folders of `cloudlabs grade ... --shard K/N` runs",
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path} cannot be read: {exc}",
                fix="grade that shard again with `cloudlabs grade ... --shard K/N`",
            ) from None
