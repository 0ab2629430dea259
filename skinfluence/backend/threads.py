"""Thread policy: how many torch threads a computation runs on.

Measured (``benchmarks/bench_influence.py`` settings, L2 logistic regression, d = 100, 50 test
rows, 2 cores under load from other jobs): all-row influence took 0.029 s on one thread against
0.084 s on two at n = 1 000, 0.08 s against 0.33 s at n = 5 000, 0.31 s against 0.54 s at
n = 20 000 and 1.1 s against 2.1 s at n = 100 000. Idle OpenMP threads spin on a busy machine,
so small problems and any problem on an oversubscribed machine run on one thread.

The policy only ever *lowers* the thread count, and restores it afterwards: a limit the user set
(``torch.set_num_threads``, ``threadpoolctl.threadpool_limits``, ``OMP_NUM_THREADS``) is never
exceeded.
"""

import os
from contextlib import contextmanager

import torch
from joblib import effective_n_jobs
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

#: Work (training rows times features) below which one thread is used.
SMALL_WORK = 10**7


def machine_is_loaded():
    """Whether the 1-minute load average reaches the number of cores."""
    if not hasattr(os, "getloadavg"):
        return False
    return os.getloadavg()[0] >= (os.cpu_count() or 1)


@contextmanager
def single_thread():
    """Run the block on one torch thread (and one BLAS/OpenMP thread); restore afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def thread_policy(work):
    """Run a computation of size ``work`` (rows times features) on one thread when it is small
    (below :data:`SMALL_WORK`) or the machine is loaded; otherwise leave the setting alone."""
    if torch.get_num_threads() > 1 and (work < SMALL_WORK or machine_is_loaded()):
        with single_thread():
            yield
    else:
        yield


def parallel_map(function, items, n_jobs=None, **options):
    """``[function(item) for item in items]`` through joblib (``options`` go to ``Parallel``).

    When the calls run in parallel, each worker (and this process meanwhile) uses one thread, so
    that ``n_jobs`` workers do not each start a full pool of threads.
    """
    if effective_n_jobs(n_jobs) == 1:
        return Parallel(n_jobs=n_jobs, **options)(delayed(function)(item) for item in items)

    def one_thread(item):
        with single_thread():
            return function(item)

    with single_thread():
        return Parallel(n_jobs=n_jobs, **options)(delayed(one_thread)(item) for item in items)
