"""CloudEvents in binary and structured mode, replies parsed with the SDK, duplicates solved once."""

from __future__ import annotations

import json

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from prometheus_client.parser import text_string_to_metric_families

FORMAT = JSONFormat()
TOY = {"task": "toy_reverse", "problem": {"sequence": [1, 2, 3, 4, 4, 3, 2, 1]}, "conversation_id": "conv-7"}


def event(data, *, type_="io.homelab.reasoning.requested", source="/tests", id_=None):
    attributes = {"type": type_, "source": source, "datacontenttype": "application/json"}
    if id_:
        attributes["id"] = id_
    return CloudEvent(attributes=attributes, data=data)


def post(server, ev, mode):
    message = to_binary(ev, FORMAT) if mode == "binary" else to_structured(ev, FORMAT)
    return httpx.post(server + "/events", content=message.body, headers=message.headers, timeout=60)


def parse_reply(r):
    return from_http(HTTPMessage(headers=dict(r.headers), body=r.content), FORMAT)


def counter(server, name, **labels):
    for family in text_string_to_metric_families(httpx.get(server + "/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_request_event_gets_a_completed_reply(server, mode):
    ev = event(TOY)
    r = post(server, ev, mode)
    assert r.status_code == 200, r.text
    reply = parse_reply(r)
    assert reply.get_type() == "io.homelab.reasoning.completed"
    assert reply.get_extension("requestid") == ev.get_id()
    assert reply.get_extension("conversationid") == "conv-7"
    assert reply.get_datacontenttype() == "application/json"
    data = reply.get_data()
    data = json.loads(data) if isinstance(data, (bytes, str)) else data
    assert data["task"] == "toy_reverse" and data["conversation_id"] == "conv-7" and "solution" in data
    if mode == "structured":
        assert r.headers["content-type"].startswith("application/cloudevents+json")
    else:
        assert r.headers["ce-type"] == "io.homelab.reasoning.completed"


def test_duplicate_event_is_solved_once(server):
    before = counter(server, "agent_reasoning_requests_total", task="toy_reverse", outcome="ok")
    dup_before = counter(server, "agent_reasoning_events_total", type="io.homelab.reasoning.requested", outcome="duplicate")
    ev = event(TOY, id_="dup-1", source="/tests/dup")
    first, second = post(server, ev, "binary"), post(server, ev, "binary")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert parse_reply(second).get_extension("requestid") == "dup-1"
    assert counter(server, "agent_reasoning_requests_total", task="toy_reverse", outcome="ok") == before + 1
    assert counter(server, "agent_reasoning_events_total", type="io.homelab.reasoning.requested", outcome="duplicate") == dup_before + 1
    # the same id from another source is another event
    post(server, event(TOY, id_="dup-1", source="/tests/other"), "binary")
    assert counter(server, "agent_reasoning_requests_total", task="toy_reverse", outcome="ok") == before + 2


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"task": "toy_reverse", "problem": {"sequence": [9] * 8}}, "invalid_problem"),
        ({"problem": {}}, "invalid_request"),
        ({"task": "nope", "problem": {}}, "unknown_task"),
    ],
)
def test_bad_input_gets_a_failed_reply_with_200(server, data, kind):
    r = post(server, event(data), "binary")
    assert r.status_code == 200  # final: the broker must not retry
    reply = parse_reply(r)
    assert reply.get_type() == "io.homelab.reasoning.failed"
    body = reply.get_data()
    body = json.loads(body) if isinstance(body, (bytes, str)) else body
    assert body["error"] == kind and body["detail"]


def test_unknown_type_is_400_and_garbage_is_400(server):
    r = post(server, event(TOY, type_="io.homelab.something.else"), "binary")
    assert r.status_code == 400 and "unsupported event type" in r.json()["detail"]
    r = httpx.post(server + "/events", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    r = httpx.post(server + "/events", content=b"{}", headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 400


HEADERS = {"ce-specversion": "1.0", "ce-id": "ctx-1", "ce-source": "/tests/ctx", "ce-type": "io.homelab.reasoning.requested", "content-type": "application/json"}
ENVELOPE = {"specversion": "1.0", "id": "ctx-1", "source": "/tests/ctx", "type": "io.homelab.reasoning.requested", "datacontenttype": "application/json", "data": TOY}


@pytest.mark.parametrize("attribute", ["id", "source", "type", "specversion"])
def test_every_required_context_attribute_is_checked_in_both_modes(server, attribute):
    # without `id` the SDK would invent one: a redelivery would be solved twice and the reply unmatchable
    binary = {k: v for k, v in HEADERS.items() if k != f"ce-{attribute}"}
    r = httpx.post(server + "/events", content=json.dumps(TOY).encode(), headers=binary)
    assert r.status_code == 400 and f"ce-{attribute} is missing" in r.json()["detail"], r.text
    structured = {k: v for k, v in ENVELOPE.items() if k != attribute}
    r = httpx.post(server + "/events", json=structured, headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 400 and f"attribute {attribute} is missing" in r.json()["detail"], r.text
    r = httpx.post(server + "/events", content=json.dumps(TOY).encode(), headers={**HEADERS, f"ce-{attribute}": ""})
    assert r.status_code == 400 and "non-empty string" in r.json()["detail"]
    r = httpx.post(server + "/events", json={**ENVELOPE, attribute: 7}, headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 400 and "non-empty string" in r.json()["detail"]


def test_spec_version_and_time_are_checked(server):
    for version in ("0.3", "2.0", "1"):
        r = httpx.post(server + "/events", content=json.dumps(TOY).encode(), headers={**HEADERS, "ce-specversion": version})
        assert r.status_code == 400 and f"specversion {version!r} is not supported" in r.json()["detail"]
        r = httpx.post(server + "/events", json={**ENVELOPE, "specversion": version}, headers={"content-type": "application/cloudevents+json"})
        assert r.status_code == 400 and "is not supported; send '1.0'" in r.json()["detail"]
    r = httpx.post(server + "/events", content=json.dumps(TOY).encode(), headers={**HEADERS, "ce-time": "yesterday"})
    assert r.status_code == 400 and "ce-time 'yesterday' is not an RFC 3339 timestamp" in r.json()["detail"]


def test_batch_mode_says_it_is_not_supported(server):
    batch = json.dumps([ENVELOPE]).encode()
    r = httpx.post(server + "/events", content=batch, headers={"content-type": "application/cloudevents-batch+json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("batch mode (application/cloudevents-batch+json) is not supported"), r.text
    r = httpx.post(server + "/events", content=batch, headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 400 and "batch mode" in r.json()["detail"] and "object has no attribute" not in r.text
    assert counter(server, "agent_reasoning_events_total", type="invalid", outcome="batch") >= 2


def test_structured_envelope_problems_are_400_naming_them(server):
    for body, fragment in (
        (b'"just a string"', "a structured event is a JSON object"),
        (json.dumps({**ENVELOPE, "data_base64": "abc", "data": None}).encode(), "not a valid CloudEvent"),
        (json.dumps({**ENVELOPE, "Bad_Ext": "x"}).encode(), "not a valid CloudEvent"),
    ):
        r = httpx.post(server + "/events", content=body, headers={"content-type": "application/cloudevents+json"})
        assert r.status_code == 400 and fragment in r.json()["detail"], (body, r.text)
