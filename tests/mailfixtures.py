"""Fixtures for mail tests (loaded with ``pytest_plugins``): a real dovecot and an aiosmtpd server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.dovecot import Dovecot, run_dovecot
from tests.servers.smtp import SmtpServer, run_smtp


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with run_dovecot() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with run_smtp() as server:
        yield server
