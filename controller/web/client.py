"""A small Python client of the controller's HTTP API (described at `/api/openapi.json`): it keeps
the session cookie, fetches the CSRF token once (`GET /api/csrf`) and sends it with every
state-changing request, passes the access token to a controller bound to a network address, and
turns error answers into `ApiError` (status, message, field). Standard library only.

    import time
    from controller.web.client import SyncRigClient

    api = SyncRigClient("http://localhost:5000")
    job = api.wait_job(api.start_recording(seconds=10, subject="m7")["job_id"])
    print(job["result"]["session_id"])
    api.create_schedule(every_s=3600, duration_s=600, until=time.time() + 12 * 3600, min_free_gb=50)
"""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiError(Exception):
    """An error answer: `status` (HTTP), the server's message, and the request field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}" + (f" (field {field})" if field else ""))
        self.status = status
        self.message = message
        self.field = field


class SyncRigClient:
    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        """`token`: the access token a controller bound to a network address prints (not needed
        on this machine)."""
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self._csrf: str | None = None

    # -- transport ---------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One call; the decoded JSON answer, or ApiError."""
        method = method.upper()
        url = self.base + path
        if self.token:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"token": self.token})
        headers = {"Accept": "application/json"}
        data = None
        if body is not None or method not in SAFE_METHODS:
            data = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        if method not in SAFE_METHODS:
            headers["X-CSRF-Token"] = self.csrf_token()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {"error": raw.decode(errors="replace")[:200] or exc.reason}
            raise ApiError(exc.code, str(answer.get("error")), answer.get("field")) from None

    def csrf_token(self) -> str:
        if self._csrf is None:
            self._csrf = self.request("GET", "/api/csrf")["csrf_token"]
        return self._csrf

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def post(self, path: str, body: dict | None = None) -> dict:
        return self.request("POST", path, body)

    # -- the API -----------------------------------------------------------------------------
    def openapi(self) -> dict:
        return self.get("/api/openapi.json")

    def status(self) -> dict:
        return self.get("/api/status")

    def start_recording(
        self,
        seconds: float | None = None,
        subject: str | None = None,
        project: str | None = None,
        override: bool = False,
    ) -> dict:
        body = {"seconds": seconds, "subject": subject, "project": project, "override": override}
        return self.post("/api/recording/start", body)

    def stop_recording(self) -> dict:
        return self.post("/api/recording/stop")

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/jobs/{urllib.parse.quote(job_id)}")

    def wait_job(self, job_id: str, timeout_s: float = 120.0, poll_s: float = 0.2) -> dict:
        """Until the job has finished (done, failed or cancelled); TimeoutError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["state"] not in ("queued", "running"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout_s} s")
            time.sleep(poll_s)

    def sessions(self) -> dict:
        return self.get("/api/sessions")

    def session(self, session_id: str) -> dict:
        return self.get(f"/api/sessions/{urllib.parse.quote(session_id)}")

    def schedules(self) -> list[dict]:
        return self.get("/api/schedules")["schedules"]

    def create_schedule(self, **fields: object) -> dict:
        """Fields as in the `ScheduleFields` schema: every_s, duration_s, start_at, until, name,
        subject, project, min_free_gb, override_preflight, enabled."""
        return self.post("/api/schedules", fields)

    def update_schedule(self, schedule_id: str, **fields: object) -> dict:
        return self.request("PUT", f"/api/schedules/{urllib.parse.quote(schedule_id)}", fields)

    def delete_schedule(self, schedule_id: str) -> dict:
        return self.request("DELETE", f"/api/schedules/{urllib.parse.quote(schedule_id)}")
