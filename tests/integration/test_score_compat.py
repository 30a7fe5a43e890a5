"""Score compatibility (issue 14) end to end: a Score file written the way score-k8s takes it, deployed with
`strongroom deploy --mode operator` onto the real control plane and rendered by the real operator.

The file uses what strongroom used to refuse or drop: the placeholder image `.` (set with `--image`, per
workload and per container), `$$` escapes, a probe with both httpGet and exec, an upper-case resource
type, resource annotations, `before`, a relative file target (score-k8s writes it as the mountPath; the
API server takes it and the kubelet mounts it below the container's root), and a Deployment scaled by
someone else (as an HPA does) must keep its replicas when the Workload is rendered again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from strongroom.cli import main
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from tests.conftest import Cluster
from tests.integration.helpers import condition, ensure_namespace, eventually, get

pytestmark = pytest.mark.integration

DEFINITIONS = """\
apiVersion: strongroom.dev/v1alpha1
kind: ResourceDefinition
metadata: {name: rds}
spec:
  type: AmazonRDS
  driverType: strongroom/echo
  criteria: [{}]
  driverInputs:
    values: {host: db.internal, port: 5432}
"""

SCORE = """\
apiVersion: score.dev/v1b1
metadata:
  name: web
  annotations: {{example.com/team: shop}}
containers:
  main:
    image: .
    variables:
      PRICE: "{price}"
      DB: "${{resources.db.host}}:${{resources.db.port}}"
    livenessProbe:
      httpGet: {{path: /healthz, port: 8080}}
      exec: {{command: ["true"]}}
    resources:
      requests: {{cpu: "0.25", memory: 64Mi}}
      limits: {{cpu: "1", memory: 128Mi}}
    before:
      migrate: {{ready: complete}}
      proxy: {{ready: healthy}}
    files:
    - target: conf/app.conf
      content: "price={price}"
  migrate:
    image: .
    command: [/migrate, "--dsn=$$DSN"]
  proxy:
    image: .
    readinessProbe: {{httpGet: {{path: /ready, port: 15000}}}}
service:
  ports:
    http: {{port: 80, targetPort: 8080}}
resources:
  db:
    type: AmazonRDS
    metadata:
      annotations: {{example.com/tier: gold}}
    params: {{note: "$$HOME"}}
"""


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    process = start_operator(
        cluster.kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", ["--log-level=debug"]
    )
    try:
        yield process
    finally:
        process.stop()


def deploy(cluster: Cluster, workdir: Path, app: str, price: str) -> None:
    score = workdir / "web.yaml"
    score.write_text(SCORE.format(price=price))
    definitions = workdir / "definitions.yaml"
    definitions.write_text(DEFINITIONS)
    args = ["deploy", "-f", str(score), "-d", str(definitions), "--app", app, "--env", "dev"]
    args += ["--image", "web=ghcr.io/example/web:2", "--image", "web.migrate=ghcr.io/example/migrate:2"]
    result = CliRunner().invoke(main, [*args, "--mode", "operator", "--timeout", "2m"], env=cluster.env)
    assert result.exit_code == 0, result.output


def test_a_score_k8s_style_file_deploys_on_the_operator(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    app = f"compat{uuid.uuid4().hex[:4]}"
    namespace = f"{app}-dev"
    deploy(cluster, tmp_path, app, price="$$5")

    workload = get(cluster, "workload", namespace, "web")
    assert (condition(workload) or {}).get("status") == "True", workload
    deployment = get(cluster, "deployment", namespace, "web")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    (main_container,) = pod["containers"]
    assert main_container["image"] == "ghcr.io/example/web:2"
    assert {e["name"]: e["value"] for e in main_container["env"]} == {"PRICE": "$5", "DB": "db.internal:5432"}
    # Both handlers given: httpGet, as score-k8s does (the API server stored the probe as rendered).
    assert set(main_container["livenessProbe"]) >= {"httpGet"}
    assert "exec" not in main_container["livenessProbe"]
    # The relative target is the mountPath, as score-k8s writes it, and the API server stored it.
    (file_mount,) = main_container["volumeMounts"]
    assert file_mount["mountPath"] == "conf/app.conf"
    assert main_container["resources"] == {
        "requests": {"cpu": "250m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "128Mi"},
    }
    # `before`: migrate runs to completion first (command never expanded), then the proxy starts as a
    # sidecar and main waits until it is ready (its readiness probe is its startup probe).
    migrate, proxy = pod["initContainers"]
    assert (migrate["name"], migrate["image"], migrate["command"]) == (
        "migrate",
        "ghcr.io/example/migrate:2",
        ["/migrate", "--dsn=$$DSN"],
    )
    assert "restartPolicy" not in migrate
    assert (proxy["name"], proxy["image"], proxy["restartPolicy"]) == (
        "proxy",
        "ghcr.io/example/web:2",
        "Always",
    )
    assert proxy["startupProbe"]["httpGet"] == proxy["readinessProbe"]["httpGet"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["example.com/team"] == "shop"

    # The upper-case type is kept, the resource annotations are on the Resource, params un-escaped.
    resources = json.loads(cluster.kubectl_run("-n", namespace, "get", "resources", "-o", "json").stdout)
    (resource,) = resources["items"]
    assert resource["spec"]["type"] == "AmazonRDS"
    assert resource["metadata"]["annotations"]["example.com/tier"] == "gold"
    assert resource["spec"]["resourceInputs"] == {"note": "$HOME"}

    # Someone else scales the Deployment (as an HPA does); a new rendering leaves the replicas alone.
    cluster.kubectl_run(
        "-n", namespace, "patch", "deployment", "web", "--field-manager=hpa", "-p", '{"spec":{"replicas":3}}'
    )
    deploy(cluster, tmp_path, app, price="$$6")

    def rerendered() -> dict[str, Any] | None:
        current = get(cluster, "deployment", namespace, "web")
        env = (current or {})["spec"]["template"]["spec"]["containers"][0]["env"]
        return current if {"name": "PRICE", "value": "$6"} in env else None

    scaled = eventually(rerendered, timeout=60, what="the Deployment with the new PRICE")
    assert scaled["spec"]["replicas"] == 3


STATEFUL_DEFINITIONS = """\
apiVersion: strongroom.dev/v1alpha1
kind: ResourceDefinition
metadata: {name: disk}
spec:
  type: volume
  driverType: strongroom/echo
  criteria: [{}]
  driverInputs:
    values:
      claimSpec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""

STATEFUL_SCORE = """\
apiVersion: score.dev/v1b1
metadata:
  name: db
  annotations: {k8s.score.dev/kind: StatefulSet}
containers:
  main:
    image: ghcr.io/example/db:1
    volumes:
    - target: /var/lib/db
      source: ${resources.data}
service:
  ports:
    sql: {port: 5432}
resources:
  data: {type: volume}
"""


def test_the_statefulset_annotation_makes_a_statefulset(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    """score-k8s's `k8s.score.dev/kind: StatefulSet`: the API server takes the StatefulSet, its headless
    Service and the volumeClaimTemplate the claimSpec output became."""
    app = f"sts{uuid.uuid4().hex[:4]}"
    namespace = f"{app}-dev"
    (tmp_path / "db.yaml").write_text(STATEFUL_SCORE)
    (tmp_path / "definitions.yaml").write_text(STATEFUL_DEFINITIONS)
    args = ["deploy", "-f", str(tmp_path / "db.yaml"), "-d", str(tmp_path / "definitions.yaml")]
    args += ["--app", app, "--env", "dev", "--mode", "operator", "--timeout", "2m"]
    result = CliRunner().invoke(main, args, env=cluster.env)
    assert result.exit_code == 0, result.output

    statefulset = eventually(
        lambda: get(cluster, "statefulset", namespace, "db"), timeout=60, what="the StatefulSet"
    )
    assert get(cluster, "deployment", namespace, "db") is None
    spec = statefulset["spec"]
    assert spec["serviceName"] == "db-headless-svc"
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "vol-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    (main_container,) = spec["template"]["spec"]["containers"]
    assert main_container["volumeMounts"] == [{"name": "vol-data", "mountPath": "/var/lib/db"}]
    headless = get(cluster, "service", namespace, "db-headless-svc")
    assert headless is not None
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert get(cluster, "service", namespace, "db") is not None


def test_direct_mode_applies_and_prunes_the_statefulset(cluster: Cluster, tmp_path: Path) -> None:
    """Direct mode renders the same StatefulSet, and prunes it (and its headless Service) once the
    annotation goes and the pods run in a Deployment."""
    app = f"stsd{uuid.uuid4().hex[:4]}"
    namespace = f"{app}-dev"
    (tmp_path / "definitions.yaml").write_text(STATEFUL_DEFINITIONS)
    args = ["deploy", "-f", str(tmp_path / "db.yaml"), "-d", str(tmp_path / "definitions.yaml")]
    args += ["--app", app, "--env", "dev", "--mode", "direct", "--store-dir", str(tmp_path / "store")]

    (tmp_path / "db.yaml").write_text(STATEFUL_SCORE)
    result = CliRunner().invoke(main, args, env=cluster.env)
    assert result.exit_code == 0, result.output
    statefulset = get(cluster, "statefulset", namespace, "db")
    assert statefulset is not None
    assert statefulset["spec"]["serviceName"] == "db-headless-svc"
    assert get(cluster, "service", namespace, "db-headless-svc") is not None

    # Without the annotation (and so without the claim, which would need the StatefulSet).
    (tmp_path / "db.yaml").write_text(
        "apiVersion: score.dev/v1b1\nmetadata: {name: db}\n"
        "containers: {main: {image: ghcr.io/example/db:1}}\nservice: {ports: {sql: {port: 5432}}}\n"
    )
    result = CliRunner().invoke(main, args, env=cluster.env)
    assert result.exit_code == 0, result.output
    assert get(cluster, "deployment", namespace, "db") is not None
    assert get(cluster, "statefulset", namespace, "db") is None
    assert get(cluster, "service", namespace, "db-headless-svc") is None
