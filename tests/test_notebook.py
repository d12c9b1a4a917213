"""Tests of modekit.notebook."""

import pytest

import modekit as mk


def test_notebook_setup_checks_the_profile_and_derives_fast(tmp_path):
    from modekit.notebook import setup

    assert setup(None, str(tmp_path / "out"), "cpu", "laptop") == (False, str(tmp_path / "out"), "cpu", "laptop")
    assert setup(True, None, "cpu")[3] == "fast" and (tmp_path / "out").is_dir()
    with pytest.raises(mk.UserError, match="PROFILE='huge' is not allowed"):
        setup(None, None, "cpu", "huge")
