"""Simulated incidents for the root-cause task: service graphs, normal windows, a fault that spreads.

Graph families (random shapes of a given size):
    layered, fanout, shared_db   the training shapes
    chain, mixed                 shapes kept out of training (unseen)
Fixed demo topologies (the public architecture diagrams of the microservice demos that RCA
benchmarks such as RCAEval inject faults into), a fault at any service:
    boutique      Google's Online Boutique, 11 services
    sockshop      Weaveworks' Sock Shop, 15 services (edge router, front end, 7 services, queue, stores)
    socialnet     DeathStarBench social network, 28 services (Thrift services, memcached/MongoDB/Redis)
    trainticket   Train Ticket (FudanSELab), a faithful 64-service subset: the UI gateway, 41
                  business services and 22 of their MongoDB stores

Incident model. Every service has a normal level (error rate and p99) and noise; a normal window is
12 samples of it (median and 1.4826 x MAD are what the problem carries). The fault raises errors,
latency or both at the root; it spreads to callers (transitively) with a per-edge probability,
attenuated or amplified (retries) on the way. Noise: unrelated anomalous services (bystanders),
chronically noisy services whose raw levels look bad but are their normal, unknown signals, wrong
or missing flags, and sometimes a root whose own signals are weaker than its callers'.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agent_reasoning.types import RootCauseProblem, ServiceSignal

FAMILIES = ("layered", "fanout", "shared_db", "chain", "mixed")

NAMES = {
    "gateway": ("traefik", "nginx", "envoy", "caddy", "haproxy"),
    "frontend": ("web", "homepage", "grafana", "immich-web", "jellyfin", "nextcloud", "home-assistant"),
    "service": (
        "auth",
        "authelia",
        "api",
        "search",
        "thumbnailer",
        "immich-server",
        "paperless",
        "gitea",
        "notifier",
        "scheduler",
        "immich-ml",
        "media",
        "syncthing",
        "backup",
        "users",
        "orders",
        "catalog",
        "webhooks",
    ),
    "db": ("postgres", "mariadb", "mongodb", "influxdb"),
    "cache": ("redis", "memcached", "valkey"),
    "queue": ("rabbitmq", "mosquitto", "nats"),
    "storage": ("minio", "nfs"),
}
# p99 latency (ms) of a healthy service of each role: log-uniform between these
BASE_LATENCY = {
    "gateway": (10, 60),
    "frontend": (40, 300),
    "service": (15, 200),
    "db": (2, 30),
    "cache": (0.3, 3),
    "queue": (1, 10),
    "storage": (5, 60),
}
STORES = ("db", "db", "cache", "queue", "storage")
WINDOW = 12  # samples in a normal window (1 h at 5 min)


class _Graph:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.roles: list[str] = []
        self.names: list[str] = []
        self.edges: set[tuple[int, int]] = set()

    def add(self, role: str, name: str | None = None) -> int:
        if name is None:
            pool = NAMES[role]
            base = pool[int(self.rng.integers(len(pool)))]
            name, k = base, 1
            while name in self.names:
                k += 1
                name = f"{base}-{k}"
        self.roles.append(role)
        self.names.append(name)
        return len(self.names) - 1

    def store(self) -> int:
        return self.add(STORES[int(self.rng.integers(len(STORES)))])

    def call(self, a: int, b: int) -> None:
        if a != b:
            self.edges.add((a, b))

    def pick(self, items: list[int], lo: int, hi: int) -> list[int]:
        k = min(len(items), int(self.rng.integers(lo, hi + 1)))
        return [items[i] for i in self.rng.choice(len(items), size=k, replace=False)]

    def has_caller(self, v: int) -> bool:
        return any(b == v for _, b in self.edges)


# --- random shapes of n services -------------------------------------------------------------------


def _layered(g: _Graph, n: int) -> None:
    """Gateway -> 1-3 front ends -> services (a few calls among them) -> stores (about a quarter)."""
    rng = g.rng
    gateway = g.add("gateway")
    fronts = [g.add("frontend") for _ in range(int(rng.integers(1, min(3, n - 3) + 1)))]
    rest = n - 1 - len(fronts)
    n_stores = max(1, min(rest - 1, int(round(rest * rng.uniform(0.2, 0.4)))))
    services = [g.add("service") for _ in range(rest - n_stores)]
    stores = [g.store() for _ in range(n_stores)]
    for f in fronts:
        g.call(gateway, f)
        for s in g.pick(services, 1, 3):
            g.call(f, s)
    p_side = min(0.15, 2.0 / len(services))
    for k, s in enumerate(services):
        if not g.has_caller(s):
            g.call(fronts[int(rng.integers(len(fronts)))], s)
        for t in services[k + 1 :]:
            if rng.random() < p_side:
                g.call(s, t)
        for d in g.pick(stores, 1, 2):
            g.call(s, d)
    for d in stores:
        if not g.has_caller(d):
            g.call(services[int(rng.integers(len(services)))], d)


def _fanout(g: _Graph, n: int) -> None:
    """A gateway calling many services directly; some have a store of their own."""
    rng = g.rng
    gateway = g.add("gateway")
    left = n - 1
    while left > 0:
        s = g.add("service")
        g.call(gateway, s)
        left -= 1
        if left > 0 and rng.random() < 0.3:
            g.call(s, g.store())
            left -= 1


def _shared_db(g: _Graph, n: int) -> None:
    """Services behind a gateway sharing one database (and maybe a second store)."""
    rng = g.rng
    gateway = g.add("gateway")
    second_store = n >= 5 and rng.random() < 0.6
    services = [g.add("service") for _ in range(n - 2 - int(second_store))]
    db = g.add("db")
    second = g.add(STORES[2 + int(rng.integers(3))]) if second_store else None
    for k, s in enumerate(services):
        g.call(gateway, s)
        if k < 2 or rng.random() < 0.85:
            g.call(s, db)
        if second is not None and (k == 0 or rng.random() < 0.4):
            g.call(s, second)


def _chain(g: _Graph, n: int) -> None:
    """A long call chain ending in a store, with a few side stores."""
    rng = g.rng
    sides = int(rng.integers(0, min(4, n - 3) + 1))
    chain = [g.add("gateway")] + [g.add("service") for _ in range(n - 2 - sides)] + [g.store()]
    for a, b in zip(chain, chain[1:], strict=False):
        g.call(a, b)
    for _ in range(sides):
        g.call(chain[int(rng.integers(1, len(chain) - 1))], g.store())


def _mixed(g: _Graph, n: int) -> None:
    """A random layered DAG: every service has 1-2 callers among the earlier ones, plus a few shortcuts."""
    rng = g.rng
    g.add("gateway")
    for k in range(1, n):
        g.add("service" if k < n * 0.65 else STORES[int(rng.integers(len(STORES)))])
        for a in g.pick(list(range(k)), 1, 2):
            g.call(a, k)
    for _ in range(int(rng.integers(0, 3))):
        a, b = sorted(int(v) for v in rng.choice(n, size=2, replace=False))
        g.call(a, b)


SHAPES = {"layered": _layered, "fanout": _fanout, "shared_db": _shared_db, "chain": _chain, "mixed": _mixed}
MIN_SERVICES = {"layered": 5, "fanout": 2, "shared_db": 3, "chain": 3, "mixed": 2}


# --- fixed demo topologies -------------------------------------------------------------------------

# Online Boutique (github.com/GoogleCloudPlatform/microservices-demo, architecture diagram): the
# frontend calls seven services; checkout calls six; cart keeps its carts in Redis.
BOUTIQUE = {
    "roles": {
        "frontend": "frontend",
        "adservice": "service",
        "cartservice": "service",
        "checkoutservice": "service",
        "currencyservice": "service",
        "emailservice": "service",
        "paymentservice": "service",
        "productcatalogservice": "service",
        "recommendationservice": "service",
        "shippingservice": "service",
        "redis-cart": "cache",
    },
    "calls": {
        "frontend": [
            "adservice",
            "cartservice",
            "checkoutservice",
            "currencyservice",
            "productcatalogservice",
            "recommendationservice",
            "shippingservice",
        ],
        "checkoutservice": ["cartservice", "currencyservice", "emailservice", "paymentservice", "productcatalogservice", "shippingservice"],
        "recommendationservice": ["productcatalogservice"],
        "cartservice": ["redis-cart"],
    },
}

# Sock Shop (github.com/microservices-demo/microservices-demo, architecture diagram): edge router ->
# front-end -> catalogue, carts, orders, user (session in Redis); orders -> user, carts, payment,
# shipping; shipping publishes to RabbitMQ, which queue-master consumes; each service its own store.
SOCKSHOP = {
    "roles": {
        "edge-router": "gateway",
        "front-end": "frontend",
        "catalogue": "service",
        "carts": "service",
        "orders": "service",
        "user": "service",
        "payment": "service",
        "shipping": "service",
        "queue-master": "service",
        "rabbitmq": "queue",
        "session-db": "cache",
        "catalogue-db": "db",
        "carts-db": "db",
        "orders-db": "db",
        "user-db": "db",
    },
    "calls": {
        "edge-router": ["front-end"],
        "front-end": ["catalogue", "carts", "orders", "user", "session-db"],
        "orders": ["user", "carts", "payment", "shipping", "orders-db"],
        "shipping": ["rabbitmq"],
        "queue-master": ["rabbitmq"],
        "catalogue": ["catalogue-db"],
        "carts": ["carts-db"],
        "user": ["user-db"],
    },
}

# DeathStarBench social network (github.com/delimitrou/DeathStarBench/socialNetwork, its service
# graph): nginx front end and media front end; compose-post fans out to text, media, unique-id,
# user, post-storage, user-timeline and the home-timeline write path (RabbitMQ + worker); each
# stateful service has a memcached/Redis cache and a MongoDB.
SOCIALNET = {
    "roles": {
        "nginx-thrift": "gateway",
        "media-frontend": "frontend",
        "compose-post-service": "service",
        "text-service": "service",
        "user-mention-service": "service",
        "url-shorten-service": "service",
        "media-service": "service",
        "unique-id-service": "service",
        "user-service": "service",
        "post-storage-service": "service",
        "user-timeline-service": "service",
        "home-timeline-service": "service",
        "social-graph-service": "service",
        "write-home-timeline-service": "service",
        "write-home-timeline-rabbitmq": "queue",
        "post-storage-memcached": "cache",
        "post-storage-mongodb": "db",
        "user-timeline-redis": "cache",
        "user-timeline-mongodb": "db",
        "home-timeline-redis": "cache",
        "social-graph-redis": "cache",
        "social-graph-mongodb": "db",
        "user-memcached": "cache",
        "user-mongodb": "db",
        "url-shorten-memcached": "cache",
        "url-shorten-mongodb": "db",
        "media-memcached": "cache",
        "media-mongodb": "db",
    },
    "calls": {
        "nginx-thrift": ["compose-post-service", "user-timeline-service", "home-timeline-service", "social-graph-service", "user-service"],
        "media-frontend": ["media-mongodb", "media-memcached"],
        "compose-post-service": [
            "text-service",
            "media-service",
            "unique-id-service",
            "user-service",
            "post-storage-service",
            "user-timeline-service",
            "write-home-timeline-rabbitmq",
        ],
        "text-service": ["url-shorten-service", "user-mention-service"],
        "url-shorten-service": ["url-shorten-memcached", "url-shorten-mongodb"],
        "user-mention-service": ["user-memcached", "user-mongodb"],
        "media-service": ["media-memcached", "media-mongodb"],
        "user-service": ["user-memcached", "user-mongodb", "social-graph-service"],
        "post-storage-service": ["post-storage-memcached", "post-storage-mongodb"],
        "user-timeline-service": ["user-timeline-redis", "user-timeline-mongodb", "post-storage-service"],
        "home-timeline-service": ["home-timeline-redis", "post-storage-service", "social-graph-service"],
        "social-graph-service": ["social-graph-redis", "social-graph-mongodb", "user-service"],
        "write-home-timeline-service": ["write-home-timeline-rabbitmq", "home-timeline-redis", "social-graph-service"],
    },
}

# Train Ticket (github.com/FudanSELab/train-ticket, its service call graph), 64 services: the UI
# dashboard (gateway) calls the user-facing services; booking (preserve) calls most of the rest.
_TT_SERVICES = (
    "auth user verification-code contacts order order-other config station train travel travel2 preserve preserve-other "
    "basic ticketinfo price notification security inside-payment execute payment rebook cancel assurance seat "
    "travel-plan route-plan food-map food consign-price consign admin-order admin-basic-info admin-route admin-travel "
    "admin-user news ticket-office voucher route delivery"
).split()
_TT_MONGO = (
    "auth user contacts order order-other config station train travel travel2 price security inside-payment payment "
    "assurance route food-map food consign-price consign notification delivery"
).split()
_TT_CALLS = {
    "ui-dashboard": [
        "auth",
        "user",
        "verification-code",
        "contacts",
        "order",
        "order-other",
        "station",
        "travel",
        "travel2",
        "preserve",
        "preserve-other",
        "inside-payment",
        "execute",
        "rebook",
        "cancel",
        "assurance",
        "travel-plan",
        "food",
        "consign",
        "admin-order",
        "admin-basic-info",
        "admin-route",
        "admin-travel",
        "admin-user",
        "news",
        "ticket-office",
        "voucher",
        "security",
        "route-plan",
    ],
    "auth": ["verification-code"],
    "user": ["auth"],
    "preserve": [
        "security",
        "contacts",
        "travel",
        "ticketinfo",
        "seat",
        "order",
        "assurance",
        "food",
        "consign",
        "user",
        "station",
        "notification",
    ],
    "preserve-other": [
        "security",
        "contacts",
        "travel2",
        "ticketinfo",
        "seat",
        "order-other",
        "assurance",
        "food",
        "consign",
        "user",
        "station",
        "notification",
    ],
    "ticketinfo": ["basic"],
    "basic": ["station", "train", "route", "price"],
    "travel": ["ticketinfo", "train", "route", "order", "seat"],
    "travel2": ["ticketinfo", "train", "route", "order-other", "seat"],
    "seat": ["order", "order-other", "config", "travel", "travel2"],
    "order": ["station"],
    "order-other": ["station"],
    "security": ["order", "order-other"],
    "inside-payment": ["order", "order-other", "payment"],
    "execute": ["order", "order-other"],
    "cancel": ["order", "order-other", "inside-payment", "notification", "user"],
    "rebook": ["order", "order-other", "travel", "travel2", "station", "seat", "inside-payment", "route", "train"],
    "travel-plan": ["route-plan", "travel", "travel2", "ticketinfo", "seat", "station"],
    "route-plan": ["travel", "travel2", "station", "route"],
    "food": ["food-map", "travel", "station"],
    "consign": ["consign-price"],
    "admin-order": ["order", "order-other"],
    "admin-basic-info": ["station", "train", "config", "price", "contacts"],
    "admin-route": ["route"],
    "admin-travel": ["travel", "travel2"],
    "admin-user": ["user"],
    "notification": ["delivery"],
}
TRAINTICKET: dict[str, Any] = {
    "roles": {"ts-ui-dashboard": "gateway"}
    | {f"ts-{s}-service": "service" for s in _TT_SERVICES}
    | {f"ts-{s}-mongo": "db" for s in _TT_MONGO},
    "calls": {
        ("ts-ui-dashboard" if a == "ui-dashboard" else f"ts-{a}-service"): [f"ts-{b}-service" for b in bs] for a, bs in _TT_CALLS.items()
    },
}
for _s in _TT_MONGO:
    TRAINTICKET["calls"].setdefault(f"ts-{_s}-service", []).append(f"ts-{_s}-mongo")

TOPOLOGIES = {"boutique": BOUTIQUE, "sockshop": SOCKSHOP, "socialnet": SOCIALNET, "trainticket": TRAINTICKET}


def _fixed(g: _Graph, topology: dict[str, Any]) -> None:
    index = {name: g.add(role, name) for name, role in topology["roles"].items()}
    for a, bs in topology["calls"].items():
        for b in bs:
            g.call(index[a], index[b])


# --- the incident ----------------------------------------------------------------------------------


def build_graph(rng: np.random.Generator, shape: str, n: int | None = None) -> _Graph:
    """A graph of a family (n services) or a fixed topology (n ignored)."""
    g = _Graph(rng)
    if shape in TOPOLOGIES:
        _fixed(g, TOPOLOGIES[shape])
    else:
        if n is None or n < MIN_SERVICES[shape]:
            raise ValueError(f"{shape} graphs need at least {MIN_SERVICES[shape]} services, got {n}")
        SHAPES[shape](g, n)
    return g


def simulate(
    rng: np.random.Generator,
    shape: str,
    n: int | None = None,
    propagation: tuple[float, float] = (0.5, 0.9),
    missing: tuple[float, float] = (0.0, 0.2),
    flag_noise: float = 0.05,
    normal: float = 0.8,
    spread: float = 0.7,
    chronic: float = 0.08,
) -> tuple[RootCauseProblem, int, dict[str, Any]]:
    """A fault in one service of a graph; returns the problem, the root's index and facts.

    shape: a family (with n services) or a fixed topology. propagation (lo, hi): probability that
    the fault spreads over a call edge; missing (lo, hi): share of unknown signals; flag_noise:
    chance a flag is wrong; normal: chance the problem carries normal windows at all; spread:
    chance, given normal windows, that they carry their spread; chronic: share of services whose
    normal error rate is 2-12% (raw levels that look bad but are their normal).
    facts["affected"] lists the services (indices in the problem) the fault reached, root included.
    """
    g = build_graph(rng, shape, n)
    n = len(g.names)
    base_lat = np.array([math.exp(rng.uniform(*np.log(BASE_LATENCY[r]))) for r in g.roles])
    base_err = 10 ** rng.uniform(-4, -2.3, size=n)
    noisy = rng.random(n) < chronic
    base_err[noisy] = rng.uniform(0.02, 0.12, size=int(noisy.sum()))
    slow = rng.random(n) < chronic  # normally slower than the others of its role
    base_lat[slow] *= rng.uniform(2, 6, size=int(slow.sum()))
    err_noise = rng.uniform(0.1, 0.6, size=n)  # log-normal sigma of each service's samples
    lat_noise = rng.uniform(0.05, 0.3, size=n)
    window_err = np.clip(base_err[:, None] * np.exp(err_noise[:, None] * rng.standard_normal((n, WINDOW))), 0, 1)
    window_lat = base_lat[:, None] * np.exp(lat_noise[:, None] * rng.standard_normal((n, WINDOW)))
    now_err = np.clip(base_err * np.exp(err_noise * rng.standard_normal(n)), 0, 1)
    now_lat = base_lat * np.exp(lat_noise * rng.standard_normal(n))

    add_err, add_lat = np.zeros(n), np.zeros(n)
    root = int(rng.integers(n))
    kind = ("errors", "latency", "both")[int(rng.integers(3))]
    add_err[root] = {"errors": rng.uniform(0.03, 0.9), "latency": rng.uniform(0, 0.02), "both": rng.uniform(0.02, 0.5)}[kind]
    add_lat[root] = base_lat[root] * {"errors": rng.uniform(0, 0.5), "latency": rng.uniform(1.5, 30), "both": rng.uniform(1, 10)}[kind]
    p_edge = rng.uniform(*propagation)
    callers: list[list[int]] = [[] for _ in range(n)]
    for a, b in sorted(g.edges):
        callers[b].append(a)
    affected, frontier = {root}, [root]
    while frontier:
        v = frontier.pop()
        for u in callers[v]:
            if u not in affected and rng.random() < p_edge:
                add_err[u] = max(add_err[u], min(1.0, add_err[v] * rng.uniform(0.3, 1.2)))
                add_lat[u] = max(add_lat[u], add_lat[v] * rng.uniform(0.5, 1.1))
                affected.add(u)
                frontier.append(u)
    weak_root = bool(rng.random() < 0.15 and len(affected) > 1)
    if weak_root:  # its exporter half-dead, or callers amplifying by retries
        add_err[root] *= rng.uniform(0.15, 0.5)
        add_lat[root] *= rng.uniform(0.15, 0.5)
    bystanders = [int(i) for i in rng.permutation(n) if i not in affected][: int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
    for i in bystanders:
        if rng.random() < 0.5:
            add_err[i] = rng.uniform(0.01, 0.15)
        else:
            add_lat[i] = base_lat[i] * rng.uniform(0.8, 3)
    err = np.clip(now_err + add_err, 0, 1)
    lat = now_lat + add_lat
    # alert rules on raw levels, as a homelab sets them: 5% errors, or p99 2.5x its role's typical
    typical = np.array([math.sqrt(BASE_LATENCY[r][0] * BASE_LATENCY[r][1]) for r in g.roles])
    flags = (err >= 0.05) | (lat >= 2.5 * typical)
    flags ^= rng.random(n) < flag_noise
    q = rng.uniform(*missing)
    with_normal = rng.random() < normal
    with_spread = with_normal and rng.random() < spread
    med_err, med_lat = np.median(window_err, axis=1), np.median(window_lat, axis=1)
    mad_err = 1.4826 * np.median(np.abs(window_err - med_err[:, None]), axis=1)
    mad_lat = 1.4826 * np.median(np.abs(window_lat - med_lat[:, None]), axis=1)
    order = rng.permutation(n)  # the given order carries no hint
    services = []
    for i in order:
        fields: dict[str, Any] = {
            "name": g.names[i],
            "error_rate": None if rng.random() < q else round(float(err[i]), 5),
            "latency_p99_ms": None if rng.random() < q else round(float(lat[i]), 2),
            "anomalous": None if rng.random() < q else bool(flags[i]),
        }
        if with_normal and rng.random() >= q:
            fields["normal_error_rate"] = round(float(med_err[i]), 5)
            fields["normal_latency_p99_ms"] = round(float(med_lat[i]), 2)
            if with_spread:
                fields["normal_error_rate_spread"] = round(float(mad_err[i]), 6)
                fields["normal_latency_p99_spread_ms"] = round(float(mad_lat[i]), 3)
        services.append(ServiceSignal(**fields))
    position = {int(i): k for k, i in enumerate(order)}
    edges = sorted((position[a], position[b]) for a, b in g.edges)
    problem = RootCauseProblem(services=services, dependencies=[(services[a].name, services[b].name) for a, b in edges])
    facts = {
        "services": n,
        "fault": kind,
        "affected": sorted(position[i] for i in affected),
        "bystanders": len(bystanders),
        "weak_root": weak_root,
        "normal": with_normal,
        "spread": with_spread,
    }
    return problem, position[root], facts
