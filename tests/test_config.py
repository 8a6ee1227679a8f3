"""Settings: defaults, CLOUDLABS_* environment overrides, keyword overrides, clear errors."""

from __future__ import annotations

import pytest

from grader.config import EmulatorConfig, GradeConfig, describe, load
from grader.errors import ConfigError


def test_defaults():
    config = load(EmulatorConfig, "emulator")
    assert config.port == 4566 and config.url == "http://127.0.0.1:4566"


def test_environment_overrides_are_typed(monkeypatch):
    monkeypatch.setenv("CLOUDLABS_EMULATOR_PORT", "4700")
    monkeypatch.setenv("CLOUDLABS_GRADE_CELL_TIMEOUT", "12.5")
    assert load(EmulatorConfig, "emulator").port == 4700
    assert load(GradeConfig, "grade").cell_timeout == 12.5


def test_keyword_overrides_win_and_none_falls_through(monkeypatch):
    monkeypatch.setenv("CLOUDLABS_EMULATOR_PORT", "4700")
    assert load(EmulatorConfig, "emulator", port=4800).port == 4800
    assert load(EmulatorConfig, "emulator", port=None).port == 4700


def test_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("CLOUDLABS_GRADE_WORKERS", "many")
    with pytest.raises(ConfigError, match="CLOUDLABS_GRADE_WORKERS='many'"):
        load(GradeConfig, "grade")


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="unknown grade settings: colour"):
        load(GradeConfig, "grade", colour="red")


def test_every_field_is_documented():
    for cls in (EmulatorConfig, GradeConfig):
        assert all(doc for _, _, doc in describe(cls))
