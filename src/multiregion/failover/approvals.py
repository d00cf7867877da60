"""Approvals of a runbook's gated steps: who decided, why, and how the decision arrived.

An approver is called before a gated step and returns an ``Approval`` (granted or not, by whom,
for what reason), or None when no decision came (the run stops awaiting approval). A decision
that names nobody is no decision: anything but an ``Approval`` denies the step.

Webhook approvals arrive as signed tokens: ``ApprovalTokens.issue`` (run by whatever sends the
approve button: a chat bot, an approval page) binds a decision to one run, one step and an
expiry with an HMAC-SHA256 over it; ``ApprovalInbox`` receives them over HTTP on loopback and
``TokenApprover`` waits for one that verifies. The secret and the tokens (bearer credentials)
never appear in a repr, a log line, an error or the journal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from multiregion import validate
from multiregion.closing import Closing
from multiregion.errors import AuthError, InvalidInput

if TYPE_CHECKING:
    from multiregion.failover.runbook import RunContext, Step

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
SECRET_VARIABLE = "MULTIREGION_APPROVAL_SECRET"  # noqa: S105 - a variable name, no secret
MAX_TOKEN_BYTES = 4096
VIAS = frozenset({"api", "terminal", "command-line", "--yes", "webhook"})


def _text(field: str, limit: int) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise InvalidInput(field, f"must be non-empty text of at most {limit} characters")
        if any(ord(c) < 32 and c not in "\t" for c in value):
            raise InvalidInput(field, "must not contain control characters")

    return check


@attrs.frozen
class Approval:
    """A decision on a gate: ``granted`` or not, ``by`` whom, the ``reason``, and ``via`` what
    (``api``, ``terminal``, ``command-line``, ``--yes``, ``webhook``)."""

    granted: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    by: str = attrs.field(validator=_text("approval.by", 100))
    reason: str = attrs.field(validator=_text("approval.reason", 1000))
    via: str = attrs.field(
        default="api", validator=lambda _i, _a, v: validate.one_of("approval.via", v, VIAS)
    )

    def to_json(self) -> dict[str, Any]:
        return {"approver": self.by, "reason": self.reason, "via": self.via}


Approver = Callable[["Step", "RunContext"], "Approval | None"]
"""Called before a step with ``approval=True``: an Approval, or None when none came."""


def approve_as(by: str, reason: str, *, via: str = "api") -> Approver:
    """An approver granting every gate it is asked about, each recorded as ``by``'s, with
    ``reason`` (what ``--approver``/``--yes`` do on the command line)."""
    decision = Approval(True, by, reason, via)
    return lambda _step, _ctx: decision


# --------------------------------------------------------------------------- signed tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ApprovalTokens:
    """Signs and verifies approval tokens with a shared ``secret`` (at least 32 bytes).

    A token says: in run ``run_id`` of ``runbook``, ``by`` decided on ``step`` (granted or
    not) for ``reason``, until ``expires``. Anything changed breaks the signature.
    """

    def __init__(
        self, secret: bytes, *, ttl_s: float = 900, clock: Callable[[], float] = time.time
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise InvalidInput("secret", f"must be at least {MIN_SECRET_BYTES} random bytes")
        self._secret = secret
        self.ttl_s = validate.seconds("ttl_s", ttl_s, 1, 86400)
        self._clock = clock

    @classmethod
    def from_env(cls, variable: str = SECRET_VARIABLE, *, ttl_s: float = 900) -> ApprovalTokens:
        """Tokens signed with the secret in the environment variable ``variable`` (its UTF-8
        bytes): a secret never goes on a command line, where process lists show it."""
        secret = os.environ.get(variable, "")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise InvalidInput(
                variable, f"must hold the approval secret, at least {MIN_SECRET_BYTES} bytes"
            )
        return cls(secret.encode(), ttl_s=ttl_s)

    def __repr__(self) -> str:
        return f"ApprovalTokens(ttl_s={self.ttl_s:g})"

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def issue(self, *, runbook: str, run_id: str, step: str, approval: Approval) -> str:
        """A token carrying ``approval`` for one step of one run, valid for ``ttl_s``."""
        claims = {
            "runbook": runbook,
            "run_id": run_id,
            "step": step,
            "granted": approval.granted,
            "by": approval.by,
            "reason": approval.reason,
            "expires": self._clock() + self.ttl_s,
        }
        body = _b64(json.dumps(claims, sort_keys=True).encode())
        return f"{body}.{self._sign(body)}"

    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature holds and which has not expired."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES or token.count(".") != 1:
            raise AuthError("approval token: malformed")
        body, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise AuthError("approval token: bad signature")
        try:
            claims = json.loads(_unb64(body))
            expires = float(claims["expires"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("approval token: malformed claims") from exc
        if self._clock() >= expires:
            raise AuthError(f"approval token: expired {self._clock() - expires:.0f} s ago")
        return dict(claims)

    def verify(self, token: str, *, runbook: str, run_id: str, step: str) -> Approval:
        """The approval a token carries for this step of this run; ``AuthError`` otherwise."""
        claims = self.claims(token)
        wanted = {"runbook": runbook, "run_id": run_id, "step": step}
        for name, value in wanted.items():
            if claims.get(name) != value:
                raise AuthError(f"approval token: issued for another {name.replace('_', ' ')}")
        try:
            return Approval(bool(claims["granted"]), claims["by"], claims["reason"], "webhook")
        except (KeyError, InvalidInput) as exc:
            raise AuthError("approval token: malformed claims") from exc


# --------------------------------------------------------------------------- the webhook


class ApprovalInbox(Closing):
    """An HTTP endpoint on loopback taking ``POST /approvals`` with a token as the body.

    A token whose signature or expiry fails is answered 403 and dropped; a good one 202 and
    queued for ``TokenApprover``. Put it behind your reverse proxy or function to reach it from
    a chat tool; only loopback addresses are accepted here.
    """

    def __init__(self, tokens: ApprovalTokens, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise InvalidInput("host", "the approval inbox listens on loopback only")
        self.tokens = tokens
        self._host = host
        self._queue: queue.Queue[str] = queue.Queue()
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                if self.path != "/approvals" or not 0 < size <= MAX_TOKEN_BYTES:
                    self.send_error(400 if self.path == "/approvals" else 404)
                    return
                token = self.rfile.read(size).decode("ascii", "replace").strip()
                try:
                    inbox.tokens.claims(token)
                except AuthError as exc:
                    log.warning("approval refused: %s", exc)  # the token itself is not logged
                    self.send_error(403, str(exc))
                    return
                inbox._queue.put(token)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:  # request lines may hold tokens
                return

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="approval-inbox", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}/approvals"

    def take(self, timeout_s: float) -> str | None:
        """The next token received, waiting at most ``timeout_s``."""
        try:
            return self._queue.get(timeout=max(timeout_s, 0))
        except queue.Empty:
            return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __repr__(self) -> str:
        return f"ApprovalInbox({self.url})"


class TokenApprover:
    """Waits up to ``wait_s`` for a token approving the step; None (no decision) after that.

    Tokens for another run or step are logged and skipped. The runbook keeps sending status
    events while this waits.
    """

    def __init__(self, inbox: ApprovalInbox, *, wait_s: float = 600) -> None:
        self.inbox = inbox
        self.wait_s = validate.seconds("wait_s", wait_s, 0, 86400)

    def __call__(self, step: Step, ctx: RunContext) -> Approval | None:
        deadline = time.monotonic() + self.wait_s
        while (left := deadline - time.monotonic()) > 0:
            token = self.inbox.take(left)
            if token is None:
                break
            try:
                return self.inbox.tokens.verify(
                    token, runbook=ctx.runbook, run_id=ctx.run_id, step=step.name
                )
            except AuthError as exc:
                log.warning("approval for %s skipped: %s", step.name, exc)
        return None

    def __repr__(self) -> str:
        return f"TokenApprover(wait_s={self.wait_s:g})"
