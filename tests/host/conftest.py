"""Host tests: no test may leave a thread running. A leaked thread is a resource leak
(rule 9), and it makes a later fork (multiprocessing, subprocess in a library) unsafe:
a forked child can inherit a lock that thread held and hang."""
import threading
import time

import pytest


@pytest.fixture(autouse=True)
def no_thread_left():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0       # a hang guard for threads that are ending
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    while left and time.monotonic() < deadline:
        left[0].join(deadline - time.monotonic())
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, "threads left running by this test: %s" % [t.name for t in left]
