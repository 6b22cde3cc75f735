"""The one exception tree of photosorter.

::

    PhotosorterError (message, retryable)
    ├─ ConfigError            the user must fix settings: one line per bad key, exit 1
    ├─ SourceError            a photo source failed
    │  ├─ AuthRequiredError   a login or 2FA code is needed: pause that source, never crash-loop
    │  └─ SourceUnavailableError  transient: back off and retry
    ├─ ImageError             this photo cannot be read: set it aside in _failed, keep going
    ├─ ModelError             missing or corrupt model: clear the cache, retry once
    ├─ StateError             the state store or a move went wrong: stop the run, restart is safe
    ├─ SinkError              MQTT/SMTP/IMAP down: the run continues, retry later
    ├─ ReplyParseError        an unparseable reply line: report it back, change nothing
    └─ RequestError           a web page request names no such photo or category, or a stale view: 4xx

Adapters translate third-party errors at the boundary (``raise ModelError(...) from exc``);
``core`` never catches. Messages are written for the person reading the log: they never
contain passwords, tokens or mail bodies.
"""

from __future__ import annotations


class PhotosorterError(Exception):
    """Base class: a user-facing message and whether retrying can help."""

    retryable = False
    exit_code = 1

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class ConfigError(PhotosorterError):
    """Settings are invalid; ``problems`` holds one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SourceError(PhotosorterError):
    retryable = True


class AuthRequiredError(SourceError):
    retryable = False


class SourceUnavailableError(SourceError):
    retryable = True


class ImageError(PhotosorterError):
    """A photo cannot be decoded; ``reason`` is a short machine-friendly tag."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelError(PhotosorterError):
    retryable = True


class StateError(PhotosorterError):
    pass


class SinkError(PhotosorterError):
    retryable = True


class ReplyParseError(PhotosorterError):
    pass


class RequestError(PhotosorterError):
    """A request from the web page that cannot be done as asked; ``status`` is its HTTP status (400 bad
    input, 404 no such photo, 409 changed meanwhile). Nothing was changed."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
