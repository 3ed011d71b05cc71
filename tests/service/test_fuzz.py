"""Property-based fuzz of the OpenAPI schema against the running server: no server errors.

503 and 504 are answers the API promises (overload, deadline), not failures; anything else of 5xx is.
(Schemathesis drives Hypothesis directly here; its pytest plugin does not support this pytest.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings


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
