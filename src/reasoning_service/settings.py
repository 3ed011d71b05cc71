"""Service settings from the environment (prefix REASONING_; PORT as Knative sets it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """The service's settings, read from REASONING_* environment variables (PORT too); each field's comment says what it does.

    Invalid values raise pydantic's ValidationError at start-up, naming the variable.
    """
    model_config = SettingsConfigDict(env_prefix="REASONING_", env_file=None, extra="ignore")

    host: str = "0.0.0.0"
    port: int = Field(8080, validation_alias=AliasChoices("PORT", "REASONING_PORT"), ge=1, le=65535)
    models_dir: Path = Path("models")  # one subdirectory per model (model.safetensors + config.json)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # "auto" (default): bf16 weights where the hardware computes bf16 natively (CUDA; CPUs with
    # AVX512-BF16 or AMX: there it served the Sudoku model 2.3x faster than fp32 at the same accuracy,
    # bench/engine.py 1b), else fp32: an AVX2-only CPU emulates bf16 and stepped 8.5x slower in it.
    dtype: Literal["auto", "bf16", "fp32"] = "auto"
    torch_threads: int = Field(0, ge=0)  # 0: torch's default
    # samples stepped together per model; "auto": the smallest batch whose cost per sample is within 15%
    # of the best, from step costs stored with the model for this machine, else 8 on CPU, 64 on GPU (trm.engine.auto_slots)
    engine_slots: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = "auto"
    queue_size: int = Field(256, ge=0)  # waiting requests per model before 503
    default_deadline_ms: int = Field(30_000, ge=1)
    # the exact solver's time limit (CP-SAT for placement and upgrade) when a request gives no budget_ms:
    # it answers tasks without a model, problems beyond a model's canvas, and `mode: exact`
    solver_budget_ms: int = Field(5_000, ge=10, le=600_000)
    max_request_bytes: int = Field(1_048_576, ge=1024)
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)  # comma separated; none by default
    api_token: str | None = None  # when set, every /v1 and /reason call needs "Bearer <token>"
    # Knative brokers send no token: /events stays open unless this is set (then only token-sending callers can post events)
    events_require_token: bool = False
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    keepalive_seconds: int = Field(75, ge=1)  # above the Knative queue-proxy's idle timeout
    event_cache_size: int = Field(1024, ge=0)  # replies remembered for duplicate (source, id) events
    event_source: str = "/agent-reasoning"  # `source` of reply events
    warmup: bool = True  # one solve per model before /readyz turns ready
    retry_after_seconds: int = Field(1, ge=1)  # Retry-After on 503
    # Providers, for questions without a problem (docs/integration-guide.md). Kubernetes: the standard
    # KUBECONFIG, else the in-cluster service account. Prometheus: its base URL; "auto" metrics try the
    # service-graph (Tempo/Alloy), Istio and Linkerd templates in turn (reasoning_service/providers/prometheus.py).
    kubeconfig: str | None = Field(None, validation_alias=AliasChoices("KUBECONFIG", "REASONING_KUBECONFIG"))
    kubernetes_in_cluster: bool = True  # use the service account when running in a pod
    prometheus_url: str | None = None
    prometheus_metrics: Literal["auto", "service_graph", "istio", "linkerd"] = "auto"
    prometheus_window: str = Field("5m", pattern=r"^\d+[smhdw]$")  # rate window of "now"
    prometheus_normal_window: str = Field("1h", pattern=r"^\d+[smhdw]$")  # the normal window: this long...
    prometheus_normal_offset: str = Field("1h", pattern=r"^\d+[smhdw]$")  # ...ending this long ago
    # PromQL templates ($window, $offset, $selector); empty: the default of the chosen metrics
    promql_error_ratio: str = ""
    promql_latency_p99: str = ""
    promql_edges: str = ""
    provider_timeout_seconds: float = Field(10.0, gt=0, le=120)  # per request to the Kubernetes API or Prometheus
    plan_time_limit_seconds: float = Field(10.0, gt=0, le=300)  # CP-SAT, per phase of a consolidation plan
    ui_enabled: bool = True  # GET / serves the web page (public, holds no data; its API calls need the token)
    # free-text questions: an Ollama server that extracts the problem (REASONING_LLM_URL, e.g.
    # http://ollama:11434) and the model it runs (REASONING_LLM_MODEL, e.g. qwen3:8b); unset: no extraction
    llm_url: str | None = None
    llm_model: str | None = None
    llm_timeout_seconds: float = Field(120.0, gt=0)  # one extraction (a cold model loads first)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v
