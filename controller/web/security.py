"""Request guards: CSRF on every state-changing request, Host checking (DNS rebinding), and an
access token when the UI is reachable from other machines.

CSRF: a random token lives in the signed Flask session cookie (SameSite=Strict) and every page
embeds it; POST/PUT/PATCH/DELETE must echo it in the `X-CSRF-Token` header (or a `csrf_token` form
field). A cross-site page can neither read the token nor set the header without a CORS preflight
we never answer."""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from flask import Flask, abort, g, request, session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def host_name(host_header: str) -> str:
    """The name part of a Host header: "localhost:5000" → "localhost", "[::1]:5000" → "[::1]"."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def is_loopback(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def install_guards(app: Flask, access_token: str | None, allowed_hosts: set[str] | None) -> None:
    """`allowed_hosts`: Host header names accepted (None: any; the default for a local bind is the
    loopback names only). `access_token`: required from non-loopback clients (cookie after the
    first `?token=` visit)."""

    @app.before_request
    def _guard() -> None:
        host = host_name(request.host or "")
        if allowed_hosts is not None and host not in allowed_hosts:
            abort(400, description=f"unexpected Host header {request.host!r}")
        remote = request.remote_addr or ""
        if not is_loopback(remote):
            if not access_token:
                abort(403, description="this controller only accepts connections from this machine")
            given = request.args.get("token") or request.cookies.get("syncrig_token") or ""
            if not hmac.compare_digest(given.encode(), access_token.encode()):
                abort(403, description="access token required (open the URL printed by the controller)")
            g.set_token_cookie = request.args.get("token") is not None
        if request.method not in SAFE_METHODS:
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
            expected = session.get("csrf") or ""
            if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                abort(403, description="missing or wrong CSRF token: reload the page")

    @app.after_request
    def _headers(response):  # noqa: ANN001, ANN202 - Flask hook
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if g.get("set_token_cookie") and access_token:
            response.set_cookie("syncrig_token", access_token, httponly=True, samesite="Strict")
        return response

    app.jinja_env.globals["csrf_token"] = csrf_token
