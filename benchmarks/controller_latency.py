"""How fast the controller's pages get their data, idle and while a recording and a pre-flight run:
GET /api/status over real HTTP against a simulated 3-camera rig, against the baseline of asking cam0
directly (one STATUS round trip over the control link, what a blocking handler would cost).

    .venv/bin/python benchmarks/controller_latency.py [--requests 400]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from werkzeug.serving import make_server  # noqa: E402

from controller.rig.simulated import SimCamera, SimulatedRig  # noqa: E402
from controller.runtime import ControllerRuntime  # noqa: E402
from controller.web import create_app  # noqa: E402

from _common import stats_us  # noqa: E402


def timed_gets(port: int, path: str, n: int) -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        conn.request("GET", path, headers={"Host": "localhost"})
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter_ns() - t)
    conn.close()
    return out


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncrig-bench-") as tmp:
        rig = SimulatedRig(Path(tmp) / "rig", [SimCamera(f"cam{i}") for i in range(3)], width=640, height=360)
        rig.start()
        try:
            rig.write_rig_config(Path(tmp) / "rig.json", fps=30.0)
            runtime = ControllerRuntime(Path(tmp) / "rig.json", poll_interval_s=1.0).start()
            server = make_server("127.0.0.1", 0, create_app(runtime), threaded=True)
            import threading

            threading.Thread(target=server.serve_forever, daemon=True).start()
            port = server.server_port
            time.sleep(2.0)
            with rig.link() as link:
                direct = []
                for _ in range(args.requests):
                    t = time.perf_counter_ns()
                    link.status()
                    direct.append(time.perf_counter_ns() - t)
            idle = timed_gets(port, "/api/status", args.requests)
            # Busy: a recording and a pre-flight (a clock burst over every link) in flight.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/", headers={"Host": "localhost"})
            resp = conn.getresponse()
            cookie = resp.getheader("Set-Cookie").split(";")[0]
            csrf = re.search(rb'name="csrf-token" content="([^"]+)"', resp.read()).group(1).decode()
            headers = {
                "Host": "localhost",
                "Cookie": cookie,
                "X-CSRF-Token": csrf,
                "Content-Type": "application/json",
            }
            conn.request(
                "POST",
                "/api/recording/start",
                body=json.dumps({"seconds": 30, "override": True}),
                headers=headers,
            )
            conn.getresponse().read()
            time.sleep(1.0)
            busy: list[int] = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(busy) < 4 * args.requests:
                conn.request("POST", "/api/preflight", body=json.dumps({"seconds": 10}), headers=headers)
                conn.getresponse().read()
                busy += timed_gets(port, "/api/status", args.requests // 4)
            conn.request("POST", "/api/recording/stop", body="{}", headers=headers)
            conn.getresponse().read()
            conn.close()
            time.sleep(3.0)
            server.shutdown()
            runtime.close()
        finally:
            rig.stop()
    rows = [
        ("cam0 STATUS round trip (blocking baseline)", direct),
        ("GET /api/status, rig idle", idle),
        ("GET /api/status, recording + pre-flight", busy),
    ]
    print(f"{'':48s} {'n':>6s} {'p50 µs':>9s} {'p99 µs':>9s} {'max µs':>9s}")
    for label, values in rows:
        s = stats_us(values)
        print(f"{label:48s} {len(values):6d} {s['p50']:9.0f} {s['p99']:9.0f} {s['max']:9.0f}")
    b, i = stats_us(busy), stats_us(idle)
    # Handlers read the poller's snapshot: a recording and pre-flight in flight must not slow them.
    print(f"busy / idle: p50 {b['p50'] / i['p50']:.2f}x, p99 {b['p99'] / i['p99']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
