"""The hub side of nbgrader's exchange: a release students can read, and a collector that trusts
the hub's inbound folders and clock, never what a student wrote."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import ROOT, collect, exchange, late
from grader.cli import cli
from grader.hub import HubConfig

LAB = "storage"


@pytest.fixture
def hub(tmp_path) -> HubConfig:
    return HubConfig(data=tmp_path / "data", course_id="aws101")


def submit(config: HubConfig, user: str, name: str, files: dict[str, str]) -> Path:
    """What nbgrader's submit leaves in ``user``'s inbound folder (the student writes all of it)."""
    folder = exchange.inbound_root(config) / user / name
    folder.mkdir(parents=True)
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def later_than(newer: Path, older: Path) -> None:
    """Make ``newer``'s change time later than ``older``'s (a coarse clock may tie them)."""
    while newer.stat().st_ctime_ns <= older.stat().st_ctime_ns:
        os.utime(newer)


def notebook(text: str = "first") -> dict[str, str]:
    return {f"{LAB}.ipynb": text, "timestamp.txt": "2020-01-01 00:00:00.000000 UTC",
            "submission_secret.txt": "s"}  # fmt: skip


def test_release_publishes_the_student_release_readable_and_replaces_it(hub):
    (path,) = exchange.release(labs=[LAB], config=hub)
    assert path == hub.data.resolve() / "exchange" / "aws101" / "outbound" / LAB
    assert (path / f"{LAB}.ipynb").read_bytes() == (
        ROOT / "labs" / LAB / f"{LAB}.ipynb"
    ).read_bytes()
    assert oct((path / f"{LAB}.ipynb").stat().st_mode & 0o777) == "0o644"
    (path / "stale.txt").write_text("from an earlier release")
    exchange.release(labs=[LAB], config=hub)
    assert not (path / "stale.txt").exists()
    assert [p.name for p in path.parent.iterdir()] == [LAB]


def test_collect_keeps_each_student_s_newest_submission_timed_by_the_hub(hub, tmp_path):
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    old = submit(hub, "alice", f"alice+{LAB}+2026-12-01 10:00:00.000000 UTC+r1", notebook("old"))
    new = submit(hub, "alice", f"alice+{LAB}+2020-01-01 10:00:00.000000 UTC+r2", notebook("new"))
    later_than(new, old)
    submit(hub, "alice", "alice+compute+2026-12-01 10:00:00.000000 UTC+r3", {"compute.ipynb": "x"})
    submit(hub, "bob", f"bob+{LAB}+2026-12-01 10:00:00.000000 UTC", notebook("bob's"))
    result = exchange.collect(lab=LAB, out=tmp_path / "submitted", config=hub)

    assert [(c.student, c.submissions) for c in result.collected] == [("alice", 2), ("bob", 1)]
    assert result.refused == []
    alice = tmp_path / "submitted" / "alice" / LAB
    assert (alice / f"{LAB}.ipynb").read_text() == "new"  # the newest by ctime, not by its name
    assert sorted(p.name for p in alice.iterdir()) == [f"{LAB}.ipynb", "timestamp.txt"]
    when = late.read_timestamp(alice)  # ours, not the student's 2020
    assert abs(when - result.collected[0].submitted_at) < dt.timedelta(milliseconds=1)
    assert before <= when <= dt.datetime.now(dt.UTC)
    found = collect.collect(tmp_path / "submitted", lab=LAB)  # what `cloudlabs grade` reads
    assert [(s.student, s.problem) for s in found] == [("alice", ""), ("bob", "")]
    assert found[0].submitted_at == when


def test_nobody_submits_for_another_and_links_or_odd_folders_are_refused(hub, tmp_path):
    submit(hub, "mallory", f"alice+{LAB}+2026-12-01 10:00:00.000000 UTC+r", notebook("forged"))
    linked = submit(hub, "eve", f"eve+{LAB}+2026-12-01 10:00:00.000000 UTC+r", notebook())
    (linked / "answers.txt").symlink_to(hub.data / "class-secret")
    (exchange.inbound_root(hub) / "eve" / f"eve+{LAB}+t+r+extra").mkdir()
    (exchange.inbound_root(hub) / "Not A User").mkdir(parents=True)
    os.symlink(exchange.inbound_root(hub) / "eve", exchange.inbound_root(hub) / "trudy")
    result = exchange.collect(lab=LAB, out=tmp_path / "submitted", config=hub)

    assert result.collected == []
    reasons = {(r.student, r.name.split("+")[0]): r.reason for r in result.refused}
    assert "nobody submits for another" in reasons["mallory", "alice"]
    assert "link or special file" in reasons["eve", "eve"]
    assert "not a student's inbound folder" in reasons["Not A User", "Not A User"]
    assert "not a student's inbound folder" in reasons["trudy", "trudy"]
    assert any("not named" in r.reason for r in result.refused)
    assert not (tmp_path / "submitted" / "alice").exists()


def test_a_second_collect_replaces_the_first(hub, tmp_path):
    first = submit(hub, "alice", f"alice+{LAB}+t1+r1", notebook("first"))
    exchange.collect(lab=LAB, out=tmp_path / "out", config=hub)
    later_than(submit(hub, "alice", f"alice+{LAB}+t2+r2", {f"{LAB}.ipynb": "second"}), first)
    exchange.collect(lab=LAB, out=tmp_path / "out", config=hub)
    assert (tmp_path / "out" / "alice" / LAB / f"{LAB}.ipynb").read_text() == "second"
    assert sorted(p.name for p in (tmp_path / "out" / "alice").iterdir()) == [LAB]


def test_the_cli_releases_and_collects(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDLABS_HUB_DATA", str(hub.data))
    monkeypatch.setenv("CLOUDLABS_HUB_COURSE_ID", hub.course_id)
    runner = CliRunner()
    released = runner.invoke(cli, ["hub", "release", LAB])
    assert released.exit_code == 0 and f"released {exchange.outbound(hub) / LAB}" in released.output
    submit(hub, "alice", f"alice+{LAB}+t+r", notebook())
    collected = runner.invoke(cli, ["hub", "collect", LAB, "--out", str(tmp_path / "s")])
    assert collected.exit_code == 0, collected.output
    assert "1 collected, 0 refused" in collected.output
    assert runner.invoke(cli, ["hub", "release", "no-such-lab"]).exit_code != 0
