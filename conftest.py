"""pytest configuration shared by tests/ and notebooks/: the notebooks (nbval) and the browser tests
are `slow`, so that `pytest -m "not slow"` runs the fast core of the unit tests."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb" or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
