"""``photosorter web``: the page on its own, and how the page is assembled for it and for ``run``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING, Any

from photosorter.adapters.locks import DAEMON_LOCK_FILE, LockBusyError, folder_locks, writer_locks
from photosorter.cli.commands import Options, described
from photosorter.cli.evaluate import runs_log
from photosorter.config import STATE_FILE, Settings
from photosorter.errors import ConfigError, StateError
from photosorter.records import AuthState, StatusSnapshot

if TYPE_CHECKING:  # aiohttp and the models are imported when the page starts, so --help stays quick
    from photosorter.pipeline import Sorter
    from photosorter.web.app import WebServer
    from photosorter.web.context import Submit

log = logging.getLogger(__name__)

DEFAULT_PORT = 8099


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    web = commands.add_parser("web", parents=options.everything, **described("web"))
    web.add_argument("--port", type=int, help=f"port (default: the web_port setting, else {DEFAULT_PORT})")
    web.set_defaults(handler=run_web)


def under_supervisor() -> bool:
    """Inside the Home Assistant add-on (the Supervisor hands every add-on a token)."""
    return bool(os.environ.get("SUPERVISOR_TOKEN"))


def start_web(settings: Settings, sorter: Sorter, submit: Submit, *, port: int | None = None,
              status: Callable[[], StatusSnapshot] | None = None,
              submit_code: Callable[[str], AuthState] | None = None, sorter_wait_s: float = 30.0) -> WebServer:
    """Start the page on its own thread; changes go through ``submit`` to the sorter's thread."""
    from photosorter.adapters.catalog import SqliteCatalog
    from photosorter.adapters.images import decode_image
    from photosorter.adapters.state import SqliteState
    from photosorter.adapters.thumbnails import ThumbnailFolder
    from photosorter.web.app import INGRESS_PROXY, WebServer, build_app
    from photosorter.web.context import WebContext
    from photosorter.web.desk import Desk

    path = settings.library.data / STATE_FILE
    reader, catalog, labels, points = SqliteState(path), SqliteCatalog(path), SqliteCatalog(path), SqliteCatalog(path)
    context = WebContext(
        categories=settings.classify.categories, desk=Desk(sorter, labels), submit=submit, reader=reader,
        catalog=catalog, thumbnails=ThumbnailFolder(settings.library.data / "thumbs", decode_image),
        library=settings.library.path, model_id=sorter.model_id, runs_log=runs_log(settings), status=status,
        submit_code=submit_code, allowed_remotes=frozenset({INGRESS_PROXY}) if under_supervisor() else None,
        map_source=points, sorter_wait_s=sorter_wait_s)
    server = WebServer(build_app(context), settings.web.host, port if port is not None else settings.web.port)
    server.on_stop += [reader.close, catalog.close, labels.close, points.close]
    try:
        server.start()
    except OSError as exc:
        server.stop()
        raise ConfigError([f"web_port: cannot listen on {settings.web.host}:{server.port} ({exc.strerror or exc})"]) \
            from exc
    where = "Home Assistant's ingress only" if context.allowed_remotes else \
        "anyone who can reach this address can relabel photos"
    log.info("web page on http://%s:%d/ (%s)", settings.web.host, server.port, where)
    return server


def run_web(args: argparse.Namespace, settings: Settings) -> int:
    """The page without the daemon. It stands in for the daemon on this data folder (a running daemon is
    refused: give it web_port instead), and each change takes the writers' lock, so a `sort` by hand takes
    turns with it."""
    try:
        with folder_locks([settings.library.data], "web", wait=False, name=DAEMON_LOCK_FILE):
            return _serve(args, settings)
    except LockBusyError as exc:
        raise StateError(f"{exc.holder} already runs on {settings.library.data}: set web_port for it to serve "
                         "the page instead") from exc


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, open_state

    state = open_state(settings)
    sorter = build_sorter(settings, state)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sorter")  # one change at a time
    stop = threading.Event()

    def locked(work: Callable[[], Any]) -> Future[Any]:
        def run() -> Any:
            with writer_locks(settings.library.data, settings.library.path, "web"):
                return work()
        return worker.submit(run)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = start_web(settings, sorter, locked, port=args.port or settings.web.port or DEFAULT_PORT)
    try:
        stop.wait()
    finally:
        server.stop()
        worker.shutdown(wait=True)
        sorter.index.save(sorter.index_path)
        state.close()
        log.info("web page stopped")
    return 0
