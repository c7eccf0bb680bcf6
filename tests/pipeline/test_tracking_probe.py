"""The tracking server probe (`hrnet train/evaluate/register` before any work): credentials in
the URI are sent as MLflow's client sends them, and never printed."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hrnet.errors import HRNetError
from hrnet.mlops.tracking import _server_problem, check_server, redacted
from tests.loopback import free_port

USER, PASSWORD = "zoo", "s3cr:et@1"  # ':' and '@' percent-encoded in the URI


@contextmanager
def health_server() -> Iterator[int]:
    """A /health endpoint on 127.0.0.1 behind HTTP Basic auth; yields its port."""
    wanted = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/health" and self.headers.get("Authorization") == wanted
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(b"OK" if ok else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_in_the_uri_reach_the_server() -> None:
    with health_server() as port:
        uri = f"http://{USER}:s3cr%3Aet%401@127.0.0.1:{port}"
        assert _server_problem(uri) is None
        check_server(uri)  # answers: no error


def test_a_server_that_is_down_is_named_without_its_password() -> None:
    uri = f"http://{USER}:s3cr%3Aet%401@127.0.0.1:{free_port()}/"
    with pytest.raises(HRNetError) as err:
        check_server(uri)
    message = str(err.value)
    assert f"http://{USER}:***@127.0.0.1:" in message and "does not answer" in message
    assert "s3cr" not in message
    assert redacted("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redacted("https://a:b@host/path") == "https://a:***@host/path"


def test_warnings_are_plain_text_off_a_terminal(capsys) -> None:
    """In a log file or a pipe (pytest's capture here) no colour codes."""
    from hrnet.mlops.tracking import _warn

    _warn("the server went away")
    assert capsys.readouterr().err == "warning: the server went away\n"


def test_register_compares_scores_not_settings_or_timings(tmp_path) -> None:
    import json

    from hrnet.mlops.tracking import _metric_value

    metrics = {"top1": 0.9, "num_images": 10, "eval_seconds": 2.5, "eval_settings": {"batch_size": 16}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert _metric_value(tmp_path, "top1") == 0.9
    for key in ("eval_seconds", "eval_settings.batch_size", "num_images"):
        with pytest.raises(
            HRNetError, match=f"'{key}' is a setting or a count, not a score \\(scores: top1\\)"
        ):
            _metric_value(tmp_path, key)


def test_the_run_file_holds_no_password(monkeypatch) -> None:
    from hrnet.mlops.tracking import recorded_uri, without_credentials

    assert without_credentials("http://zoo:pw@host:5000/x") == "http://host:5000/x"
    assert without_credentials("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
    record = {"run_id": "r", "tracking_uri": "http://host:5000"}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://zoo:pw@host:5000")  # the same server: its credentials
    assert recorded_uri(record) == "http://zoo:pw@host:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://zoo:pw@other:5000")  # another server: the record's
    assert recorded_uri(record) == "http://host:5000"


def test_a_bad_port_is_a_named_problem_not_a_traceback() -> None:
    assert _server_problem("http://127.0.0.1:abc").startswith("bad URL")
    with pytest.raises(HRNetError, match="does not answer \\(bad URL"):
        check_server("http://127.0.0.1:99999")


def test_a_resumed_run_is_not_closed_again_by_its_old_ending(tmp_path) -> None:
    """The server was down when a training was killed (``pending`` in the run file); the
    training resumed on the same run and finished: the next evaluate must not mark it KILLED."""
    import json

    from mlflow.tracking import MlflowClient

    from hrnet.mlops.tracking import RUN_FILE, Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = Tracker.start(run_dir, params={"lr": 0.1}, row="r", tracking_uri=uri)
    first._record_pending("KILLED", 5)
    first.close()
    assert json.loads((run_dir / RUN_FILE).read_text())["pending"]["status"] == "KILLED"
    again = Tracker.start(run_dir, params={"lr": 0.1}, row="r", tracking_uri=uri, resume=True)
    assert again.run_id == first.run_id and "pending" not in json.loads((run_dir / RUN_FILE).read_text())
    again.finish("FINISHED")
    Tracker.attach(run_dir, uri).close()  # what evaluate and register do
    assert MlflowClient(uri).get_run(first.run_id).info.status == "FINISHED"
