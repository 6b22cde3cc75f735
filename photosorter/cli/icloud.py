"""``icloud login``, ``icloud code`` and ``sync``; ``open_source`` and the code drop for the daemon.

A code for a running daemon travels through two files in the data folder (mode 0600): the CLI writes
``icloud-code.request`` and waits for ``icloud-code.reply``, which the daemon's watcher writes after
handing the code to the same function the MQTT text entity calls.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from photosorter.cli.commands import Options, described
from photosorter.cli.library import preview_folder, print_report
from photosorter.config import STATE_FILE, Settings
from photosorter.core.companions import VIDEOS_FOLDER
from photosorter.errors import ConfigError, SourceUnavailableError
from photosorter.records import AuthState, RunReport

if TYPE_CHECKING:  # pyicloud takes a quarter of a second to import, the models more: only when they run
    from photosorter.adapters.icloud import IcloudSource
    from photosorter.ports import Controls

log = logging.getLogger(__name__)

SERVER_ENV = "PHOTOSORTER_ICLOUD_SERVER"  # one base URL serving all Apple endpoints (tests, mirrors)
REQUEST_FILE = "icloud-code.request"
REPLY_FILE = "icloud-code.reply"
CODE_WAIT_S = 30.0
WATCH_INTERVAL_S = 2.0  # how often the daemon looks for a code from `photosorter icloud code` (it waits up to 30 s)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    icloud = commands.add_parser("icloud", **described("icloud"))
    sub = icloud.add_subparsers(dest="icloud_command", required=True, metavar="ACTION", help="what to do")
    login = sub.add_parser("login", parents=options.only("data"),
                           **described("icloud login", summary="sign in, asking for the 2FA code on this terminal",
                                       examples=("photosorter icloud login   # APPLE_ID, APPLE_PASSWORD in .env",)))
    login.set_defaults(handler=run_login)
    code = sub.add_parser("code", parents=options.only("data"),
                          **described("icloud code", summary="give a 2FA code to the running daemon",
                                      examples=("photosorter icloud code 123456",)))
    code.add_argument("code", metavar="CODE", help="the 6-digit code Apple showed on your device")
    code.set_defaults(handler=run_code)
    commands.add_parser("sync", parents=options.everything, **described("sync")).set_defaults(handler=run_sync,
                                                                                             check=check_sync)


def open_source(settings: Settings) -> IcloudSource | None:
    """The iCloud source for these settings, or None when no Apple ID is set (then pyicloud, 40 MB of
    resident memory in the daemon, is not imported)."""
    if not settings.icloud.enabled:
        return None
    check_account(settings)
    from photosorter.adapters.icloud import IcloudSource

    return IcloudSource(settings.icloud.apple_id, settings.icloud.password.reveal(), data_dir=settings.library.data,
                        state_path=settings.library.data / STATE_FILE, china_mainland=settings.icloud.china_mainland,
                        media_folder=settings.library.path / VIDEOS_FOLDER, videos=settings.icloud.videos,
                        previews=preview_folder(settings), shared_library=settings.icloud.shared_library,
                        edited=settings.icloud.edited,
                        server=os.environ.get(SERVER_ENV) or None)


def check_account(settings: Settings) -> None:
    """An Apple ID and its password, or a ``ConfigError`` naming what is missing."""
    if not settings.icloud.enabled:
        raise ConfigError(["apple_id: set an Apple ID (APPLE_ID) to use iCloud"])
    if not settings.icloud.password:
        raise ConfigError(["apple_password: needed when apple_id is set"])


def _require(settings: Settings) -> IcloudSource:
    check_account(settings)
    source = open_source(settings)
    assert source is not None  # an account is set
    return source


def check_sync(args: argparse.Namespace, settings: Settings) -> None:
    """Before any lock (which would make the library): a sync needs an Apple ID and its password."""
    check_account(settings)


def run_login(args: argparse.Namespace, settings: Settings) -> int:
    source = _require(settings)
    try:
        state = source.login()
        while state.awaiting_code:
            print(state.message)
            try:
                typed = input("Code: ")
            except EOFError:
                print("no code entered")
                return 1
            state = source.submit_code(typed)
        print(state.message or "iCloud login complete")
        return 0 if state.ok else 1
    finally:
        source.close()


def run_code(args: argparse.Namespace, settings: Settings) -> int:
    state = hand_code_to_daemon(settings.library.data, args.code)
    print(state.message or ("accepted" if state.ok else "not accepted"))
    return 0 if state.ok else 1


def hand_code_to_daemon(data: Path, code: str) -> AuthState:
    """Give a 2FA code to the daemon running on ``data`` (through the code drop) and wait for its answer."""
    data.mkdir(parents=True, exist_ok=True)
    request_id = uuid.uuid4().hex
    _write_private(data / REQUEST_FILE, {"id": request_id, "code": code})
    deadline = time.monotonic() + CODE_WAIT_S
    while time.monotonic() < deadline:
        reply = _read_json(data / REPLY_FILE)
        if reply is not None and reply.get("id") == request_id:
            return AuthState(ok=bool(reply.get("ok")), message=str(reply.get("message") or ""))
        time.sleep(0.1)
    (data / REQUEST_FILE).unlink(missing_ok=True)
    return AuthState(ok=False, message=f"no running photosorter took the code within {CODE_WAIT_S:.0f} s; is "
                                       f"`photosorter run` running with --data {data}? Without a daemon, use: "
                                       "photosorter icloud login")


def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, open_state

    source = _require(settings)
    state = open_state(settings)
    incoming = settings.library.data / "incoming"
    try:
        auth = source.auth_state()
        if not auth.ok:
            print(auth.message)
            return 1
        sorter = build_sorter(settings, state)
        fetched, report = 0, RunReport()
        while True:  # a first sync comes in chunks, each sorted before the next is fetched
            try:
                fetched += source.fetch_new(incoming)
            except SourceUnavailableError as exc:
                print(f"iCloud: {exc.message}")
                return 1
            report.add(sorter.sort_folder(incoming))
            if not source.more_pending():
                break
        print(f"iCloud: {fetched} new files")
        print_report(report)
    finally:
        source.close()
        state.close()
    return 0


def watch_codes(data: Path, controls: Controls, stop: threading.Event) -> threading.Thread:
    """Start a thread that hands codes from ``photosorter icloud code`` to the daemon."""

    def loop() -> None:
        while not stop.wait(WATCH_INTERVAL_S):
            if not (data / REQUEST_FILE).exists():  # a stat: the cheapest look (this runs all day)
                continue
            request = _read_json(data / REQUEST_FILE)
            if request is None:
                continue
            (data / REQUEST_FILE).unlink(missing_ok=True)
            try:
                state = controls.submit_icloud_code(str(request.get("code", "")))
                reply = {"id": request.get("id"), "ok": state.ok, "message": state.message}
            except Exception as exc:  # a code must never stop the daemon; the person hears why
                log.warning("iCloud code from the command line failed: %s", exc)
                reply = {"id": request.get("id"), "ok": False, "message": f"could not check the code: {exc}"}
            _write_private(data / REPLY_FILE, reply)

    thread = threading.Thread(target=loop, name="icloud-code", daemon=True)
    thread.start()
    return thread


def _write_private(path: Path, payload: dict[str, object]) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(temp, path)


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: photosorter icloud ...")
