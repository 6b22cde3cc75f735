"""The Home Assistant Supervisor's services API: inside the add-on, who the MQTT broker is and how to log in.

``GET http://supervisor/services/mqtt`` with ``Authorization: Bearer $SUPERVISOR_TOKEN`` answers
``{"result": "ok", "data": {"host", "port", "ssl", "username", "password", "protocol", ...}}``, or an error
(``"Service not enabled"``) when no broker app provides MQTT. Options the person set win over it.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace

from photosorter.config import MqttSettings
from photosorter.options import Secret

log = logging.getLogger(__name__)

MQTT_SERVICE_URL = "http://supervisor/services/mqtt"
TIMEOUT_S = 10.0


def fetch_mqtt_service(token: str, url: str = MQTT_SERVICE_URL,
                       timeout_s: float = TIMEOUT_S) -> dict[str, object] | None:
    """The broker the Supervisor hands out, or None (logged, without the token) when there is none."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the Supervisor is never behind a proxy
    try:
        with opener.open(request, timeout=timeout_s) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        message = _error_message(exc)
        log.info("MQTT: the Supervisor has no MQTT broker for photosorter (%s); MQTT is off", message)
        return None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        log.warning("MQTT: cannot ask the Supervisor for the MQTT broker (%s); MQTT is off", reason)
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or body.get("result") != "ok" or not data.get("host"):
        log.warning("MQTT: the Supervisor's answer names no MQTT broker; MQTT is off")
        return None
    return data


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode("utf-8"))
    except (OSError, ValueError):
        return f"HTTP {exc.code}"
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else f"HTTP {exc.code}"


def resolve_broker(settings: MqttSettings, environ: Mapping[str, str],
                   url: str = MQTT_SERVICE_URL) -> MqttSettings:
    """The broker to use: the ``mqtt_*`` options when ``mqtt_host`` is set; else, inside the add-on
    (``SUPERVISOR_TOKEN`` set), the Supervisor's broker; else none (``host`` empty: MQTT off)."""
    if settings.host:
        return settings
    token = environ.get("SUPERVISOR_TOKEN", "")
    if not token:
        return settings
    data = fetch_mqtt_service(token, url)
    if data is None:
        return settings
    try:
        port = int(str(data.get("port") or 1883))
    except ValueError:
        log.warning("MQTT: the Supervisor gave an unusable port %r; MQTT is off", data.get("port"))
        return settings
    resolved = replace(settings, host=str(data["host"]), port=port, username=str(data.get("username") or ""),
                       password=Secret(str(data.get("password") or "")), tls=bool(data.get("ssl")))
    log.info("MQTT: using the broker the Supervisor provides at %s:%d", resolved.host, resolved.port)
    return resolved
