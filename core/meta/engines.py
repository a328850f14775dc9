"""Where the work runs: local cores with joblib or a Dask cluster (:func:`map_tasks`, :func:`dask_client`)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from scaleplan.core.errors import UserError
from scaleplan.core.meta.run import DesignGroup, FamilyData, _run_chunk

ENGINES = ("joblib", "dask")

#: The protocols of a Dask scheduler address a user gives (``distributed.comm``'s network backends).
SCHEDULER_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")
_HOST_PORT = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+)):(?P<port>[0-9]{1,5})$")


class SchedulerAddressError(UserError):
    """A Dask scheduler address that is not ``[PROTOCOL://]HOST:PORT``."""


def check_scheduler_address(address: str) -> str:
    """``address`` when it is a Dask scheduler address, ``[PROTOCOL://]HOST:PORT`` with PROTOCOL one of
    :data:`SCHEDULER_PROTOCOLS` (Dask's default is tcp) and PORT a number from 1 to 65535; else
    :class:`SchedulerAddressError` quoting it. Checked before anything connects (Dask's own
    ``ValueError`` would come only once the sweep has been planned)."""
    protocol, _, rest = address.rpartition("://")
    match = _HOST_PORT.match(rest)
    if (
        (protocol and protocol.lower() not in SCHEDULER_PROTOCOLS)
        or match is None
        or not 0 < int(match["port"]) < 65536
    ):
        raise SchedulerAddressError(
            f"--scheduler {address!r} is not a Dask scheduler address; give an address like tcp://HOST:8786 "
            f"(protocol {', '.join(SCHEDULER_PROTOCOLS)}; the port a number from 1 to 65535)"
        )
    return address


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on the cluster at ``scheduler``, else on a local cluster.

    A local cluster runs ``n_workers`` (default: one per core) single-threaded worker
    processes on the loopback interface and is closed on exit; a remote cluster is left up.
    """
    from dask.distributed import Client, LocalCluster  # the "cluster" and "test" extras

    if scheduler:
        client = Client(check_scheduler_address(scheduler))
        try:
            yield client
        finally:
            client.close()
        return
    with (
        LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def map_tasks(
    fn: Callable[..., Any],
    items: Iterable[Any],
    *,
    engine: str = "joblib",
    n_jobs: int = -1,
    scheduler: str | None = None,
    shared: Mapping[str, object] | None = None,
) -> list[Any]:
    """``[fn(item, **shared) for item in items]``, on local cores or a Dask cluster, in order.

    ``fn`` must be importable by the workers (a module-level function) and deterministic for
    the engines to agree. ``shared`` keyword arguments (e.g. a large table every item needs)
    are sent to each worker once rather than with every item. ``engine="joblib"`` runs on
    ``n_jobs`` local processes (1: in this process); ``engine="dask"`` on the cluster at
    ``scheduler`` (``tcp://host:8786``), or on a local cluster when none is given. Exceptions
    raised by ``fn`` propagate.
    """
    items = list(items)
    shared = dict(shared or {})
    if engine == "dask":
        with dask_client(scheduler) as client:
            scattered = {k: client.scatter(v, broadcast=True) for k, v in shared.items()}
            futures = client.map(fn, items, pure=False, **scattered)
            gathered: list[Any] = client.gather(futures)
            return gathered
    if engine != "joblib":
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if n_jobs == 1:
        return [fn(item, **shared) for item in items]
    from joblib import Parallel, delayed

    results: list[Any] = Parallel(n_jobs=n_jobs)(delayed(fn)(item, **shared) for item in items)
    return results


def _execute(
    chunks: Sequence[tuple[list[DesignGroup], str]],
    data: Mapping[str, FamilyData],
    version: str,
    n_jobs: int | None,
    engine: str,
    scheduler: str | None,
) -> Iterator[list[dict[str, Any]]]:
    if engine == "dask":
        from dask.distributed import as_completed

        with dask_client(scheduler, None if n_jobs in (None, -1) else n_jobs) as client:
            scattered = {name: client.scatter(family, broadcast=True) for name, family in data.items()}
            futures = [client.submit(_run_chunk, tasks, scattered[name], version, pure=False) for tasks, name in chunks]
            for future in as_completed(futures):
                yield future.result()
        return
    if engine != "joblib":
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    from joblib import Parallel, delayed

    if n_jobs == 1:
        for tasks, name in chunks:
            yield _run_chunk(tasks, data[name], version)
        return
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from parallel(delayed(_run_chunk)(tasks, data[name], version) for tasks, name in chunks)
