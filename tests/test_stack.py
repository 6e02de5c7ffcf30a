"""The exit status of the tools that drive the stack (make bench, make loadtest)."""

from __future__ import annotations

import signal

import pytest

from serving.stack import GatewayError, exit_status


@pytest.fixture(autouse=True)
def keep_sigterm_handler():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_the_run_decides_the_status():
    assert exit_status(lambda: 0) == 0
    assert exit_status(lambda: 1) == 1


def test_interrupt_and_sigterm_are_130(capsys):
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert exit_status(interrupted) == 130
    assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    assert "interrupted" in capsys.readouterr().err


def test_no_gateway_is_one_line_and_status_1(capsys):
    def no_gateway() -> int:
        raise GatewayError("no ready gateway at http://127.0.0.1:9 (and --no-start)")

    assert exit_status(no_gateway) == 1
    assert capsys.readouterr().err == "no ready gateway at http://127.0.0.1:9 (and --no-start)\n"
