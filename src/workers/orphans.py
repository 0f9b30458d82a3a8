"""Worker processes that stop when their Dramatiq parent dies, even by SIGKILL.

``dramatiq`` forks its worker processes (and fork processes such as the Prometheus
exposition server). When the parent is killed outright (SIGKILL, the OOM killer), nothing
tells them: they would go on taking messages, unseen by supervisors and by the next
start. On Linux each of them asks the kernel (``prctl(PR_SET_PDEATHSIG)``) for a SIGTERM
when its parent dies, and so stops as on ``docker stop``: it takes no new message, puts
back what it had prefetched, finishes what it runs within ``--worker-shutdown-timeout``
and exits. Elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

from dramatiq import Broker, Middleware

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_DEATH_SIGNAL = signal.SIGTERM


def exit_with_parent() -> bool:
    """Have this process sent SIGTERM when its multiprocessing parent dies; True if armed."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died before the signal was armed: then no signal will come.
    if os.getppid() != parent.pid:
        os.kill(os.getpid(), PARENT_DEATH_SIGNAL)
    return True


class ExitWithParent(Middleware):
    """Arm ``exit_with_parent`` in every worker process as soon as it boots."""

    def after_process_boot(self, broker: Broker) -> None:
        exit_with_parent()


def exposition_server() -> int:
    """Dramatiq's Prometheus exposition fork, stopped with its parent like the workers."""
    from dramatiq.middleware.prometheus import _run_exposition_server

    exit_with_parent()
    return _run_exposition_server()


def prometheus_middleware() -> Middleware:
    """Dramatiq's ``Prometheus`` middleware whose exposition fork exits with its parent."""
    # Imported here: importing it creates dramatiq_prom_db's directory (see broker.py).
    from dramatiq.middleware.prometheus import Prometheus

    class OrphanSafePrometheus(Prometheus):
        @property
        def forks(self) -> list:
            return [exposition_server]

    return OrphanSafePrometheus()
