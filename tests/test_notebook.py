"""Tests of modekit.notebook."""

import pytest

import modekit as mk


def test_notebook_setup_checks_the_profile_and_derives_fast(tmp_path):
    from modekit.notebook import setup

    assert setup(None, str(tmp_path / "out"), "cpu", "laptop") == (False, str(tmp_path / "out"), "cpu", "laptop")
    assert setup(True, None, "cpu")[3] == "fast" and (tmp_path / "out").is_dir()
    with pytest.raises(mk.UserError, match="PROFILE='huge' is not allowed"):
        setup(None, None, "cpu", "huge")


def test_first_seed_comes_from_papermill_else_the_environment_and_refuses_what_is_not_a_seed(monkeypatch):
    from modekit.notebook import first_seed

    monkeypatch.delenv("MODEKIT_FIRST_SEED", raising=False)
    assert first_seed(None) == 0 and first_seed(10) == 10
    monkeypatch.setenv("MODEKIT_FIRST_SEED", "20")
    assert first_seed(None) == 20 and first_seed(3) == 3  # papermill's value first
    for value, message in ((-1, "FIRST_SEED=-1"), (True, "FIRST_SEED=True"), (2.5, "FIRST_SEED=2.5"), (2**40, "FIRST_SEED=1099")):
        with pytest.raises(mk.UserError, match=f"{message}.* is not allowed: FIRST_SEED must be a whole number from 0 to"):
            first_seed(value)
    monkeypatch.setenv("MODEKIT_FIRST_SEED", "ten")
    with pytest.raises(mk.UserError, match="MODEKIT_FIRST_SEED='ten' is not allowed"):
        first_seed(None)
