"""Fixtures for the dashboard tests; the fake engine and helpers live in tests/tui/fakes.py."""

from __future__ import annotations

import pytest

from tests.tui.fakes import FakeFacade


@pytest.fixture
def facade() -> FakeFacade:
    return FakeFacade()
