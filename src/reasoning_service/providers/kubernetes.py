"""The Kubernetes API, read-only, through the official client library (`kubernetes`).

Configuration as kubectl finds it: the in-cluster service account when the service runs in a pod, else the
kubeconfig named by KUBECONFIG. Lists come back as the API's raw JSON (the same objects `kubectl get -o json`
prints), which agent_reasoning.adapters reads. The client is synchronous (urllib3): reads run in a thread,
each bounded by the provider's timeout, without retries (a caller waiting on a question wants an answer, not
a retry storm). Errors: ProviderError 503 when the API cannot be reached or does not answer in time, 502
when it refuses (401/403: the service account lacks a permission; deploy/k8s grants them) or answers
something else.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import urlencode

from agent_reasoning.types import Source
from reasoning_service.providers import ProviderError, now_rfc3339

SOURCE = "kubernetes"

# what -> (API path for all namespaces, for one namespace ({ns}), the resource as RBAC names it)
PATHS: dict[str, tuple[str, str, str]] = {
    "nodes": ("/api/v1/nodes", "/api/v1/nodes", "nodes"),
    "pods": ("/api/v1/pods", "/api/v1/namespaces/{ns}/pods", "pods"),
    "pdbs": ("/apis/policy/v1/poddisruptionbudgets", "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", "poddisruptionbudgets"),
    "deployments": ("/apis/apps/v1/deployments", "/apis/apps/v1/namespaces/{ns}/deployments", "deployments"),
    "statefulsets": ("/apis/apps/v1/statefulsets", "/apis/apps/v1/namespaces/{ns}/statefulsets", "statefulsets"),
}

# what -> (API class.method for all namespaces, method for one namespace): the official client's list calls
METHODS: dict[str, tuple[str, str]] = {
    "nodes": ("CoreV1Api.list_node", "list_node"),
    "pods": ("CoreV1Api.list_pod_for_all_namespaces", "list_namespaced_pod"),
    "pdbs": ("PolicyV1Api.list_pod_disruption_budget_for_all_namespaces", "list_namespaced_pod_disruption_budget"),
    "deployments": ("AppsV1Api.list_deployment_for_all_namespaces", "list_namespaced_deployment"),
    "statefulsets": ("AppsV1Api.list_stateful_set_for_all_namespaces", "list_namespaced_stateful_set"),
}

IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def in_cluster() -> bool:
    """Whether this process runs in a pod with a service account token mounted."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(IN_CLUSTER_TOKEN)


class KubernetesProvider:
    """Lists of nodes, pods, PodDisruptionBudgets, Deployments and StatefulSets from one API server.

    Build it with `from_kubeconfig(path)` or `from_service_account()`; `timeout_s` bounds each request.
    """

    def __init__(self, api_client: Any, *, timeout_s: float = 10.0, origin: str = "") -> None:
        self.api = api_client
        self.timeout_s = timeout_s
        self.host = api_client.configuration.host.rstrip("/")
        self.origin = origin  # how it was configured, for messages: "KUBECONFIG=...", "in-cluster service account"

    @classmethod
    def from_kubeconfig(cls, path: str, *, context: str | None = None, timeout_s: float = 10.0) -> KubernetesProvider:
        """From a kubeconfig file (or a KUBECONFIG list of files, ':'-separated). Raises ProviderError 503 when it cannot be read."""
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=path, context=context, client_configuration=configuration, persist_config=False)
        except Exception as e:  # the loader raises ConfigException, OSError, yaml errors...
            raise ProviderError(503, SOURCE, f"cannot load the kubeconfig KUBECONFIG={path}: {e}") from None
        return cls(_api_client(configuration), timeout_s=timeout_s, origin=f"KUBECONFIG={path}")

    @classmethod
    def from_service_account(cls, *, timeout_s: float = 10.0) -> KubernetesProvider:
        """From the pod's service account (KUBERNETES_SERVICE_HOST and the mounted token)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except Exception as e:
            raise ProviderError(503, SOURCE, f"cannot use the in-cluster service account: {e}") from None
        return cls(_api_client(configuration), timeout_s=timeout_s, origin="in-cluster service account")

    async def list(self, what: str, *, namespace: str | None = None, label_selector: str | None = None) -> tuple[dict[str, Any], Source]:
        """`kubectl get <what> [-n namespace | -A] [-l selector] -o json`: the List as parsed JSON, and its Source.

        `what`: a key of PATHS. The list is of one page (no `limit`), as kubectl asks by default."""
        everywhere, one, resource = PATHS[what]
        path = one.format(ns=namespace) if namespace and what != "nodes" else everywhere
        query = {"labelSelector": label_selector} if label_selector and what not in ("nodes", "pdbs") else {}
        url = f"{self.host}{path}" + (f"?{urlencode(query)}" if query else "")
        at = now_rfc3339()
        body = await asyncio.to_thread(self._get, path, query, what, resource, namespace)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise ProviderError(502, SOURCE, f"GET {url} answered {type(body).__name__} without 'items', not a {what} list")
        return body, Source(
            kind=SOURCE, url=url, query=f"list {resource}" + (f" -n {namespace}" if namespace and what != "nodes" else " -A"), at=at
        )

    def _get(self, path: str, query: dict[str, str], what: str, resource: str, namespace: str | None) -> Any:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

        url = f"{self.host}{path}"
        method, namespaced = METHODS[what]
        api = getattr(client, method.split(".")[0])(self.api)
        options: dict[str, Any] = {"_preload_content": False, "_request_timeout": (self.timeout_s, self.timeout_s)}
        if query:
            options["label_selector"] = query["labelSelector"]
        try:
            if namespace and what != "nodes":
                response = getattr(api, namespaced)(namespace, **options)
            else:
                response = getattr(api, method.split(".")[1])(**options)
            data = response.data
        except ApiException as e:
            raise ProviderError(502, SOURCE, self._refusal(e, url, resource, namespace)) from None
        except NewConnectionError as e:  # a ConnectTimeoutError subclass in urllib3, but a refusal, not a wait
            raise ProviderError(503, SOURCE, f"cannot reach the API server {self.host} ({self.origin}): {e}", retry_after=5) from None
        except TimeoutError:
            raise ProviderError(503, SOURCE, f"GET {url} got no answer within {self.timeout_s:g} s", retry_after=5) from None
        except (HTTPError, OSError) as e:
            raise ProviderError(
                503, SOURCE, f"cannot reach the API server {self.host} ({self.origin}): {type(e).__name__}: {e}", retry_after=5
            ) from None
        try:
            return json.loads(data)
        except ValueError:
            raise ProviderError(502, SOURCE, f"GET {url} answered something other than JSON") from None

    def _refusal(self, e: Any, url: str, resource: str, namespace: str | None) -> str:
        message = ""
        try:
            message = json.loads(e.body).get("message", "")
        except (TypeError, ValueError, AttributeError):
            pass
        if e.status in (401, 403):
            scope = f" in namespace {namespace}" if namespace and resource != "nodes" else " at the cluster scope"
            return (
                f"{'forbidden' if e.status == 403 else 'unauthorized'} to list {resource}{scope} ({self.origin}): {message or e.reason}; "
                "the service account needs get/list on nodes, pods, poddisruptionbudgets, deployments and statefulsets "
                "(the ClusterRole in deploy/k8s/kustomize/base/rbac.yaml)"
            )
        return f"GET {url} answered HTTP {e.status} {e.reason}: {message or '(no message)'}"


def _api_client(configuration: Any) -> Any:
    from kubernetes import client

    configuration.retries = False  # urllib3 would retry a refused connection three times, stretching the wait
    return client.ApiClient(configuration)
