"""Score compatibility (issue 14): what score-go / score-k8s accept, strongroom accepts and renders alike;
what the Score v1b1 schema or Kubernetes refuse, strongroom refuses up front with one line naming the rule."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from click.testing import CliRunner

from strongroom.api.common import validation_lines
from strongroom.api.workload import Workload, WorkloadSpec
from strongroom.cli import main
from strongroom.orchestrator.inputs import ImageOverride, parse_image_option
from strongroom.orchestrator.problems import InputProblems
from strongroom.orchestrator.render import Rendered, render
from strongroom.reconcile.placeholders import Placeholder, Text, parse
from strongroom.reconcile.workload import ResourceOutputs, check, file_key
from strongroom.reconcile.workload import render as render_workload
from tests.unit.test_workload_render import DB, container, db_outputs, get, make_patch, make_workload, ok

# --- $$ is Score's escape of $ ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("cost: $$5", [Text("cost: $5")]),
        ("$$HOME and $PATH", [Text("$HOME and $PATH")]),
        ("$${resources.db.host}", [Text("${resources.db.host}")]),
        ("$$$${x}", [Text("$${x}")]),
        (
            "$$${resources.db.host}",
            [Text("$"), Placeholder(("resources", "db", "host"), "${resources.db.host}")],
        ),
        ("$", [Text("$")]),
    ],
)
def test_score_text_unescapes_double_dollar_as_score_go_does(text: str, segments: list[Any]) -> None:
    assert parse(text, score=True) == segments


def test_humanitec_text_keeps_double_dollar() -> None:
    assert parse("cost: $$5") == [Text("cost: $$5")]
    assert parse("$${x}") == [Text("${x}")]


def test_double_dollar_in_variables_and_files_but_not_in_no_expand_files() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "variables": {"PRICE": "$$5", "DSN": "host=${resources.db.host} cost=$$1"},
                "files": {
                    "/etc/a.sh": {"content": "echo $$HOME ${resources.db.host}"},
                    "/etc/b.sh": {"content": "echo $$HOME ${x}", "noExpand": True},
                },
            }
        },
        "resources": DB,
    }
    result = ok(render_workload(make_workload(spec), [], {"db": db_outputs()}, {}))
    assert container(result, "main")["env"] == [
        {"name": "DSN", "value": "host=db.internal cost=$1"},
        {"name": "PRICE", "value": "$5"},
    ]
    data = get(result, "ConfigMap", "api-main-files")["data"]
    assert sorted(data.values()) == ["echo $$HOME ${x}", "echo $HOME db.internal"]


def test_relative_targets_are_mounted_where_score_k8s_mounts_them() -> None:
    # score-k8s writes a relative target as it is (a file's directory for a file); the kubelet mounts
    # it below the container's root, so `conf/app.conf` is at /conf/app.conf either way.
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "files": [{"target": "conf/app.conf", "content": "a=1"}],
                "volumes": [{"target": "data", "source": "${resources.scratch}"}],
            }
        },
        "resources": {"scratch": {"type": "volume"}},
    }
    resources = {"scratch": ResourceOutputs(True, values={"source": {"emptyDir": {}}})}
    result = ok(render_workload(make_workload(spec), [], resources, {}))
    assert container(result, "main")["volumeMounts"] == [
        {"name": "files-main", "mountPath": "conf/app.conf", "subPath": file_key("main", "conf/app.conf")},
        {"name": "vol-scratch", "mountPath": "data"},
    ]


# --- k8s.score.dev/kind: StatefulSet -------------------------------------------------------------------

CLAIM = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}


def stateful(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "api", "annotations": {"k8s.score.dev/kind": "StatefulSet"}},
        "containers": {"main": {"image": "app:1", "volumes": {"/data": {"source": "${resources.data}"}}}},
        "resources": {"data": {"type": "volume"}},
        **spec,
    }


def test_statefulset_annotation_renders_a_statefulset_with_its_headless_service() -> None:
    spec = stateful(service={"ports": {"http": {"port": 80, "targetPort": 8080}}})
    resources = {"data": ResourceOutputs(True, values={"claimSpec": CLAIM})}
    result = ok(render_workload(make_workload(spec), [], resources, {}))
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in result.objects] == [
        ("Service", "api-headless-svc"),
        ("StatefulSet", "api"),
        ("Service", "api"),
    ]
    headless = get(result, "Service", "api-headless-svc")["spec"]
    statefulset = get(result, "StatefulSet", "api")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["selector"] == statefulset["selector"]["matchLabels"]
    assert [port["port"] for port in headless["ports"]] == [80]
    assert statefulset["serviceName"] == "api-headless-svc"
    # The claimSpec output is a volumeClaimTemplate (one claim per pod), not a pod volume.
    assert statefulset["volumeClaimTemplates"] == [{"metadata": {"name": "vol-data"}, "spec": CLAIM}]
    assert "volumes" not in statefulset["template"]["spec"]
    (main,) = statefulset["template"]["spec"]["containers"]
    assert main["volumeMounts"] == [{"name": "vol-data", "mountPath": "/data"}]


def test_two_containers_mounting_one_claim_share_one_claim_template() -> None:
    volume = {"source": "${resources.data}"}
    spec = stateful(
        containers={
            "ca": {"image": "a:1", "volumes": {"/data": volume}},
            "cb": {"image": "b:1", "volumes": {"/mnt": {**volume, "readOnly": True}}},
        }
    )
    resources = {"data": ResourceOutputs(True, values={"claimSpec": CLAIM})}
    statefulset = get(ok(render_workload(make_workload(spec), [], resources, {})), "StatefulSet")["spec"]
    assert statefulset["volumeClaimTemplates"] == [{"metadata": {"name": "vol-data"}, "spec": CLAIM}]
    mounts = [c["volumeMounts"] for c in statefulset["template"]["spec"]["containers"]]
    assert mounts == [
        [{"name": "vol-data", "mountPath": "/data"}],
        [{"name": "vol-data", "mountPath": "/mnt", "readOnly": True}],
    ]


def test_statefulset_without_ports_or_claims() -> None:
    spec = stateful(containers={"main": {"image": "app:1"}}, resources={})
    result = ok(render_workload(make_workload(spec), [], {}, {}))
    assert [obj["kind"] for obj in result.objects] == ["Service", "StatefulSet"]
    assert get(result, "Service")["spec"] == {
        "clusterIP": "None",
        "selector": result.objects[1]["spec"]["selector"]["matchLabels"],
    }
    assert "volumeClaimTemplates" not in get(result, "StatefulSet")["spec"]


@pytest.mark.parametrize(
    ("annotations", "claim", "message"),
    [
        ({}, CLAIM, "needs a StatefulSet (annotation k8s.score.dev/kind: StatefulSet"),
        ({"k8s.score.dev/kind": "StatefulSet"}, "x", "claimSpec output must be a non-empty object"),
        ({"k8s.score.dev/kind": "DaemonSet"}, CLAIM, "must be Deployment or StatefulSet"),
    ],
)
def test_statefulset_problems(annotations: dict[str, str], claim: Any, message: str) -> None:
    spec = stateful(metadata={"name": "api", "annotations": annotations})
    result = render_workload(
        make_workload(spec), [], {"data": ResourceOutputs(True, values={"claimSpec": claim})}, {}
    )
    assert result.objects == []
    assert len(result.problems) == 1, result.problems
    assert message in result.problems[0]


# --- probes, replicas, service ----------------------------------------------------------------------------


def test_probe_with_http_get_and_exec_uses_http_get_as_score_k8s() -> None:
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "exec": {"command": ["true"]}}
    spec = {"containers": {"main": {"image": "app:1", "livenessProbe": probe, "readinessProbe": probe}}}
    result = ok(render_workload(make_workload(spec), [], {}, {}))
    rendered = container(result, "main")
    assert rendered["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": 8080}}
    assert rendered["readinessProbe"] == rendered["livenessProbe"]


def test_probe_without_handler_is_refused_naming_the_kubernetes_rule() -> None:
    with pytest.raises(pydantic.ValidationError, match="a probe must specify a handler type"):
        make_workload({"containers": {"main": {"image": "app:1", "livenessProbe": {}}}})


def test_replicas_are_left_unset_unless_the_spec_sets_them() -> None:
    plain = ok(render_workload(make_workload({"containers": {"main": {"image": "app:1"}}}), [], {}, {}))
    assert "replicas" not in get(plain, "Deployment", "api")["spec"]
    patch = make_patch("scale", [{"op": "add", "path": "/spec/replicas", "value": 3}])
    scaled = ok(render_workload(make_workload({"containers": {"main": {"image": "app:1"}}}), [patch], {}, {}))
    assert get(scaled, "Deployment", "api")["spec"]["replicas"] == 3


@pytest.mark.parametrize("service", [{}, {"ports": {}}])
def test_service_without_ports_renders_no_service(service: dict[str, Any]) -> None:
    spec = {"containers": {"main": {"image": "app:1"}}, "service": service}
    result = ok(render_workload(make_workload(spec), [], {}, {}))
    assert [obj["kind"] for obj in result.objects] == ["Deployment"]


# --- the one check both sides run -------------------------------------------------------------------------


def test_check_reports_what_needs_no_outputs() -> None:
    spec = {
        "containers": {"main": {"image": ".", "variables": {"DB": "${resources.db}"}}},
        "resources": DB,
    }
    result = check(make_workload(spec), [])
    assert result.problems == [
        "containers.main.image: '.' is Score's placeholder for an image given at deploy time; give it with "
        "`strongroom deploy --image` (or write the image)",
        "containers.main.variables.DB: placeholder ${resources.db} needs an output key, e.g. "
        "${resources.db.<key>}",
    ]
    # The operator's render reports exactly the same (it runs the same check first).
    assert render_workload(make_workload(spec), [], {"db": db_outputs()}, {}).problems == result.problems


# --- the Score v1b1 schema's rules and Kubernetes' --------------------------------------------------------

GOOD: dict[str, Any] = {"containers": {"main": {"image": "app:1"}}}


def with_container(**fields: Any) -> dict[str, Any]:
    return {"containers": {"main": {"image": "app:1", **fields}}}


@pytest.mark.parametrize(
    ("spec", "where", "message"),
    [
        (
            {**GOOD, "service": {"ports": {"web": {"port": "80"}}}},
            "service.ports.web.port",
            "Input should be a valid integer",
        ),
        ({"containers": {"m": {"image": "x"}}}, "containers", "name must be 2 to 63 lower-case"),
        ({**GOOD, "service": {"ports": {"w": {"port": 80}}}}, "service.ports", "name must be 2 to 63"),
        ({**GOOD, "resources": {"Db": {"type": "postgres"}}}, "resources", "name must be 2 to 63"),
        ({**GOOD, "resources": {"my_db": {"type": "postgres"}}}, "resources", "name must be 2 to 63"),
        ({**GOOD, "resources": {"db": {"type": "p"}}}, "resources.db.type", "must be 2 to 63 letters"),
        ({**GOOD, "resources": {"db": {"type": "pg", "class": "a_b"}}}, "resources.db.class", "(Score)"),
        ({**GOOD, "metadata": {"name": "x"}}, "metadata.name", "must be 2 to 63"),
        (with_container(livenessProbe={"httpGet": {"path": "/"}}), "livenessProbe.httpGet.port", "required"),
        (with_container(resources={"limits": {"cpu": "-1"}}), "limits.cpu", "milli-CPUs"),
        (with_container(resources={"limits": {"cpu": "1e3"}}), "limits.cpu", "milli-CPUs"),
        (with_container(resources={"requests": {"memory": "-128Mi"}}), "requests.memory", "positive number"),
        (with_container(resources={"requests": {"memory": "1Gb"}}), "requests.memory", "positive number"),
        (
            with_container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}),
            "containers.main.resources",
            "a request must be less than or equal to its limit",
        ),
        ({**GOOD, "metadata": {"annotations": {"-x": "1"}}}, "metadata.annotations", "annotation key"),
        ({**GOOD, "metadata": {"annotations": {"a": "1"}}}, "metadata.annotations", "annotation key"),
        (
            {**GOOD, "metadata": {"annotations": {"Example.com/x": "1"}}},
            "metadata.annotations",
            "annotation key",
        ),
        (
            {**GOOD, "metadata": {"annotations": {".".join(["a" * 63] * 4) + "/x1": "1"}}},
            "metadata.annotations",
            "the prefix of an annotation key is a DNS subdomain",
        ),
        (
            {**GOOD, "metadata": {"annotations": {f"k{i}": "v" * 100_000 for i in range(3)}}},
            "metadata.annotations",
            "at most 262144 bytes",
        ),
        (
            {**GOOD, "resources": {"db": {"type": "pg", "metadata": {"annotations": {"b@d": "1"}}}}},
            "resources.db.metadata.annotations",
            "annotation key",
        ),
        (with_container(variables={"A=B": "1"}), "variables", "other than '='"),
        (with_container(variables={"TAB\t": "1"}), "variables", "printable ASCII"),
        (with_container(files={"/f": {"binaryContent": "not base64!"}}), "binaryContent", "base64"),
        (
            with_container(
                readinessProbe={
                    "httpGet": {"path": "/", "port": 80, "httpHeaders": [{"name": "X", "value": ""}]}
                }
            ),
            "httpHeaders.0.value",
            "at least 1 character",
        ),
        (
            with_container(
                readinessProbe={
                    "httpGet": {"path": "/", "port": 80, "httpHeaders": [{"name": "X_Y", "value": "1"}]}
                }
            ),
            "httpHeaders.0.name",
            "which Kubernetes refuses in an HTTP header name",
        ),
        (
            {**GOOD, "service": {"ports": {"web": {"port": 80, "protocol": "SCTP"}}}},
            "protocol",
            "'TCP' or 'UDP'",
        ),
        (with_container(livenessProbe={"exec": {"command": []}}), "exec.command", "at least 1 item"),
        (with_container(volumes={"/d": {"source": "v", "path": "/abs"}}), "volumes./d.path", "without '..'"),
        (with_container(volumes={"/d": {"source": "v", "path": "a/../.."}}), "volumes./d.path", "subPath"),
        (with_container(volumes={"/d": {"source": "v", "readOnly": "yes"}}), "readOnly", "valid boolean"),
        (with_container(files={"/f": {"content": "x", "noExpand": 1}}), "noExpand", "valid boolean"),
        (with_container(files={"": {"content": "x"}}), "files", "at least 1 character"),
        ({"containers": {"main": {"image": "app:1 "}}}, "containers.main.image", "whitespace (Kubernetes)"),
        (
            {**GOOD, "service": {"ports": {"http": {"port": 80}, "web": {"port": 80, "protocol": "TCP"}}}},
            "service.ports",
            "http and web both expose 80/TCP (Kubernetes",
        ),
        (
            with_container(before={"main": {"ready": "started"}}),
            "",
            "containers.main.before.main: must name another container of this workload",
        ),
    ],
)
def test_score_schema_and_kubernetes_rules(spec: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        WorkloadSpec.model_validate(spec)
    lines = validation_lines(info.value)
    assert len(lines) == 1, lines
    assert where in lines[0][0]
    assert message in lines[0][1]


@pytest.mark.parametrize(
    ("spec", "where", "message"),
    [
        (
            {"containers": {f"c{i:02d}": {"image": "app"} for i in range(33)}},
            "containers",
            "is over the limit of 32 entries",
        ),
        (
            with_container(variables={f"V{i}": "x" for i in range(1025)}),
            "containers.main.variables",
            "is over the limit of 1024 entries",
        ),
        (
            with_container(files={f"/f{i}": {"content": "x"} for i in range(257)}),
            "containers.main.files",
            "is over the limit of 256 entries",
        ),
        (
            with_container(args=["a"] * 1025),
            "containers.main.args",
            "has 1025 entries, over the limit of 1024",
        ),
        (
            with_container(files={"/f": {"content": "x" * (1024 * 1024 + 1)}}),
            "containers.main.files./f.content",
            "is over the limit of 1048576 characters",
        ),
        (
            {**GOOD, "resources": {f"r{i:03d}": {"type": "postgres"} for i in range(257)}},
            "resources",
            "is over the limit of 256 entries",
        ),
        (
            {**GOOD, "service": {"ports": {f"p{i:02d}": {"port": 1000 + i} for i in range(65)}}},
            "service.ports",
            "is over the limit of 64 entries",
        ),
        (
            {
                **GOOD,
                "metadata": {"name": "web", "annotations": {f"example.com/k{i}": "v" for i in range(257)}},
            },
            "metadata.annotations",
            "is over the limit of 256 entries",
        ),
    ],
)
def test_workload_bounds_name_the_limit(spec: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        WorkloadSpec.model_validate(spec)
    lines = validation_lines(info.value)
    assert lines == [(where, message)]


@pytest.mark.parametrize(
    "spec",
    [
        {**GOOD, "resources": {"bucket": {"type": "AmazonS3", "class": "Large-1"}}},
        with_container(variables={"1ST": "x", "with space": "y", "dotted.name": "z"}),
        with_container(livenessProbe={"httpGet": {"path": "healthz", "port": 80}}),
        with_container(resources={"requests": {"cpu": "0.5", "memory": "0.5Gi"}, "limits": {"cpu": "1"}}),
        {**GOOD, "metadata": {"name": "ab", "annotations": {"example.com/Team_Name.x": "a"}, "team": "x"}},
        {**GOOD, "service": {}},
        {**GOOD, "service": {"ports": {"dns": {"port": 53}, "dns-udp": {"port": 53, "protocol": "UDP"}}}},
        with_container(volumes={"/d": {"source": "v", "path": "./a/..b/.c"}}),
        {
            "containers": {
                "main": {"image": "a", "before": {"init": {"ready": "complete"}}},
                "init": {"image": "b"},
            }
        },
    ],
)
def test_forms_score_accepts_are_accepted(spec: dict[str, Any]) -> None:
    WorkloadSpec.model_validate(spec)


# --- strongroom render ------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


ECHO = """\
apiVersion: strongroom.dev/v1alpha1
kind: ResourceDefinition
metadata: {{name: {name}}}
spec:
  type: {type}
  driverType: strongroom/echo
  criteria: [{{}}]
  driverInputs: {{values: {{host: db.internal, url: 'amqp://q'}}}}
"""


def definitions(tmp: Path, *types: str) -> Path:
    docs = [ECHO.format(name=f"def-{i}", type=res_type) for i, res_type in enumerate(types)]
    return write(tmp / "defs.yaml", "---\n".join(docs))


def score_file(tmp: Path, name: str, body: str) -> Path:
    return write(tmp / f"{name}.yaml", f"apiVersion: score.dev/v1b1\nmetadata:\n  name: {name}\n" + body)


def rendered(tmp: Path, files: list[Path], defs: Path, **kwargs: Any) -> Rendered:
    return render(files, [defs], None, app="shop", env="dev", **kwargs)


def problems(tmp: Path, files: list[Path], defs: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(InputProblems) as info:
        render(files, [defs], None, app="shop", env="dev", **kwargs)
    return info.value.problems


def objects(result: Rendered, kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in result.crset.objects if obj["kind"] == kind}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "containers:\n  main:\n    image: app\n    livenessProbe: {httpGet: {path: /}}\n",
            "containers.main.livenessProbe.httpGet.port: Field required",
        ),
        (
            "containers:\n  main:\n    image: app\n    files: {/x: {binaryContent: '%%%'}}\n",
            "containers.main.files./x.binaryContent: is not valid standard base64 (Score: binaryContent)",
        ),
        (
            "containers:\n  main:\n    image: app\n    variables: {DB: '${resources.db}'}\n"
            "resources:\n  db: {type: postgres}\n",
            "containers.main.variables.DB: placeholder ${resources.db} needs an output key",
        ),
        (
            "  annotations: {'bad key': x}\ncontainers:\n  main: {image: app}\n",
            "metadata.annotations.bad key: name must be an optional DNS prefix",
        ),
        (
            "containers:\n  main:\n    image: app\n    resources: {limits: {memory: '-1'}}\n",
            "containers.main.resources.limits.memory: must be a positive number of bytes",
        ),
        (
            "containers:\n  main: {image: app}\nresources:\n  db: {type: postgres, id: Shared_DB}\n",
            "resources.db.id: must be 2 to 63 characters",
        ),
        ("containers:\n  main: {image: .}\n", "containers.main.image: '.' is Score's placeholder"),
    ],
)
def test_render_refuses_what_the_operator_would_refuse(tmp_path: Path, body: str, expected: str) -> None:
    found = problems(tmp_path, [score_file(tmp_path, "web", body)], definitions(tmp_path, "postgres"))
    assert len(found) == 1, found
    assert expected in found[0]
    assert found[0].startswith(str(tmp_path / "web.yaml"))


def test_render_refuses_a_workload_patch_that_breaks_the_workload(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "defs.yaml",
        """\
        apiVersion: strongroom.dev/v1alpha1
        kind: ResourceDefinition
        metadata: {name: wl}
        spec:
          type: workload
          driverType: strongroom/echo
          criteria: [{}]
          driverInputs:
            values:
              update:
                - {op: add, path: /spec/containers/main/livenessProbe, value: {httpGet: {path: /}}}
        """,
    )
    found = problems(tmp_path, [score_file(tmp_path, "web", "containers:\n  main: {image: app}\n")], defs)
    assert found == [
        f"{tmp_path / 'web.yaml'} (patch from definition 'wl'): the patched Workload spec is not valid: "
        "containers.main.livenessProbe.httpGet.port: Field required"
    ]


def test_upper_case_resource_types_render(tmp_path: Path) -> None:
    body = "containers:\n  main:\n    image: app\n    variables: {H: '${resources.db.host}'}\n"
    body += "resources:\n  db: {type: AmazonRDS}\n"
    result = rendered(tmp_path, [score_file(tmp_path, "web", body)], definitions(tmp_path, "AmazonRDS"))
    (resource,) = objects(result, "Resource").values()
    assert resource["spec"]["type"] == "AmazonRDS"
    assert objects(result, "Workload")["web"]["spec"]["resources"]["db"]["type"] == "AmazonRDS"


def test_double_dollar_in_params_reaches_the_resource_unescaped(tmp_path: Path) -> None:
    body = "containers:\n  main: {image: app}\nresources:\n  db:\n    type: postgres\n"
    body += "    params: {price: '$$5', literal: '$${x}', name: '${metadata.name}'}\n"
    result = rendered(tmp_path, [score_file(tmp_path, "web", body)], definitions(tmp_path, "postgres"))
    (resource,) = objects(result, "Resource").values()
    # Resource inputs are read by the Humanitec parser, where only `$${` is an escape.
    assert resource["spec"]["resourceInputs"] == {"price": "$5", "literal": "$${x}", "name": "web"}


def test_resource_annotations_go_onto_the_resource(tmp_path: Path) -> None:
    def workload(name: str, team: str) -> Path:
        body = "containers:\n  main: {image: app}\nresources:\n  db:\n    type: postgres\n    id: main\n"
        body += (
            f"    metadata:\n      annotations: {{example.com/team: {team}}}\n      other: kept-in-score\n"
        )
        return score_file(tmp_path, name, body)

    defs = definitions(tmp_path, "postgres")
    result = rendered(tmp_path, [workload("web", "a"), workload("api", "a")], defs)
    annotations = objects(result, "Resource")["postgres-shared-main"]["metadata"]["annotations"]
    assert annotations == {"example.com/team": "a", "strongroom.dev/definition": "def-0"}
    found = problems(tmp_path, [workload("web", "a"), workload("api", "b")], defs)
    assert len(found) == 1
    assert (
        "annotations of shared resource postgres.default#shared.main differ from those given in" in found[0]
    )


def test_resource_annotations_strongroom_writes_are_replaced(tmp_path: Path) -> None:
    # score-k8s accepts any annotation key. strongroom's own keys on a Resource cannot be forged from a
    # Score file: the definition's is overwritten with the definition matched, the operator's pending
    # marker is dropped; both are accepted, and two files differing only in them agree.
    def workload(name: str, forged: str) -> Path:
        body = "containers:\n  main: {image: app}\nresources:\n  db:\n    type: postgres\n    id: main\n"
        body += "    metadata:\n      annotations:\n        example.com/team: a\n"
        body += f"        strongroom.dev/definition: {forged}\n"
        body += f'        strongroom.dev/pending-apply: \'{{"driverType": "{forged}"}}\'\n'
        return score_file(tmp_path, name, body)

    defs = definitions(tmp_path, "postgres")
    result = rendered(tmp_path, [workload("web", "mine"), workload("api", "theirs")], defs)
    annotations = objects(result, "Resource")["postgres-shared-main"]["metadata"]["annotations"]
    assert annotations == {"example.com/team": "a", "strongroom.dev/definition": "def-0"}


# --- --image ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "override"),
    [
        ("repo/img:1", ImageOverride("repo/img:1")),
        ("web=repo/img:1", ImageOverride("repo/img:1", "web")),
        (
            "web.main=registry.example.com:5000/img@sha256:ab",
            ImageOverride("registry.example.com:5000/img@sha256:ab", "web", "main"),
        ),
    ],
)
def test_image_options_parse(text: str, override: ImageOverride) -> None:
    assert parse_image_option(text) == override


@pytest.mark.parametrize("text", ["", "web=", "=img", "web.=img", "img with space"])
def test_bad_image_options_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected IMAGE|non-empty"):
        parse_image_option(text)


def test_image_options_fill_placeholders_by_precedence(tmp_path: Path) -> None:
    body = "containers:\n  main: {image: .}\n  side: {image: .}\n  fixed: {image: 'nginx:1'}\n"
    files = [score_file(tmp_path, "web", body), score_file(tmp_path, "api", body)]
    images = [
        parse_image_option(text) for text in ("any:1", "api=api:2", "web.side=side:3", "web.fixed=fixed:4")
    ]
    result = rendered(tmp_path, files, definitions(tmp_path, "postgres"), images=images)
    workloads = objects(result, "Workload")
    assert {name: c["image"] for name, c in workloads["web"]["spec"]["containers"].items()} == {
        "main": "any:1",
        "side": "side:3",
        "fixed": "fixed:4",
    }
    assert {name: c["image"] for name, c in workloads["api"]["spec"]["containers"].items()} == {
        "main": "api:2",
        "side": "api:2",
        "fixed": "nginx:1",
    }


def test_image_options_that_name_nothing_or_clash_are_problems(tmp_path: Path) -> None:
    files = [score_file(tmp_path, "web", "containers:\n  main: {image: .}\n")]
    images = [parse_image_option(text) for text in ("nope=x:1", "web.other=x:1")]
    found = problems(tmp_path, files, definitions(tmp_path, "postgres"), images=images)
    assert found == [
        "--image nope=x:1: no Score file has a workload 'nope'",
        "--image web.other=x:1: no Score file has a workload 'web' with a container 'other'",
    ]


def test_cli_render_takes_image_options(tmp_path: Path) -> None:
    wl = score_file(tmp_path, "web", "containers:\n  main: {image: .}\n")
    defs = definitions(tmp_path, "postgres")
    args = ["render", "-f", str(wl), "-d", str(defs), "--app", "shop", "--env", "dev"]
    result = CliRunner().invoke(main, [*args, "--image", "web.main=ghcr.io/x/web:1.2"])
    assert result.exit_code == 0, result.output
    (workload,) = [doc for doc in yaml.safe_load_all(result.stdout) if doc and doc["kind"] == "Workload"]
    assert workload["spec"]["containers"]["main"]["image"] == "ghcr.io/x/web:1.2"
    refused = CliRunner().invoke(main, [*args, "--image", "web.=x"])
    assert refused.exit_code == 2
    assert "Invalid value for --image: 'web.=x': expected IMAGE" in refused.output


# --- YAML -------------------------------------------------------------------------------------------------


def test_score_files_are_read_as_score_go_reads_yaml(tmp_path: Path) -> None:
    body = (
        "containers:\n  main:\n    image: app\n    variables: {A: on, B: yes, C: y, D: 2024-01-02, E: off}\n"
    )
    result = rendered(tmp_path, [score_file(tmp_path, "web", body)], definitions(tmp_path, "postgres"))
    variables = objects(result, "Workload")["web"]["spec"]["containers"]["main"]["variables"]
    assert variables == {"A": "on", "B": "yes", "C": "y", "D": "2024-01-02", "E": "off"}
    refused = score_file(tmp_path, "api", "containers:\n  main:\n    image: app\n    variables: {A: true}\n")
    assert problems(tmp_path, [refused], definitions(tmp_path, "postgres")) == [
        f"{tmp_path / 'api.yaml'}: containers.main.variables.A: Input should be a valid string"
    ]


def test_definition_files_are_read_as_kubernetes_tooling_reads_yaml(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "defs.yaml",
        """\
        # a comment before the first document
        ---
        apiVersion: strongroom.dev/v1alpha1
        kind: ResourceDefinition
        metadata: {name: one}
        spec:
          type: postgres
          driverType: strongroom/echo
          criteria: [{}]
          driverInputs: {values: {port: 5432, ratio: 1e3, on: y}}
        --- {apiVersion: strongroom.dev/v1alpha1, kind: ResourceDefinition, metadata: {name: two},
             spec: {type: redis, driverType: strongroom/echo, criteria: [{}]}}
        """,
    )
    body = "containers:\n  main: {image: app}\nresources:\n  db: {type: postgres}\n  cache: {type: redis}\n"
    result = rendered(tmp_path, [score_file(tmp_path, "web", body)], defs)
    resources = objects(result, "Resource")
    # sigs.k8s.io/yaml (go-yaml v2): `on` and `y` are booleans, `1e3` is a number, keys become text.
    assert resources["postgres-web-db"]["spec"]["driverInputs"] == {
        "values": {"port": 5432, "ratio": 1000, "true": True}
    }
    assert "redis-web-cache" in resources


def test_workload_from_score_validates_as_a_workload(tmp_path: Path) -> None:
    probe = "{httpGet: {path: /, port: 80}, exec: {command: [x]}}"
    body = f"containers:\n  main:\n    image: app\n    livenessProbe: {probe}\n"
    result = rendered(tmp_path, [score_file(tmp_path, "web", body)], definitions(tmp_path, "postgres"))
    workload = Workload.model_validate(objects(result, "Workload")["web"])
    assert workload.spec.containers["main"].liveness_probe is not None


# --- before -----------------------------------------------------------------------------------------------


def test_before_starts_containers_as_init_containers_in_order() -> None:
    probe = {"httpGet": {"path": "/ready", "port": 9000}}
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "before": {"proxy": {"ready": "healthy"}, "migrate": {"ready": "complete"}},
            },
            "migrate": {"image": "migrate:1", "before": {"vault": {"ready": "started"}}},
            "proxy": {"image": "proxy:1", "readinessProbe": probe},
            "vault": {"image": "vault:1"},
            "worker": {"image": "app:1", "before": {"proxy": {"ready": "started"}}},
        }
    }
    result = ok(render_workload(make_workload(spec), [], {}, {}))
    pod = get(result, "Deployment", "api")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["main", "worker"]
    assert [(c["name"], c.get("restartPolicy")) for c in pod["initContainers"]] == [
        ("proxy", "Always"),
        ("vault", "Always"),
        ("migrate", None),
    ]
    proxy = pod["initContainers"][0]
    # `healthy` (the stronger of healthy and started): the kubelet waits for readiness before going on.
    assert proxy["startupProbe"] == proxy["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 9000}}
    assert "startupProbe" not in pod["initContainers"][1]


@pytest.mark.parametrize(
    ("containers", "problem"),
    [
        (
            {
                "main": {"image": "a", "before": {"db": {"ready": "complete"}}},
                "other": {"image": "a", "before": {"db": {"ready": "started"}}},
                "db": {"image": "d"},
            },
            "containers.other.before.db: 'db' is needed both to complete and to keep running",
        ),
        (
            {
                "main": {"image": "a", "before": {"job": {"ready": "complete"}}},
                "job": {"image": "d", "livenessProbe": {"exec": {"command": ["true"]}}},
            },
            "containers.job: it runs to completion before the others start (ready: complete in `before`), so "
            "it cannot have probes (Kubernetes: init containers may not have probes)",
        ),
        (
            {
                "main": {"image": "a", "before": {"one": {"ready": "started"}}},
                "one": {"image": "a", "before": {"two": {"ready": "started"}}},
                "two": {"image": "a", "before": {"one": {"ready": "started"}}},
            },
            "containers: `before` forms a cycle among one, two",
        ),
    ],
)
def test_before_problems_are_found_without_outputs(containers: dict[str, Any], problem: str) -> None:
    result = check(make_workload({"containers": containers}), [])
    assert len(result.problems) == 1, result.problems
    assert result.problems[0].startswith(problem)


def test_whitespace_in_a_score_placeholder_is_part_of_a_key_as_in_score_go() -> None:
    assert parse("${resources.db.my key}", score=True) == [
        Placeholder(("resources", "db", "my key"), "${resources.db.my key}")
    ]
    spec = {
        "containers": {"main": {"image": "app:1", "variables": {"A": "${ resources.db.host}"}}},
        "resources": DB,
    }
    assert check(make_workload(spec), []).problems == [
        "containers.main.variables.A: unknown placeholder ${ resources.db.host}: placeholders start with "
        "metadata. or resources."
    ]


def test_a_key_given_twice_in_a_score_file_is_an_error_as_in_score_go(tmp_path: Path) -> None:
    body = "x: &base {image: app}\ncontainers:\n  main:\n    <<: *base\n    image: other\n    image: again\n"
    found = problems(tmp_path, [score_file(tmp_path, "web", body)], definitions(tmp_path, "postgres"))
    assert found == [f"{tmp_path / 'web.yaml'}:9: not valid YAML: mapping key 'image' already defined"]


def test_secret_store_files_for_direct_mode_are_read_in_the_same_dialect(tmp_path: Path) -> None:
    from strongroom.orchestrator.direct import DirectError, load_secret_stores

    stores = write(
        tmp_path / "stores.yaml",
        """\
        apiVersion: strongroom.dev/v1alpha1
        kind: SecretStore
        metadata: {name: one}
        spec: {kubernetes: {namespace: apps}}
        ---
        apiVersion: strongroom.dev/v1alpha1
        kind: SecretStore
        metadata: {name: two, namespace: team}
        spec: {kubernetes: {namespace: apps}}
        """,
    )
    loaded = load_secret_stores([stores], "strongroom-system")
    assert [(s.metadata.name, s.metadata.namespace) for s in loaded] == [
        ("one", "strongroom-system"),
        ("two", "team"),
    ]
    broken = write(tmp_path / "broken.yaml", "kind: SecretStore\nspec: [\n")
    with pytest.raises(DirectError, match=r"broken.yaml:3: not valid YAML"):
        load_secret_stores([broken], "strongroom-system")


def test_image_options_that_disagree_for_one_container_are_a_problem(tmp_path: Path) -> None:
    files = [score_file(tmp_path, "web", "containers:\n  main: {image: .}\n")]
    images = [parse_image_option(text) for text in ("web=a:1", "web=b:2")]
    assert problems(tmp_path, files, definitions(tmp_path, "postgres"), images=images) == [
        f"{tmp_path / 'web.yaml'}: containers.main.image: --image web=a:1 and --image web=b:2 give "
        "different images"
    ]
