"""The in-flight counter on its own: slots taken, refused and given back."""

from __future__ import annotations

import pytest

from gateway.admission import Admission, GatewayBusy


def test_slots_are_refused_past_the_limit_and_given_back():
    admission = Admission(2)
    with admission.slot(), admission.slot():
        assert admission.active == 2
        with pytest.raises(GatewayBusy, match="2 images already"), admission.slot():
            pass
        assert admission.active == 2
    assert admission.active == 0


def test_a_failing_upload_gives_its_slot_back():
    admission = Admission(1)
    with pytest.raises(RuntimeError), admission.slot():
        raise RuntimeError("the model failed")
    with admission.slot():
        assert admission.active == 1


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        Admission(0)
