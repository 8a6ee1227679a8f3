"""benchmarks/sizing.py: the wall-time model behind docs/scaling.md, and the tables it writes."""

from __future__ import annotations

import doctest

import pytest

from benchmarks import sizing
from benchmarks.sizing import LabCost, estimate


def test_the_examples_in_estimate_hold():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(estimate, "estimate"):
        runner.run(test)
    assert runner.failures == 0 and runner.tries == 3


@pytest.mark.parametrize(
    ("students", "shards", "expected"),
    [
        (0, 1, 60.0),  # nobody to grade: the setup only
        (100, 1, 60.0 + 100 * 2.0),  # one shard: no merge
        (100, 3, 60.0 + 34 * 2.0 + 5.0 + 100 * 0.1),  # the largest share sets the pace
        (100, 100, 60.0 + 2.0 + 5.0 + 10.0),
        (100, 256, 60.0 + 2.0 + 5.0 + 10.0),  # idle shards change nothing
    ],
)
def test_the_largest_share_then_one_merge(students, shards, expected):
    assert estimate(students, shards, 2.0, 60.0, 5.0, 0.1) == pytest.approx(expected)


@pytest.mark.parametrize(("students", "shards"), [(10, 0), (-1, 4)])
def test_impossible_classes_are_refused(students, shards):
    with pytest.raises(ValueError):
        estimate(students, shards, 2.0, 60.0)


def _cost(lab: str, wall: float) -> LabCost:
    return LabCost(
        lab=lab, students=10, workers=2, wall=wall, fixed=2.0, grader_cpu=30.0,
        emulator_cpu=5.0, grader_peak=2**30, emulator_peak=2**29, disk=10 * 4096,
        emulator_disk=0, merge_fixed=2.0, merge_per_sub=0.02, scores=[],
    )  # fmt: skip


def test_the_tables_carry_the_measurements():
    costs = [_cost("storage", 12.0), _cost("messaging", 42.0)]
    assert costs[0].per_sub == 1.0 and costs[1].per_sub == 4.0
    rows = sizing.cost_table(costs)
    assert rows[2].startswith("| storage | 60.0 | 1.00 | 3.00 | 0.50 | 1024 MiB | 512 MiB | 4 KiB")
    table = sizing.sizing_table(costs, setup=100.0)
    assert len(table) == 2 + len(sizing.CLASS_SIZES) * len(sizing.SHARD_COUNTS)
    # 100 students on one shard: 100 + 2 (the release) + 100 x 1 s, and 100 x 4 s
    assert table[2] == "| 100 | 1 | 3.4 min | 8.4 min |"
    # 5,000 on 256 shards: 20 each, then the merge of 5,000 (2 s + 100 s)
    last = 100 + 2 + 20 * 1.0 + 2 + 100
    assert table[-1].startswith(f"| 5,000 | 256 | {last / 60:.1f} min |")


def test_write_replaces_only_the_measured_block(tmp_path):
    doc = tmp_path / "scaling.md"
    doc.write_text(f"intro\n{sizing.BEGIN}\nold\n{sizing.END}\nafter\n")
    sizing.write(doc, ["new 1", "new 2"])
    assert doc.read_text() == f"intro\n{sizing.BEGIN}\nnew 1\nnew 2\n{sizing.END}\nafter\n"
    (tmp_path / "other.md").write_text("no block\n")
    with pytest.raises(SystemExit, match="no <!-- measured: sizing -->"):
        sizing.write(tmp_path / "other.md", ["x"])
