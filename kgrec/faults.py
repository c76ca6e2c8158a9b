"""Fault injection for the crash tests: stop or kill the running command at a named step.

``KGREC_FAULT_AT`` names one step (or several, comma-separated) and ``KGREC_FAULT_SIGNAL``
says what happens there: ``KILL`` (default, ``kill -9`` of this very process) or ``STOP``
(the process freezes, holding its locks, until the test sends ``SIGCONT`` or ``SIGKILL``).
Without ``KGREC_FAULT_AT`` a fault point costs one dictionary lookup.

Steps of ``build-graph`` (:mod:`kgrec.build`): ``locked``, ``artifacts-written``,
``store-batch`` (after the first batch written to the staging graph), ``store-loaded``,
``journal-written``, ``db-swapped``, ``artifacts-half-swapped`` (between the two renames of
the artifact swap), ``swapped``. Of ``train`` (:mod:`kgrec.cli.learn`): ``trained`` (after
training, before the model is promoted). Of ``users forget`` (:mod:`kgrec.lifecycle.forget`):
``forget-prepared`` (scrubbed files staged, nothing changed yet), ``forget-graph`` (forget
list written and the graph database changed, artifact files not yet replaced).
"""

from __future__ import annotations

import os
import signal

ENV_STEP = "KGREC_FAULT_AT"
ENV_SIGNAL = "KGREC_FAULT_SIGNAL"


_FIRED: set[str] = set()


def fault_point(step: str) -> None:
    """Kill (or stop) this process when ``KGREC_FAULT_AT`` names ``step``, the first time
    the step is reached (a step inside a loop, such as ``store-batch``, fires once)."""
    wanted = os.environ.get(ENV_STEP)
    if not wanted or step not in wanted.split(",") or step in _FIRED:
        return
    _FIRED.add(step)
    name = os.environ.get(ENV_SIGNAL, "KILL").upper()
    os.kill(os.getpid(), signal.SIGSTOP if name == "STOP" else signal.SIGKILL)
