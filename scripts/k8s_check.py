#!/usr/bin/env python3
"""Checks deploy/k8s offline: renders each overlay with `kubectl kustomize`, validates every
resource strictly against Kubernetes' published schemas (kubernetes-validate ships them), and
checks what the manifests promise: one replica per service, Recreate for the services with a
database, probes on /health/live and /health/ready, resources, Prometheus annotations, config
from the ConfigMap, keys from the Secret, a PodDisruptionBudget over the stack, redis.conf equal
to deploy/redis.conf, and every service setting equal to docker-compose.yml's.

Usage: scripts/k8s_check.py [REPO]   (exit 1 with one line per failure)
"""
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

REPO = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
K8S = REPO / "deploy/k8s"
# The oldest and the newest Kubernetes the manifests are checked against.
VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
SERVICES = ["trading-bot", "execution", "exit-brain", "portfolio-intelligence", "clm"]
STATEFUL = {"execution", "exit-brain", "portfolio-intelligence", "clm"}

failures = []


def fail(msg):
    failures.append(msg)


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def validate(doc, where):
    for v in VERSIONS:
        try:
            kubernetes_validate.validate(doc, v, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{where}: {doc['kind']}/{doc['metadata']['name']} invalid for {v}: {e.message}")


def compose_env(service):
    """The service's environment in docker-compose.yml, ${VAR:-default} resolved to default."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = compose["services"][service].get("environment", {})
    resolve = lambda v: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v))
    return {k: resolve(v) for k, v in env.items()}, compose["services"][service]


def check_deployment(d, where, config):
    name = d["metadata"]["name"]
    spec = d["spec"]
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    port = c["ports"][0]["containerPort"]
    ann = spec["template"]["metadata"].get("annotations", {})
    if spec.get("replicas") != 1:
        fail(f"{where}: {name} must run exactly one replica")
    if name in STATEFUL | {"sim-exchange"} and spec.get("strategy", {}).get("type") != "Recreate":
        fail(f"{where}: {name} keeps a database: its strategy must be Recreate")
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        got = c.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ("http", port):
            fail(f"{where}: {name} {probe} must be GET {path} on its port")
    res = c.get("resources", {})
    if not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
        fail(f"{where}: {name} needs memory requests and limits")
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port) \
            or ann.get("prometheus.io/path") != "/metrics":
        fail(f"{where}: {name} needs the Prometheus scrape annotations for port {port}")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        fail(f"{where}: {name} must run as a non-root user")
    if name == "sim-exchange":
        return
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    if env.get("QT_HTTP_ADDR") != f"0.0.0.0:{port}":
        fail(f"{where}: {name} QT_HTTP_ADDR must listen on its container port {port}")
    if {"configMapRef": {"name": config}} not in c.get("envFrom", []):
        fail(f"{where}: {name} must read its settings from the ConfigMap {config}")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    keys = mounts.get("keys")
    if not keys or keys.get("mountPath") != "/run/secrets/qt" or not keys.get("readOnly"):
        fail(f"{where}: {name} must mount the exchange keys read-only at /run/secrets/qt")
    # Every setting docker-compose.yml gives the service, the manifests give it too.
    cenv, csvc = compose_env(name)
    for k, v in cenv.items():
        if k.endswith("API_TOKEN"):
            continue  # from the Secret qt-api-token, not a value
        if k.startswith("QT_" + name.upper().replace("-", "_") + "__") and k in env \
                and env[k] != v:
            fail(f"{where}: {name} {k}={env[k]!r} but docker-compose.yml has {v!r}")
        if k.startswith("QT_" + name.upper().replace("-", "_") + "__") and k not in env:
            fail(f"{where}: {name} lacks {k}, which docker-compose.yml sets")
    if c["command"] != csvc["command"]:
        fail(f"{where}: {name} command {c['command']} differs from docker-compose.yml's")


def check_overlay(overlay, want_exchange):
    docs = render(overlay)
    where = f"overlays/{overlay}"
    for d in docs:
        validate(d, where)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    config = next(d for d in by_kind["ConfigMap"] if d["metadata"]["name"].startswith("qt-config"))
    if config["data"].get("QT_EXCHANGE") != want_exchange:
        fail(f"{where}: QT_EXCHANGE is {config['data'].get('QT_EXCHANGE')}, want {want_exchange}")
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for s in SERVICES:
        if s not in deployments:
            fail(f"{where}: no Deployment for {s}")
    for d in deployments.values():
        check_deployment(d, where, config["metadata"]["name"])
    pdbs = by_kind.get("PodDisruptionBudget", [])
    workloads = list(deployments.values()) + by_kind.get("StatefulSet", [])
    for w in workloads:
        labels = w["spec"]["template"]["metadata"]["labels"]
        if not any(all(labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())
                   for p in pdbs):
            fail(f"{where}: {w['metadata']['name']} is covered by no PodDisruptionBudget")
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads]
    for svc in by_kind.get("Service", []):
        sel = svc["spec"]["selector"]
        if not any(all(l.get(k) == v for k, v in sel.items()) for l in pods):
            fail(f"{where}: Service {svc['metadata']['name']} selects no pod")
    return docs


def check_sentinel(docs, where):
    """The redis-sentinel component: data nodes and Sentinels with stable names, and every
    service pointed at exactly those Sentinels."""
    kinds = lambda k: {d["metadata"]["name"]: d for d in docs if d["kind"] == k}
    sets, services = kinds("StatefulSet"), kinds("Service")
    config_map = next(d for d in docs if d["kind"] == "ConfigMap"
                      and d["metadata"]["name"].startswith("qt-config"))
    config = config_map["data"]
    redis, sentinel = sets.get("redis"), sets.get("redis-sentinel")
    if not redis or not sentinel:
        fail(f"{where}: needs the StatefulSets redis and redis-sentinel")
        return
    if redis["spec"]["replicas"] < 2:
        fail(f"{where}: redis needs a replica beside its primary")
    n = sentinel["spec"]["replicas"]
    if n < 3 or n % 2 == 0:
        fail(f"{where}: {n} Sentinels: a quorum needs an odd number, at least 3")
    for s in (redis, sentinel):
        svc = services.get(s["spec"]["serviceName"], {}).get("spec", {})
        if svc.get("clusterIP") != "None" or not svc.get("publishNotReadyAddresses"):
            fail(f"{where}: the Service of {s['metadata']['name']} must be headless and publish "
                 "pods before they are ready (their stable names are what Sentinel announces)")
    want = [f"{sentinel['metadata']['name']}-{i}.{sentinel['spec']['serviceName']}:26379"
            for i in range(n)]
    if config.get("QT_REDIS_SENTINELS", "").split(",") != want:
        fail(f"{where}: QT_REDIS_SENTINELS is {config.get('QT_REDIS_SENTINELS')!r}, "
             f"want {','.join(want)}")
    if not config.get("QT_REDIS_MASTER_NAME"):
        fail(f"{where}: QT_REDIS_MASTER_NAME is not set")
    for s in (redis, sentinel):
        (c,) = s["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("valueFrom", {}).get("configMapKeyRef", {}) for e in c["env"]}
        for key in ("QT_REDIS_SENTINELS", "QT_REDIS_MASTER_NAME"):
            if env.get(key, {}).get("name") != config_map["metadata"]["name"]:
                fail(f"{where}: {s['metadata']['name']} must read {key} from the ConfigMap")


def main():
    if (K8S / "base/redis.conf").read_bytes() != (REPO / "deploy/redis.conf").read_bytes():
        fail("deploy/k8s/base/redis.conf differs from deploy/redis.conf")
    paper = check_overlay("paper", "paper")
    live = check_overlay("live", "live")
    check_sentinel(check_overlay("paper-ha", "paper"), "overlays/paper-ha")
    if not any(d["kind"] == "Deployment" and d["metadata"]["name"] == "sim-exchange" for d in paper):
        fail("overlays/paper: no simulator")
    if any(d["kind"] == "Secret" for d in live):
        fail("overlays/live: the exchange keys must not come from the repository")
    # The validator itself must refuse a manifest with an unknown field, or the checks above
    # prove nothing.
    broken = next(d for d in paper if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(broken))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    try:
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
        fail("kubernetes-validate accepted an unknown field: the schema check is not working")
    except kubernetes_validate.ValidationError:
        pass
    for f in failures:
        print("FAIL", f)
    if failures:
        sys.exit(1)
    print(f"deploy/k8s: overlays paper, paper-ha and live render, validate strictly against Kubernetes "
          f"{' and '.join(VERSIONS)}, and keep every check")


main()
