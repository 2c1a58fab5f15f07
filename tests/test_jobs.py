"""Background jobs: Cancel stops a job at its next progress report (even past code that reports one
item's failure and goes on), some kinds cannot stop half-way, and every log line has its time."""

from __future__ import annotations

import re
import threading

from controller.jobs import JobContext, JobRunner

STAMPED = re.compile(r"^\d\d:\d\d:\d\d ")


def test_cancel_stops_a_job_at_its_next_progress_report() -> None:
    runner = JobRunner()
    started, reported = threading.Event(), []

    def work(ctx: JobContext) -> str:
        started.set()
        for i in range(2000):
            try:
                ctx.progress(i / 2000, f"item {i}")
            except Exception:  # one item's failure is reported and the loop goes on: not a Cancel
                reported.append(i)
            threading.Event().wait(0.005)
        return "finished"

    try:
        job = runner.submit("sync", "Sync something", work)
        assert started.wait(10)
        assert runner.cancel(job.id)
        done = runner.wait(job.id, timeout=10)
        assert done.state == "cancelled" and done.result is None and not reported
        assert done.to_dict()["cancel_requested"] and not done.to_dict()["cancellable"]
        lines = list(done.log)
        assert all(STAMPED.match(line) for line in lines), lines
        assert "started: Sync something" in lines[0] and "cancel requested by the user" in lines[1]
        assert "cancelled after" in lines[-1]
    finally:
        runner.shutdown()


def test_a_deploy_cannot_be_cancelled_half_way_and_a_failure_is_logged_with_times() -> None:
    runner = JobRunner()
    release = threading.Event()
    try:
        deploy = runner.submit("deploy", "Deploy", lambda ctx: release.wait(10))
        assert not deploy.to_dict()["cancellable"] and not runner.cancel(deploy.id)
        release.set()
        assert runner.wait(deploy.id, timeout=10).state == "done"

        def fail(ctx: JobContext) -> None:
            ctx.log("about to fail\nover two lines")
            raise RuntimeError("disk full")

        failed = runner.wait(runner.submit("pull", "Pull", fail).id, timeout=10)
        assert failed.state == "failed" and failed.error == "disk full"
        lines = list(failed.log)
        assert all(STAMPED.match(line) for line in lines), lines  # the traceback's lines too
        assert any(line.endswith("over two lines") for line in lines)
        assert "failed after" in lines[-1] and lines[-1].endswith(": disk full")
    finally:
        runner.shutdown()
