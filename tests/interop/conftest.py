"""Interop fixtures: one lab for the session, brought up and always taken down.

These tests need root and the kernel's MPTCP; if the lab cannot come up they
FAIL with the reason (they never skip in CI). Some lab tests (test_lab.py) take
the lab down themselves, so every test using `lab` first makes sure it is up.
"""
import os
import pytest


@pytest.fixture(scope="session")
def _lab_session():
    from mptcp_lab.api import Lab
    if os.geteuid() != 0:
        pytest.fail("interop tests need root (network namespaces, TUN): run as root")
    lab = Lab(wifi="clean")
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def lab(_lab_session):
    from mptcp_lab import lab as labmod
    if not labmod.is_up():
        try:
            _lab_session.up()
        except Exception as e:  # reported, not hidden
            _lab_session.down()
            pytest.fail("the lab could not come up: %s" % (e,))
    return _lab_session
