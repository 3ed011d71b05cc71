"""Property-based fuzz against the running server: no server errors.

The OpenAPI schema through schemathesis, and POST /events at the byte level in both CloudEvents
modes (headers, content types and bodies cut, spliced, re-encoded), bounded to a few hundred cases.

503 and 504 are answers the API promises (overload, deadline), not failures; anything else of 5xx is.
(Schemathesis drives Hypothesis directly here; its pytest plugin does not support this pytest.)
"""

from __future__ import annotations

import json

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def check_response(case, response) -> None:
    if response.status_code in (503, 504):
        assert response.json()["error"] in ("overloaded", "deadline_exceeded"), response.text
    else:
        assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert {"error", "detail"} <= set(body), body


def test_no_server_errors(server):
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/reason", "/reason", "/v1/tasks", "/events", "/healthz", "/readyz", "/metrics"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            check_response(case, case.call(timeout=60))

        fuzz()


# --- byte-level fuzz of POST /events, both modes ---------------------------------------------------



TOY = {"task": "toy_reverse", "problem": {"sequence": [1, 2, 3, 4, 4, 3, 2, 1]}}
ENVELOPE = {"specversion": "1.0", "id": "f", "source": "/fuzz", "type": "io.homelab.reasoning.requested", "datacontenttype": "application/json", "data": TOY}
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "text/plain",
        "application/octet-stream",
        "",
        ";;;",
        "application/json; charset=",
    ]
)
# what an HTTP/1.1 field value may hold (visible ASCII, space, tab, obs-text 0x80-0xFF), sent as latin-1 bytes
HEADER_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\x7f", categories=None).filter(lambda c: c == "\t" or c >= " "), max_size=40)


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """A valid body cut, spliced with random bytes, or prefixed with a byte-order mark or magic bytes."""
    cut = st.integers(0, len(seed))
    return st.one_of(
        st.binary(max_size=300),
        st.builds(lambda i: seed[:i], cut),
        st.builds(lambda i, junk: seed[:i] + junk + seed[i:], cut, st.binary(min_size=1, max_size=8)),
        st.builds(lambda prefix: prefix + seed, st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x1f\x8b", b"\x00", b"["])),
        st.just(seed.decode().replace("1", "NaN", 1).encode()),
        st.builds(lambda n: b"[" * n + seed, st.integers(1, 5000)),
    )


def check_event_reply(r: httpx.Response) -> None:
    assert r.headers.get("x-request-id"), r.headers
    if r.status_code in (503, 504):
        assert r.json()["error"] in ("overloaded", "deadline_exceeded"), r.text
        return
    assert r.status_code < 500, f"{r.status_code}: {r.text}"
    if r.status_code >= 400:
        assert {"error", "detail"} <= set(r.json()), r.text


def test_events_byte_fuzz_binary_mode(server):
    attributes = st.fixed_dictionaries(
        {},
        optional={
            "ce-specversion": st.one_of(st.just("1.0"), HEADER_TEXT),
            "ce-id": st.one_of(st.uuids().map(str), HEADER_TEXT),
            "ce-source": st.one_of(st.just("/fuzz"), HEADER_TEXT),
            "ce-type": st.one_of(st.just("io.homelab.reasoning.requested"), HEADER_TEXT),
            "ce-time": st.one_of(st.just("2026-01-01T00:00:00Z"), HEADER_TEXT),
            "ce-conversationid": HEADER_TEXT,
            "ce-Bad_Ext": HEADER_TEXT,
            "content-encoding": st.sampled_from(["gzip", "identity", "br"]),
        },
    )

    @given(headers=attributes, content_type=CONTENT_TYPES, body=mutated(json.dumps(TOY).encode()))
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(headers, content_type, body):
        headers = {"ce-specversion": "1.0", **headers, "content-type": content_type}
        raw = [(k.encode("latin-1"), v.strip(" \t").encode("latin-1")) for k, v in headers.items()]
        check_event_reply(httpx.post(server + "/events", content=body, headers=raw, timeout=60))

    fuzz()


def test_events_byte_fuzz_structured_mode(server):
    envelopes = st.fixed_dictionaries(
        {},
        optional={
            k: st.one_of(st.just(v), st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=2))
            for k, v in {**ENVELOPE, "time": "2026-01-01T00:00:00Z", "data_base64": "e30="}.items()
        },
    ).map(lambda e: json.dumps(e).encode())

    @given(content_type=CONTENT_TYPES, body=st.one_of(envelopes, mutated(json.dumps(ENVELOPE).encode())))
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(content_type, body):
        check_event_reply(httpx.post(server + "/events", content=body, headers={"content-type": content_type}, timeout=60))

    fuzz()
