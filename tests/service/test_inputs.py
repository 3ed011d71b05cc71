"""Every input path decodes bytes the same way: POST /v1/reason, /events in binary and structured
mode, and `trm solve` from a file. The same bytes are accepted everywhere or refused everywhere,
with the same reason; refusals are a 4xx (or a `failed` reply event), never a 5xx."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

from trm.cli import main as trm_main

REQUEST = {"task": "toy_reverse", "problem": {"sequence": [1, 2, 3, 4, 4, 3, 2, 1]}, "conversation_id": "café"}
CE = {"ce-specversion": "1.0", "ce-source": "/tests/inputs", "ce-type": "io.homelab.reasoning.requested"}

# name -> (JSON text -> bytes, None if accepted else a fragment of the reason given everywhere)
ENCODINGS = {
    "utf-8": (lambda t: t.encode(), None),
    "utf-8 with byte-order mark": (lambda t: b"\xef\xbb\xbf" + t.encode(), None),
    "latin-1": (lambda t: t.encode("latin-1"), "not valid UTF-8: byte 0xe9"),
    "utf-16": (lambda t: t.encode("utf-16"), "is UTF-16"),
    "gzip": (lambda t: gzip.compress(t.encode()), "gzip-compressed"),
    "truncated": (lambda t: t.encode()[:-3], "truncated?"),
    "NaN": (lambda t: t.replace('"café"', "NaN").encode(), "holds NaN, which is not JSON"),
    "5001-digit integer": (lambda t: t.replace('"café"', "1" + "0" * 5000).encode(), "a number too long to read"),
}


def reply_data(r: httpx.Response) -> tuple[str, dict]:
    event = from_http(HTTPMessage(headers=dict(r.headers), body=r.content), JSONFormat())
    data = event.get_data()
    return event.get_type(), json.loads(data) if isinstance(data, (bytes, str)) else data


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_every_path_treats_the_same_bytes_the_same_way(server, toy_model_dir, tmp_path, capsys, name):
    encode, refused = ENCODINGS[name]
    text = json.dumps(REQUEST, ensure_ascii=False)

    r = httpx.post(server + "/v1/reason", content=encode(text), headers={"content-type": "application/json"}, timeout=120)
    assert "x-request-id" in r.headers
    if refused:
        assert r.status_code in (400, 415) and refused in r.json()["detail"], r.text
    else:
        assert r.status_code == 200 and r.json()["conversation_id"] == "café", r.text

    # binary mode: the body is the event's data; bad data is a final `failed` reply, not a retry
    r = httpx.post(server + "/events", content=encode(text), headers={**CE, "ce-id": f"bin-{name}", "content-type": "application/json"}, timeout=120)
    assert r.status_code == 200, r.text
    kind, data = reply_data(r)
    if refused:
        assert kind == "io.homelab.reasoning.failed" and refused in data["detail"], data
        assert data["error"] in ("bad_request", "unsupported_media_type")
    else:
        assert kind == "io.homelab.reasoning.completed" and data["conversation_id"] == "café", data

    # structured mode: the same encoding applied to the whole envelope
    envelope = {"specversion": "1.0", "id": f"st-{name}", "source": "/tests/inputs", "type": "io.homelab.reasoning.requested", "datacontenttype": "application/json", "data": REQUEST}
    r = httpx.post(server + "/events", content=encode(json.dumps(envelope, ensure_ascii=False)), headers={"content-type": "application/cloudevents+json"}, timeout=120)
    if refused:
        assert r.status_code in (400, 415) and refused in r.json()["detail"] and "x-request-id" in r.headers, r.text
    else:
        assert r.status_code == 200 and reply_data(r)[0] == "io.homelab.reasoning.completed", r.text

    out, _ = toy_model_dir
    path = tmp_path / "problem.json"
    path.write_bytes(encode(text))
    code = trm_main(["solve", "--model", str(out), str(path), "--json"])
    captured = capsys.readouterr()
    if refused:
        assert code == 2 and refused in captured.err, captured.err
    else:
        assert code in (0, 1) and json.loads(captured.out)["steps"] >= 1


def test_a_declared_charset_other_than_utf8_and_a_content_encoding_are_415(server):
    body = json.dumps(REQUEST).encode()
    for path, extra in (("/v1/reason", {}), ("/events", {})):
        r = httpx.post(server + path, content=body, headers={"content-type": "application/json", "content-encoding": "gzip", **extra})
        assert r.status_code == 415 and "Content-Encoding" in r.json()["detail"], r.text
    r = httpx.post(server + "/v1/reason", content=body, headers={"content-type": "application/json; charset=iso-8859-1"})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type" and "iso-8859-1" in r.json()["detail"]
    assert httpx.post(server + "/v1/reason", content=body, headers={"content-type": "application/json; charset=UTF-8"}).status_code == 200
    envelope = {"specversion": "1.0", "id": "cs-1", "source": "/tests/inputs", "type": "io.homelab.reasoning.requested", "data": REQUEST}
    r = httpx.post(server + "/events", content=json.dumps(envelope).encode(), headers={"content-type": "application/cloudevents+json; charset=latin-1"})
    assert r.status_code == 415 and "latin-1" in r.json()["detail"]
    r = httpx.post(server + "/events", content=body, headers={**CE, "ce-id": "cs-2", "content-type": "application/json; charset=latin-1"})
    kind, data = reply_data(r)
    assert r.status_code == 200 and kind == "io.homelab.reasoning.failed" and data["error"] == "unsupported_media_type"


def test_the_issue_case_latin1_binary_event_is_a_failed_reply_with_a_request_id(server):
    r = httpx.post(server + "/events", content='{"task": "café"}'.encode("latin-1"), headers={**CE, "ce-id": "latin-1", "content-type": "application/json"})
    assert r.status_code == 200 and r.headers.get("x-request-id")
    kind, data = reply_data(r)
    assert kind == "io.homelab.reasoning.failed" and data["error"] == "bad_request" and "UTF-8" in data["detail"]


def test_header_limits(server):
    r = httpx.get(server + "/healthz", headers={"x-big": "a" * 100_000})
    assert r.status_code == 431 and r.json()["error"] == "headers_too_large" and "x-big" in r.json()["detail"]
    assert "x-request-id" in r.headers
    many = {f"x-h{i}": "v" for i in range(150)}
    assert httpx.get(server + "/healthz", headers=many).status_code == 431
    total = {f"x-h{i}": "a" * 4000 for i in range(10)}  # each field fine, 40 KB together
    r = httpx.get(server + "/healthz", headers=total)
    assert r.status_code == 431 and "in all" in r.json()["detail"]
    assert httpx.get(server + "/healthz", headers={"x-fine": "a" * 4000}).status_code == 200


def test_body_limit_applies_to_events_too(server):
    r = httpx.post(server + "/events", content=b"{" + b" " * 2_000_000 + b"}", headers={**CE, "ce-id": "big", "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_python_m_reasoning_service_caps_the_header_block_at_the_transport(tmp_path):
    """The production entry point (h11 with a buffer cap): no header block is buffered without bound."""
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "REASONING_HOST": "127.0.0.1", "REASONING_MODELS_DIR": str(tmp_path), "REASONING_LOG_FORMAT": "text"}
    proc = subprocess.Popen([sys.executable, "-m", "reasoning_service"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the service did not start"
            time.sleep(0.2)
        # a header block that arrives whole (one socket read, up to 256 KiB) reaches HeaderLimit: 431
        r = httpx.get(url + "/healthz", headers={"x-big": "a" * 100_000})
        assert r.status_code == 431 and r.json()["error"] == "headers_too_large"
        # a larger one is cut off by h11 once 64 KiB of it wait incomplete, before any app code runs
        # (h11 answers 400 and closes; the client may see the close before the answer while sending)
        try:
            r = httpx.get(url + "/healthz", headers={"x-big": "a" * 1_000_000})
            assert r.status_code == 400 and "Invalid HTTP request" in r.text, r.text
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            pass
        assert httpx.get(url + "/healthz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_an_unhandled_error_is_a_json_500_with_the_request_id(tmp_path):
    from reasoning_service.app import create_app
    from reasoning_service.settings import Settings

    from .server import running_server

    app = create_app(Settings(models_dir=tmp_path, log_format="text"))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with running_server(app.state.service.settings, app=app) as url:
        r = httpx.get(url + "/boom", headers={"x-request-id": "trace-me"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "trace-me"
    assert r.json() == {"error": "internal", "detail": "internal error; see the service logs", "field": None}
