"""pyicloud's service, as photosorter builds it: every Apple endpoint optionally under one base URL (tests,
mirrors), and a timeout on every request pyicloud sends without one."""

from __future__ import annotations

from typing import Any

from pyicloud import PyiCloudService

CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0  # an Apple request that has not answered after this long has failed


class Service(PyiCloudService):  # type: ignore[misc]  # pyicloud is untyped for mypy here
    """pyicloud's service; ``server`` moves every Apple endpoint under one base URL (tests, mirrors)."""

    def __init__(self, *args: Any, server: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S,
                 **kwargs: Any) -> None:
        self._server = server.rstrip("/") if server else None
        super().__init__(*args, **kwargs)
        # pyicloud 2026.10.1 sends its sign-in and account requests without a timeout: a hanging Apple
        # endpoint would hold the sync (and its lock) forever. Every request without one gets ours.
        send = self.session.request

        def request(*args: Any, timeout: Any = None, **kwargs: Any) -> Any:
            return send(*args, timeout=timeout if timeout is not None else (CONNECT_TIMEOUT_S, timeout_s),
                        **kwargs)

        self.session.request = request
        # ...and the trusted-device push bridge's steps go through ``request_raw``, past that wrapper
        send_raw = self.session.request_raw

        def request_raw(*args: Any, timeout: Any = None, **kwargs: Any) -> Any:
            return send_raw(*args, timeout=timeout if timeout is not None else (CONNECT_TIMEOUT_S, timeout_s),
                            **kwargs)

        self.session.request_raw = request_raw

    def close_push_bridge(self) -> None:
        """Close the websocket of a trusted-device push still waiting for its code (pyicloud keeps it open
        between the push and the code; a source that is closed will never enter one)."""
        clear = getattr(self, "_clear_trusted_device_bridge_state", None)
        if clear is not None:
            clear()

    def _setup_endpoints(self) -> None:
        super()._setup_endpoints()
        if self._server:
            self._idmsa_endpoint = f"{self._server}/idmsa"
            self._auth_endpoint = f"{self._idmsa_endpoint}/appleauth/auth"
            self._home_endpoint = f"{self._server}/www"
            self._setup_endpoint = f"{self._server}/setup/ws/1"
