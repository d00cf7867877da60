"""Notifications of a runbook's progress: to the log, to a webhook, to several at once, and to
each audience (engineering channel, leadership updates, status page) in its own words.

A notifier's failure never stops a run: ``deliver`` logs it and carries on. Webhook URLs and
headers usually carry tokens, so they never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import ssl
import string
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from multiregion import validate
from multiregion.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)


@attrs.frozen
class RunEvent:
    """Something that happened in a run; ``done``/``total`` count the runbook's steps."""

    kind: str
    runbook: str
    message: str
    at: float
    step: str | None = None
    role: str | None = None
    person: str | None = None
    done: int = 0
    total: int = 0
    audience: str | None = None
    """Set when the event was rewritten for one audience (``Audience``)."""
    run_id: str | None = None
    """The run the event is about (what an approval token is issued for)."""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def text(self) -> str:
        where = f" {self.step}" if self.step else ""
        who = f" ({self.person}, {self.role})" if self.person else ""
        return f"[{self.runbook}] {self.kind}{where}{who}: {self.message}"


class Notifier(Protocol):
    """Anything with ``notify(event)``; it may be called from a status timer thread too."""

    def notify(self, event: RunEvent) -> None: ...


def deliver(notifier: Notifier, event: RunEvent) -> bool:
    """Send ``event``; a failure is logged and reported as False, never raised."""
    try:
        notifier.notify(event)
    except Exception as exc:  # noqa: BLE001 - a notifier must never break a run
        log.warning("notifier %r failed on %s: %s", notifier, event.kind, exc)
        return False
    return True


class LogNotifier:
    """Events as log records (``level``) of the logger ``logger``."""

    def __init__(
        self, logger: logging.Logger | str = "multiregion.runbook", *, level: int = logging.INFO
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def notify(self, event: RunEvent) -> None:
        self.logger.log(self.level, "%s", event.text())

    def __repr__(self) -> str:
        return f"LogNotifier({self.logger.name!r})"


class Broadcast:
    """Every event to each of ``notifiers``; one failing does not keep it from the others."""

    def __init__(self, *notifiers: Notifier) -> None:
        for position, notifier in enumerate(notifiers):
            if not callable(getattr(notifier, "notify", None)):
                raise InvalidInput(f"notifiers[{position}]", "has no notify(event) method")
        self.notifiers = notifiers

    def notify(self, event: RunEvent) -> None:
        for notifier in self.notifiers:
            deliver(notifier, event)

    def __repr__(self) -> str:
        return f"Broadcast({', '.join(map(repr, self.notifiers))})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could carry the payload to a host nobody configured: treat it as an error."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


class WebhookNotifier:
    """Each event POSTed as JSON to ``url``.

    https URLs have their certificate verified; plain http is allowed for loopback hosts only.
    The URL and ``headers`` (where an ``Authorization`` belongs) are kept out of every repr,
    log line and error: only ``scheme://host/...`` is ever shown.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 for c in url):
            raise InvalidInput("url", "must be a URL without spaces or control characters")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InvalidInput("url", "must start with https:// (or http:// for loopback)")
        if not parts.hostname:
            raise InvalidInput("url", "has no host")
        if parts.username is not None or parts.password is not None:
            raise InvalidInput("url", "must not carry credentials before the host; use headers")
        loopback = _is_loopback(parts.hostname)
        if parts.scheme == "http" and not loopback:
            raise InvalidInput("url", "plain http is allowed only for loopback hosts; use https")
        self.timeout_s = validate.seconds("timeout_s", timeout_s, 0, 300)
        self._headers = dict(self._checked_headers(headers))
        self._url = url
        self._shown = f"{parts.scheme}://{parts.hostname}/..."
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPSHandler(context=ssl.create_default_context()),
            _RefuseRedirects(),
        ]
        if loopback:  # a proxy from the environment must not see loopback traffic
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    @staticmethod
    def _checked_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
        if headers is None:
            return {}
        if not isinstance(headers, Mapping):
            raise InvalidInput("headers", "must map header names to values")
        for name, value in headers.items():
            if not isinstance(name, str) or not name or not name.isascii() or ":" in name:
                raise InvalidInput("headers", "every name must be non-empty ASCII without ':'")
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                raise InvalidInput("headers", f"the value of {name!r} must be one line of text")
        return headers

    def notify(self, event: RunEvent) -> None:
        body = json.dumps(event.to_json(), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "multiregion-runbook",
            **self._headers,
        }
        # The scheme was checked in __init__: only http(s) gets here.
        request = urllib.request.Request(self._url, body, headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"{self!r}: HTTP {exc.code}") from exc
        except urllib.error.URLError as exc:
            raise Unavailable(f"{self!r}: {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise Unavailable(f"{self!r}: {type(exc).__name__}: {exc}") from exc

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._shown})"


# --------------------------------------------------------------------------- audiences

ENGINEERING = "engineering"
LEADERSHIP = "leadership"
STATUS_PAGE = "status_page"
FIELDS = frozenset(attrs.fields_dict(RunEvent)) - {"audience", "run_id"}

_DEFAULTS: dict[str, tuple[frozenset[str] | None, dict[str, str]]] = {
    ENGINEERING: (None, {"*": "[$runbook] $kind $step ($person, $role): $message ($done/$total)"}),
    LEADERSHIP: (
        frozenset(
            {
                "run-started",
                "run-resumed",
                "approval-waiting",
                "approval-granted",
                "approval-denied",
                "move",
                "role-assigned",
                "role-handed-over",
                "status",
                "run-stopped",
                "run-finished",
            }
        ),
        {
            "run-started": "Recovery '$runbook' started: $total steps.",
            "run-resumed": "Recovery '$runbook' resumed: $done of $total steps done.",
            "approval-waiting": "Decision needed: step '$step' waits for $person ($role).",
            "move": "Write region moved: $message.",
            "status": "Update on '$runbook': $done of $total steps done; $message.",
            "run-stopped": "Recovery '$runbook' stopped: $message.",
            "run-finished": "Recovery '$runbook' finished: all $total steps done.",
            "*": "'$runbook': $message.",
        },
    ),
    STATUS_PAGE: (
        frozenset({"run-started", "status", "run-finished"}),
        {
            "run-started": "We are aware of an outage and are restoring service from another "
            "region.",
            "status": "We are still restoring service. Next update shortly.",
            "run-finished": "Service has been restored. We will publish a post-incident report.",
        },
    ),
}


def _templates(name: str, templates: Mapping[str, str]) -> dict[str, string.Template]:
    checked = {}
    for kind, text in templates.items():
        if not isinstance(kind, str) or not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"{name}.templates", "must map event kinds (or '*') to text")
        template = string.Template(text)
        if not template.is_valid():
            raise InvalidInput(f"{name}.templates[{kind!r}]", "is not a valid $-template")
        unknown = set(template.get_identifiers()) - FIELDS
        if unknown:
            raise InvalidInput(
                f"{name}.templates[{kind!r}]",
                f"names {', '.join(sorted(unknown))}; known: {', '.join(sorted(FIELDS))}",
            )
        checked[kind] = template
    return checked


class Audience:
    """The events one audience gets, each rewritten by its template, sent to ``notifier``.

    ``kinds``: the event kinds it gets (None: every kind). ``templates`` map a kind (or ``"*"``
    for any other) to a ``string.Template`` over the event's fields (``$runbook``, ``$step``,
    ``$person``, ``$message``, ``$done``...); a kind with no template and no ``"*"`` is sent
    as it is. ``status_every_s`` spaces out the periodic ``status`` events for this audience.
    The standard audiences (``engineering``, ``leadership``, ``status_page``) come with kinds
    and templates of their own: ``kinds`` given replace theirs, ``templates`` given replace
    theirs kind by kind.
    """

    def __init__(
        self,
        name: str,
        notifier: Notifier,
        *,
        kinds: Iterable[str] | None = None,
        templates: Mapping[str, str] | None = None,
        status_every_s: float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInput("audience", "must be a name such as engineering or status_page")
        if not callable(getattr(notifier, "notify", None)):
            raise InvalidInput(f"{name}.notifier", "has no notify(event) method")
        default_kinds, default_templates = _DEFAULTS.get(name, (None, {}))
        self.name, self.notifier = name, notifier
        self.kinds = frozenset(kinds) if kinds is not None else default_kinds
        self.templates = _templates(name, {**default_templates, **(templates or {})})
        self.status_every_s = (
            None
            if status_every_s is None
            else validate.seconds(f"{name}.status_every_s", status_every_s, 0, 86400)
        )
        self._last_status: float | None = None
        self._lock = threading.Lock()  # status events come from the runbook's timer thread

    def wants(self, event: RunEvent) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if event.kind == "status" and self.status_every_s is not None:
            with self._lock:
                last = self._last_status
                if last is not None and event.at - last < self.status_every_s:
                    return False
                self._last_status = event.at
        return True

    def render(self, event: RunEvent) -> RunEvent:
        template = self.templates.get(event.kind, self.templates.get("*"))
        if template is None:
            return attrs.evolve(event, audience=self.name)
        fields = {k: "" if v is None else v for k, v in attrs.asdict(event).items()}
        return attrs.evolve(event, message=template.substitute(fields), audience=self.name)

    def __repr__(self) -> str:
        return f"Audience({self.name!r}, {self.notifier!r})"


class Audiences:
    """Each event to every audience that wants it, in that audience's words."""

    def __init__(self, *audiences: Audience) -> None:
        names = [a.name for a in audiences if isinstance(a, Audience)]
        if len(names) != len(audiences) or not audiences:
            raise InvalidInput("audiences", "must be one or more Audience")
        if len(set(names)) != len(names):
            raise InvalidInput("audiences", "each audience once")
        self.audiences = audiences

    def notify(self, event: RunEvent) -> None:
        for audience in self.audiences:
            if audience.wants(event):
                deliver(audience.notifier, audience.render(event))

    def __repr__(self) -> str:
        return f"Audiences({', '.join(map(repr, self.audiences))})"
