"""Hypothesis profiles: the same examples on every run by default (CI), random on request.

``pytest --hypothesis-profile=explore`` draws new examples, to look for failures; add any
it finds as an ``@example`` of the test. ``tmpdir`` is the TMPDIR of ``feel simulate`` runs.
"""

import contextlib
import os
import shutil
import signal
import tempfile

import pytest
from hypothesis import settings
from support.processes import processes_mentioning

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


@pytest.fixture
def tmpdir():
    """A short TMPDIR (Ray's socket paths must stay under 107 bytes) marking the test's
    processes; what a failed test leaves running is killed, not left to the next test.

    Replaces pytest's own ``tmpdir`` (a ``py.path``), which no test uses."""
    path = tempfile.mkdtemp(prefix="fr", dir="/tmp")
    yield path
    for pid in processes_mentioning(path):  # what a failed test left behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)
