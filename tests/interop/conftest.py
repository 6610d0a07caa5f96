"""Interop fixtures: one lab for the session, brought up and always taken down.

These tests need root and the kernel's MPTCP; if the lab cannot come up they
FAIL with the reason (they never skip in CI).
"""
import os
import pytest


@pytest.fixture(scope="session")
def lab():
    from mptcp_lab.api import Lab
    if os.geteuid() != 0:
        pytest.fail("interop tests need root (network namespaces, TUN): run as root")
    lab = Lab(wifi="clean")
    try:
        lab.up()
    except Exception as e:  # pragma: no cover - reported, not hidden
        lab.down()
        pytest.fail("the lab could not come up: %s" % (e,))
    try:
        yield lab
    finally:
        lab.down()
