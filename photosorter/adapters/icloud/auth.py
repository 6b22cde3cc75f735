"""iCloud sign-in for ``IcloudSource``: the session's state, the password login and the 2FA code.

One ``PyiCloudService`` lives as long as the process (cookies and session in the data folder,
``refresh_interval=None``), built without a network call. Its state is probed with
``get_auth_status()``. A password login (which may make Apple send a 2FA code) happens only on the
first check after start, when an earlier login succeeded and the session later expired, or when a person
asks (``login()``): never from a retry loop, never again after a rejected password, and not while a code
Apple sent is still pending (remembered in the state file, so a cron ``sync`` does not ask again until a
code arrives or a day passes). Errors are translated at this boundary.

``IcloudLogin`` holds no lock: ``IcloudSource`` calls it under its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from pyicloud.exceptions import (
    PyiCloudConnectionException,
    PyiCloudException,
    PyiCloudFailedLoginException,
    PyiCloudTrustedDeviceVerificationException,
)

from photosorter.adapters.icloud.assets import IcloudAssets
from photosorter.adapters.icloud.service import Service
from photosorter.core import sync as plan
from photosorter.errors import SourceUnavailableError
from photosorter.records import AuthState

log = logging.getLogger(__package__)  # "photosorter.adapters.icloud": the name these lines had before the split

PROMPT_PENDING_S = 86400.0  # a code Apple sent is awaited this long before a new login may ask again
PROMPT_KEY = "prompt_pending"  # icloud_sync: when the last code was sent and not yet answered


class IcloudLogin:
    """Whether the iCloud session can sync, and the one login (and code) that makes it so."""

    def __init__(self, api: Service, assets: IcloudAssets, *, apple_id: str, clock: Callable[[], float]) -> None:
        self.apple_id = apple_id
        self._api = api
        self.assets = assets
        self._clock = clock
        self._challenge: AuthState | None = None  # a code was asked for and not yet given
        self._blocked: AuthState | None = None  # password rejected / security key only: wait for a person
        self._auto_login = True  # one automatic login per start or per expired session
        self._code_tries: list[float] = []  # when codes were checked with Apple (plan.code_wait_s)
        self._state: AuthState | None = None  # None until iCloud has answered a check

    def waiting(self) -> AuthState | None:
        """The state while a person must act (a code pending, a rejected password, a security key)."""
        return self._challenge or self._blocked

    def expired(self, message: str) -> AuthState:
        """iCloud said the session ended during a sync: the next check logs in again."""
        self._state = AuthState(ok=False, message=message)
        return self._state

    def state(self) -> AuthState:
        """Whether syncing can run; may log in once (see the module docstring), never raises."""
        if self._challenge is None:
            self._challenge = self._pending_prompt()
        waiting = self.waiting()
        if waiting is not None:
            return waiting
        try:
            if self._session_ok():
                self._state = AuthState(ok=True)
                self.assets.delete(PROMPT_KEY)
            elif self._auto_login:
                self._auto_login = False
                self._state = self._login()
            else:
                self._state = AuthState(ok=False, message="iCloud login needed: run photosorter icloud login")
        except SourceUnavailableError as exc:
            log.debug("iCloud status unknown: %s", exc.message)
            if self._state is None:  # nothing known yet, and no login went through: not ok, and no code is claimed
                return AuthState(ok=False, message=f"iCloud could not be reached ({exc.message})",
                                 reachable=False)
        return self._state

    def _pending_prompt(self) -> AuthState | None:
        """The code request an earlier run (a cron ``sync``, the daemon before a restart) left open, for a
        day: Apple is not asked again meanwhile; the code it sent is checked with the saved session."""
        try:
            pending = json.loads(self.assets.get(PROMPT_KEY) or "null")
            at, message, method = float(pending["at"]), str(pending["message"]), str(pending["method"])
        except (TypeError, ValueError, KeyError):
            return None
        if not 0 <= self._clock() - at < PROMPT_PENDING_S:
            self.assets.delete(PROMPT_KEY)
            return None
        return AuthState(ok=False, message=f"{message} (asked at {time.strftime('%H:%M', time.localtime(at))}; a new "
                         "code is asked for only after a day or by: photosorter icloud login)", method=method)

    def login(self) -> AuthState:
        """A person asked to log in (``photosorter icloud login``): at most one code is sent."""
        self._blocked = None
        self._challenge = None
        if self._session_ok():
            self._state = AuthState(ok=True, message="already logged in")
        else:
            self._state = self._login()
        return self._state

    def submit_code(self, code: str) -> AuthState:
        """A 2FA code typed by a person (CLI, MQTT text entity, code file). A wrong code asks again.

        Apple hears of a code only while one is pending, at most ``CODE_TRIES`` times an hour; a code
        never starts a login (that could send another code, or retry a rejected password)."""
        digits = plan.normalise_code(code)
        if self._blocked is not None:
            return self._blocked
        if self._challenge is None:
            if self._state is not None and self._state.ok:
                return AuthState(ok=True, message="No iCloud code was needed; nothing was sent to Apple.")
            return AuthState(ok=False, message=("No iCloud code is pending, so nothing was sent to Apple. "
                                                "Run: photosorter icloud login"))
        method = self._challenge.method
        if digits is None:
            return AuthState(ok=False, method=method, message="An iCloud code is 6 digits: enter it again.")
        wait_s = plan.code_wait_s(self._code_tries, self._clock())
        if wait_s > 0:
            log.warning("iCloud: a 2FA code came in too soon after %d tries; not checked", plan.CODE_TRIES)
            return AuthState(ok=False, method=method, message=(
                f"{plan.CODE_TRIES} codes were tried within the hour, so this one was not checked (Apple "
                f"locks an account after repeated wrong codes). Try again in {wait_s / 60:.0f} min."))
        self._code_tries.append(self._clock())
        try:
            accepted = self._api.validate_2fa_code(digits)
        except PyiCloudConnectionException as exc:
            raise SourceUnavailableError("cannot reach iCloud to check the code; enter it again") from exc
        except PyiCloudTrustedDeviceVerificationException as exc:  # the push bridge's websocket, not the code
            log.warning("iCloud: the trusted-device push session ended before the code was checked: %s",
                        type(exc).__name__)
            self._state = AuthState(ok=False, method=method, message=(
                "Apple's trusted-device session ended before the code could be checked (not a wrong code): "
                "enter the same code again."))
            return self._state
        except PyiCloudException as exc:
            log.warning("iCloud refused the code: %s", type(exc).__name__)
            accepted = False
        if not accepted or not self._api.is_trusted_session:
            log.info("iCloud: wrong 2FA code")
            self._state = AuthState(ok=False, method=method,
                                    message="Wrong code: enter the code shown on your device again.")
            return self._state
        self._challenge = None
        self.assets.delete(PROMPT_KEY)
        self._code_tries.clear()
        self._auto_login = True
        self._state = AuthState(ok=True, message="iCloud login complete")
        log.info("iCloud login complete; the session is trusted")
        return self._state

    def _session_ok(self) -> bool:
        try:
            status = self._api.get_auth_status()
        except PyiCloudConnectionException as exc:
            raise SourceUnavailableError(f"cannot reach iCloud: {type(exc).__name__}") from exc
        return bool(status.get("authenticated") and status.get("trusted_session"))

    def _login(self) -> AuthState:
        log.info("iCloud: logging in as %s", self.apple_id)
        try:
            self._api.authenticate(force_refresh=True)
        except PyiCloudFailedLoginException as exc:
            self._blocked = AuthState(ok=False, message=(
                "Apple rejected the Apple ID or password. Fix apple_password and restart; photosorter does not "
                "retry a rejected password, so the account is not locked."), blocked=True)
            log.error("iCloud login failed: %s", type(exc).__name__)
            return self._blocked
        except PyiCloudConnectionException as exc:
            self._auto_login = True  # nothing reached Apple, so nothing was sent: try again next time
            raise SourceUnavailableError("cannot reach iCloud to log in") from exc
        except PyiCloudException as exc:
            self._auto_login = True
            raise SourceUnavailableError(f"iCloud login failed for now: {type(exc).__name__}") from exc
        except OSError as exc:  # pyicloud 2026.10.1 lets a push-bridge websocket it cannot reach escape
            if not self._api.requires_2fa:
                self._auto_login = True
                raise SourceUnavailableError(f"cannot reach iCloud to log in: {type(exc).__name__}") from exc
            log.warning("iCloud: the trusted-device push (Apple's websocket) could not be reached: %s",
                        type(exc).__name__)
            self._fall_back_to_sms()
        if self._api.requires_2fa:
            if self._api.two_factor_delivery_method == "security_key":
                names = self._api.security_key_names
                message = plan.describe_security_key(names if isinstance(names, list) else None)
                self._blocked = AuthState(ok=False, message=message, method="security key", blocked=True)
                log.error("iCloud: %s", message)
                return self._blocked
            # pyicloud names the route Apple offers even when starting it failed (a push bridge whose
            # websocket did not answer): only a delivery it saw start counts as a code that was sent
            sent = bool(getattr(self._api, "_two_factor_code_requested", False))
            message, method = plan.describe_code_request(self._api.two_factor_delivery_method,
                                                         self._api.two_factor_delivery_notice, sent=sent)
            self._challenge = AuthState(ok=False, message=message, method=method)
            self.assets.put(PROMPT_KEY, json.dumps({"at": self._clock(), "message": message, "method": method}))
            log.warning("iCloud: %s", message)
            return self._challenge
        if self._api.requires_2sa:
            self._blocked = AuthState(ok=False, message=(
                "This Apple ID uses the old two-step verification, which photosorter does not support; "
                "turn on two-factor authentication."), blocked=True)
            return self._blocked
        self._auto_login = True
        log.info("iCloud: logged in with the trusted session")
        return AuthState(ok=True)

    def _fall_back_to_sms(self) -> None:
        """What pyicloud does when the push bridge fails in a way it expects: an SMS when Apple allows one."""
        api = self._api
        try:
            if api._can_request_sms_2fa_code():
                api._request_sms_2fa_code(notice="the trusted-device push could not be reached; sent by SMS")
        except (PyiCloudException, OSError) as exc:
            log.warning("iCloud: no SMS could be asked for either: %s", type(exc).__name__)
