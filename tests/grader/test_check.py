"""`cloudlabs check`: a student grades their own copy against the running emulator."""

from __future__ import annotations

from grader import check
from tests.grader.conftest import FILES
from tests.grader.test_grade import answered


def self_check(path, emulator):
    return check.main(target=str(path), source_dir=FILES, release_dir=FILES / "release",
                      emulator_config=emulator.config)  # fmt: skip


def test_solution_passes_visible_tests_and_state_checks(
    tmp_path, minilab_release, emulator, minilab
):
    from tests import factories as f

    path = tmp_path / "minilab.ipynb"
    f.write(answered(minilab_release), path)
    result = self_check(path, emulator)
    # ex1_test_versioning holds only hidden tests: the instructor grades it, not the self-check.
    assert result.score == result.max_score == 8
    assert any("only hidden tests" in n for n in result.notes)
    text = check.report(result, minilab)
    assert text.rstrip().endswith("Total: 8 / 8")


def test_report_shows_hints_for_what_failed(tmp_path, minilab_release, emulator, minilab):
    from tests import factories as f

    path = tmp_path / "minilab.ipynb"
    f.write(answered(minilab_release, ex2_solution='queue_name = "x"\nqueue_url = "nope"\n'), path)
    result = self_check(path, emulator)
    text = check.report(result, minilab)
    assert "hint: create_queue returns the URL" in text
    assert "Exercise 2" in text


def test_check_needs_a_running_emulator(tmp_path, minilab_release):
    import pytest

    from grader.config import EmulatorConfig, load
    from grader.errors import EmulatorError
    from tests import factories as f
    from tests.conftest import free_port

    path = tmp_path / "minilab.ipynb"
    f.write(minilab_release, path)
    config = load(EmulatorConfig, "emulator", home=tmp_path / "none", port=free_port())
    with pytest.raises(EmulatorError, match="not running") as info:
        check.main(target=str(path), source_dir=FILES, emulator_config=config)
    assert "cloudlabs up" in info.value.fix
