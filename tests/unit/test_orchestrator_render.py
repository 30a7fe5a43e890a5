"""`strongroom render`: inputs, definition matching, the resource graph, determinism, problems."""

from __future__ import annotations

import random
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from strongroom.api.resource import Resource, derive_guresid
from strongroom.cli import main
from strongroom.orchestrator import naming
from strongroom.orchestrator.emit import files, platform_drivers, to_yaml_stream
from strongroom.orchestrator.inputs import Criterion, ResourceDefinition
from strongroom.orchestrator.matching import Ambiguous, MatchContext, NoMatch, select_definition
from strongroom.orchestrator.problems import InputProblems
from strongroom.orchestrator.render import Rendered, describe_graph, render
from strongroom.reconcile.resource import guresid_of

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "app"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def score(tmp: Path, name: str, resources: str = "", variables: str = "", extra: str = "") -> Path:
    body = (
        f"apiVersion: score.dev/v1b1\nmetadata:\n  name: {name}\ncontainers:\n  main:\n    image: busybox\n"
    )
    if variables:
        body += "    variables:\n" + textwrap.indent(textwrap.dedent(variables), "      ")
    if resources:
        body += "resources:\n" + textwrap.indent(textwrap.dedent(resources), "  ")
    body += textwrap.dedent(extra)
    return write(tmp / f"{name}.score.yaml", body)


def definition(
    name: str, res_type: str, criteria: str = "- {}", driver: str = "humanitec/echo", inputs: str = ""
) -> str:
    text = f"""\
    apiVersion: strongroom.dev/v1alpha1
    kind: ResourceDefinition
    metadata:
      name: {name}
    spec:
      type: {res_type}
      driverType: {driver}
      criteria:
    {textwrap.indent(textwrap.dedent(criteria), "    ")}
    """
    text = textwrap.dedent(text)
    if inputs:
        text += "  driverInputs:\n" + textwrap.indent(textwrap.dedent(inputs), "    ")
    return text


def objects_by(rendered: Rendered, kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in rendered.crset.objects if obj["kind"] == kind}


def problems_of(*args: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(InputProblems) as info:
        render(*args, **kwargs)
    return info.value.problems


# --- Matching -------------------------------------------------------------------------------------------


def _def(name: str, *criteria: Criterion, builtin: bool = False) -> ResourceDefinition:
    return ResourceDefinition(
        name=name,
        source=f"{name}.yaml",
        type="postgres",
        driver_type="humanitec/echo",
        criteria=criteria,
        builtin=builtin,
    )


CTX = MatchContext("shop", "dev", "development", "postgres", "default", "modules.web.externals.db")


def test_most_specific_definition_wins_in_documented_order() -> None:
    defs = [
        _def("any", Criterion()),
        _def("class", Criterion(res_class="default")),
        _def("app", Criterion(app="shop")),
        _def("envtype", Criterion(env_type="development")),
        _def("env", Criterion(env="dev")),
        _def("resid", Criterion(res_id="modules.web.externals.db")),
    ]
    order = ["resid", "env", "envtype", "app", "class", "any"]
    for expected in order:
        assert select_definition(defs, CTX).name == expected
        defs = [d for d in defs if d.name != expected]
    with pytest.raises(NoMatch):
        select_definition(defs, CTX)


def test_more_fields_beat_fewer_at_the_same_top_field() -> None:
    defs = [_def("env", Criterion(env="dev")), _def("env-app", Criterion(env="dev", app="shop"))]
    assert select_definition(defs, CTX).name == "env-app"


def test_best_criterion_of_a_definition_counts() -> None:
    defs = [
        _def("two", Criterion(), Criterion(env="dev")),
        _def("app", Criterion(app="shop")),
    ]
    assert select_definition(defs, CTX).name == "two"


def test_tie_between_definitions_is_an_error() -> None:
    defs = [_def("a", Criterion(env="dev")), _def("b", Criterion(env="dev"))]
    with pytest.raises(Ambiguous, match=r"'a'.*'b'.*equally well"):
        select_definition(defs, CTX)


def test_criteria_without_class_match_only_default_class() -> None:
    defs = [_def("plain", Criterion()), _def("large", Criterion(res_class="large"))]
    large = MatchContext("shop", "dev", "dev", "postgres", "large", "x")
    assert select_definition(defs, large).name == "large"
    small = MatchContext("shop", "dev", "dev", "postgres", "small", "x")
    with pytest.raises(NoMatch, match="class 'small'"):
        select_definition(defs, small)


def test_definition_without_criteria_matches_nothing_and_builtins_lose() -> None:
    defs = [_def("none"), _def("fallback", Criterion(), builtin=True)]
    assert select_definition(defs, CTX).name == "fallback"
    defs.append(_def("user", Criterion(app="other"), Criterion()))
    assert select_definition(defs, CTX).name == "user"


def test_mismatching_field_excludes() -> None:
    defs = [_def("prod", Criterion(env="prod")), _def("other-app", Criterion(app="other"))]
    with pytest.raises(NoMatch, match="no resource definition matches"):
        select_definition(defs, CTX)


# --- The example app ------------------------------------------------------------------------------------


def render_example(**overrides: Any) -> Rendered:
    kwargs: dict[str, Any] = {"app": "shop", "env": "dev"}
    kwargs.update(overrides)
    return render(
        [EXAMPLE / "score" / "web.yaml"], [EXAMPLE / "definitions"], EXAMPLE / "values.yaml", **kwargs
    )


def test_example_app_renders_the_documented_set() -> None:
    rendered = render_example()
    crset = rendered.crset
    assert crset.namespace == "shop-dev"
    kinds = [(obj["kind"], obj["metadata"]["name"]) for obj in crset.objects]
    # No Driver: the example's postgres Driver is the platform's, installed in the operator namespace.
    assert kinds == [
        ("Namespace", "shop-dev"),
        ("SecretMapping", "shared-values"),
        ("Resource", "environment-shared-values"),
        ("Resource", "postgres-web-db"),
        ("Workload", "web"),
    ]
    for obj in crset.objects:
        assert obj["metadata"]["labels"] == {"strongroom.dev/app": "shop", "strongroom.dev/env": "dev"}
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "shop-dev"
    db = objects_by(rendered, "Resource")["postgres-web-db"]["spec"]
    assert db == {
        "type": "postgres",
        "id": "modules.web.externals.db",
        "driverType": "postgres",
    }
    env = objects_by(rendered, "Resource")["environment-shared-values"]["spec"]
    assert env["driverInputs"] == {
        "values": {"LOG_LEVEL": "info"},
        "secretRefs": {"API_KEY": {"store": "openbao", "ref": "strongroom-example/api-key"}},
    }
    mapping = objects_by(rendered, "SecretMapping")["shared-values"]["spec"]
    assert mapping == {
        "secretName": "shared-values",
        "secretData": [
            {
                "secretKey": "API_KEY",
                "secretStoreName": "openbao",
                "remoteRef": {"key": "strongroom-example/api-key"},
            }
        ],
    }
    workload = objects_by(rendered, "Workload")["web"]["spec"]
    assert workload["resources"] == {
        "db": {"type": "postgres", "id": "modules.web.externals.db"},
        "env": {"type": "environment", "id": "shared.values"},
    }
    assert workload["containers"]["main"]["variables"]["DB_PASSWORD"] == "${resources.db.password}"
    graph = describe_graph(rendered.plan)
    assert "postgres-web-db: postgres.default#modules.web.externals.db via definition 'postgres'" in graph


def test_output_is_deterministic_byte_for_byte(tmp_path: Path) -> None:
    first = to_yaml_stream(render_example().crset.objects)
    assert first == to_yaml_stream(render_example().crset.objects)
    # Same inputs read in another order (files, definitions, documents) -> same bytes.
    defs = tmp_path / "defs"
    docs = [
        definition("a-cache", "redis", inputs="values: {host: h}\n"),
        definition("b-queue", "amqp", inputs="values: {url: u}\n"),
        definition(
            "c-db", "postgres", inputs="values: {host: db}\nsecretRefs: {password: {store: s, ref: r}}\n"
        ),
    ]
    one = score(
        tmp_path / "s",
        "one",
        "db: {type: postgres, id: main}\ncache: {type: redis}\n",
        "H: ${resources.db.host}\n",
    )
    two = score(
        tmp_path / "s",
        "two",
        "db: {type: postgres, id: main}\nmq: {type: amqp}\n",
        "U: ${resources.mq.url}\n",
    )
    outputs = set()
    for seed in range(4):
        order = list(docs)
        random.Random(seed).shuffle(order)
        for stale in defs.glob("*"):
            stale.unlink()
        write(defs / "all.yaml", "---\n".join(order))
        scores = [one, two] if seed % 2 else [two, one]
        rendered = render(scores, [defs], None, app="shop", env="dev")
        outputs.add(to_yaml_stream(rendered.crset.objects))
    assert len(outputs) == 1


def test_shared_resource_is_one_node_for_all_workloads(tmp_path: Path) -> None:
    defs = write(tmp_path / "d.yaml", definition("db", "postgres", inputs="values: {host: h}\n"))
    a = score(tmp_path, "wa", "db: {type: postgres, id: main}\n")
    b = score(tmp_path, "wb", "database: {type: postgres, id: main}\nown: {type: postgres}\n")
    rendered = render([a, b], [defs], None, app="shop", env="dev")
    resources = objects_by(rendered, "Resource")
    assert sorted(resources) == ["postgres-shared-main", "postgres-wb-own"]
    assert resources["postgres-shared-main"]["spec"]["id"] == "shared.main"
    workloads = objects_by(rendered, "Workload")
    assert workloads["wa"]["spec"]["resources"]["db"]["id"] == "shared.main"
    assert workloads["wb"]["spec"]["resources"]["database"]["id"] == "shared.main"


def test_dependencies_from_definition_placeholders(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "defs.yaml",
        definition(
            "db",
            "postgres",
            inputs="""\
            values:
              host: ${resources.postgres-instance.outputs.host}
              shared: ${resources['dns.external#shared.dns'].outputs.name}
              where: ${context.app.id}/${context.env.id}/${context.res.id}
            """,
        )
        + "---\n"
        + definition("instance", "postgres-instance", inputs="values: {host: pg.internal}\n")
        + "---\n"
        + definition("dns", "dns", criteria="- {class: external}", inputs="values: {name: example.com}\n"),
    )
    wl = score(tmp_path, "web", "db: {type: postgres}\n")
    rendered = render([wl], [defs], None, app="shop", env="dev")
    resources = objects_by(rendered, "Resource")
    assert sorted(resources) == ["dns-shared-dns-external", "postgres-instance-web-db", "postgres-web-db"]
    values = resources["postgres-web-db"]["spec"]["driverInputs"]["values"]
    assert values == {
        "host": "${resources.postgres-instance-web-db.outputs.host}",
        "shared": "${resources.dns-shared-dns-external.outputs.name}",
        "where": "shop/dev/modules.web.externals.db",
    }
    # The instance was provisioned with the referring resource's id (Humanitec's default).
    assert resources["postgres-instance-web-db"]["spec"]["id"] == "modules.web.externals.db"
    assert resources["dns-shared-dns-external"]["spec"]["class"] == "external"
    order = [node.name for node in rendered.plan.order()]
    assert order.index("postgres-instance-web-db") < order.index("postgres-web-db")


def test_params_become_resource_inputs_and_dependencies(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "d.yaml",
        definition("q", "amqp", inputs="values: {url: amqp://x}\n")
        + "---\n"
        + definition("route", "route", inputs="values: {}\n"),
    )
    wl = score(
        tmp_path,
        "web",
        "mq: {type: amqp}\nroute:\n  type: route\n  params:\n"
        "    upstream: ${resources.mq.url}\n    name: ${metadata.name}\n",
    )
    rendered = render([wl], [defs], None, app="shop", env="dev")
    route = objects_by(rendered, "Resource")["route-web-route"]["spec"]
    assert route["resourceInputs"] == {"upstream": "${resources.amqp-web-mq.outputs.url}", "name": "web"}
    node = next(n for n in rendered.plan.resources.values() if n.name == "route-web-route")
    assert {dep.object_name for dep in node.depends_on} == {"amqp-web-mq"}


def test_cycles_are_errors(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "d.yaml",
        definition("a", "aaa", inputs="values: {x: '${resources.bbb.outputs.y}'}\n")
        + "---\n"
        + definition("b", "bbb", inputs="values: {y: '${resources.aaa.outputs.x}'}\n"),
    )
    wl = score(tmp_path, "web", "ra: {type: aaa}\n")
    problems = problems_of([wl], [defs], None, app="shop", env="dev")
    assert problems == ["resource graph: dependency cycle: aaa-web-ra -> bbb-web-ra -> aaa-web-ra"]


def test_values_in_definitions(tmp_path: Path) -> None:
    values = write(
        tmp_path / "values.yaml", "REGION: eu\nTOKEN: {store: vault, ref: ci/token, version: '3'}\n"
    )
    defs = write(
        tmp_path / "d.yaml",
        definition(
            "svc",
            "svc",
            inputs="values: {region: '${values.REGION}'}\n"
            "secrets: {auth: {token: '${values.TOKEN}'}, zone: 'in-${values.REGION}'}\n",
        ),
    )
    wl = score(tmp_path, "web", "sv: {type: svc}\n")
    rendered = render([wl], [defs], values, app="shop", env="dev")
    inputs = objects_by(rendered, "Resource")["svc-web-sv"]["spec"]["driverInputs"]
    assert inputs == {
        "values": {"region": "eu"},
        "secrets": {"zone": "in-eu"},
        "secretRefs": {"auth": {"token": {"store": "vault", "ref": "ci/token", "version": "3"}}},
    }
    # A secret value inlined into text would be a leak; it is refused.
    bad = write(
        tmp_path / "bad.yaml", definition("svc", "svc", inputs="values: {t: 'Bearer ${values.TOKEN}'}\n")
    )
    problems = problems_of([wl], [bad], values, app="shop", env="dev")
    assert len(problems) == 1
    assert "values.t: placeholder ${values.TOKEN} names a secret shared value" in problems[0]


def test_humanitec_definition_format(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "h.yaml",
        """\
        apiVersion: entity.humanitec.io/v1b1
        kind: Definition
        metadata:
          id: pg-prod
        entity:
          name: pg-prod
          type: postgres
          driver_type: humanitec/echo
          driver_inputs:
            values: {host: db.prod, name: "${context.app.id}"}
            secret_refs:
              password: {store: vault, ref: "db/${context.env.id}/password"}
          criteria:
            - app_id: shop
              env_type: production
            - res_id: shared.other
        """,
    )
    wl = score(
        tmp_path, "web", "db: {type: postgres}\n", "P: ${resources.db.password}\nH: ${resources.db.host}\n"
    )
    rendered = render([wl], [defs], None, app="shop", env="live", env_type="production")
    spec = objects_by(rendered, "Resource")["postgres-web-db"]["spec"]
    assert spec["driverType"] == "humanitec/echo"
    assert spec["driverInputs"] == {
        "values": {"host": "db.prod", "name": "shop"},
        "secretRefs": {"password": {"store": "vault", "ref": "db/live/password"}},
    }
    assert objects_by(rendered, "Resource")["postgres-web-db"]["metadata"]["annotations"] == {
        "strongroom.dev/definition": "pg-prod"
    }
    # env type defaults to the env id: "live" does not match env_type production.
    problems = problems_of([wl], [defs], None, app="shop", env="live")
    assert problems == [
        f"{wl}: resources.db: no resource definition matches type 'postgres', class 'default', id "
        "'modules.web.externals.db': definitions of this type (pg-prod) have no criteria matching app "
        "'shop', env 'live', class 'default'"
    ]


def test_humanitec_unsupported_fields_are_problems(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "h.yaml",
        """\
        apiVersion: entity.humanitec.io/v1b1
        kind: Definition
        metadata: {id: x}
        entity:
          type: postgres
          driver_type: humanitec/echo
          driver_account: aws-prod
          driver_inputs:
            secret_refs:
              password: {value: hunter2}
        """,
    )
    wl = score(tmp_path, "web")
    problems = problems_of([wl], [defs], None, app="shop", env="dev")
    assert any("entity.driver_account: cloud accounts are not supported" in p for p in problems)
    assert any("secret_refs.password" in p and "plaintext `value`" in p for p in problems)
    assert all("hunter2" not in p for p in problems)


LITERAL_CANARY = "canary-literal-in-git-5d1e"


def test_literal_secrets_in_definitions_are_refused_in_both_formats(tmp_path: Path) -> None:
    """A secret written into a definition's driver inputs would be in Git (the definition) and in the
    Resource spec (GitOps mode commits it): every leaf of `secrets` must name where its value is kept."""
    values = write(tmp_path / "values.yaml", "TOKEN: {store: vault, ref: ci/token}\n")
    ours = write(
        tmp_path / "defs" / "ours.yaml",
        definition(
            "ours",
            "svc",
            inputs=f"secrets: {{password: {LITERAL_CANARY}, nested: {{port: 5432}}, "
            "ok: '${values.TOKEN}'}\n",
        ),
    )
    write(
        tmp_path / "defs" / "theirs.yaml",
        f"""\
        apiVersion: entity.humanitec.io/v1b1
        kind: Definition
        metadata: {{id: theirs}}
        entity:
          type: cache
          driver_type: humanitec/echo
          driver_inputs:
            secrets:
              auth: "Bearer {LITERAL_CANARY}"
              context_only: "${{context.app.id}}"
          criteria: [{{}}]
        """,
    )
    # The Template driver's templates are template text, not values; anything else under secrets is checked.
    write(
        tmp_path / "defs" / "template.yaml",
        definition(
            "tpl",
            "config",
            driver="humanitec/template",
            inputs=f"secrets: {{templates: {{outputs: 'x: 1'}}, key: {LITERAL_CANARY}}}\n",
        ),
    )
    wl = score(tmp_path, "web", "sv: {type: svc}\n")
    problems = problems_of([wl], [tmp_path / "defs"], values, app="shop", env="dev")
    literal = [p for p in problems if "would be kept in Git" in p]
    assert sorted(line.split(": a secret value")[0] for line in literal) == sorted(
        [
            f"{ours} (definition 'ours'): spec.driverInputs.secrets.nested.port",
            f"{ours} (definition 'ours'): spec.driverInputs.secrets.password",
            f"{tmp_path / 'defs' / 'template.yaml'} (definition 'tpl'): spec.driverInputs.secrets.key",
            f"{tmp_path / 'defs' / 'theirs.yaml'} (definition 'theirs'): entity.driver_inputs.secrets.auth",
            f"{tmp_path / 'defs' / 'theirs.yaml'} (definition 'theirs'): "
            "entity.driver_inputs.secrets.context_only",
        ]
    )
    assert all(LITERAL_CANARY not in line for line in problems)

    # The CLI: one line each, non-zero exit, no traceback, no value.
    result = CliRunner().invoke(
        main,
        [
            "render",
            "-f",
            str(wl),
            "-d",
            str(tmp_path / "defs"),
            "--values",
            str(values),
            "--app",
            "shop",
            "--env",
            "dev",
        ],
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert sum("would be kept in Git" in line for line in lines) == 5
    assert "Traceback" not in result.output
    assert LITERAL_CANARY not in result.output


def test_workload_type_resource_becomes_a_workload_patch(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "w.yaml",
        definition(
            "otel",
            "workload",
            driver="humanitec/template",
            inputs="""\
            values:
              templates:
                outputs: |
                  update:
                    - op: add
                      path: /spec/containers/main/variables/OTEL_SERVICE_NAME
                      value: {{ .resource.workloadName }}-${context.env.id}
            """,
        ),
    )
    wl = score(tmp_path, "web")
    rendered = render([wl], [defs], None, app="shop", env="dev")
    patch = objects_by(rendered, "WorkloadPatch")["web-workload"]
    assert patch["spec"] == {
        "workloadName": "web",
        "patches": [
            {"op": "add", "path": "/spec/containers/main/variables/OTEL_SERVICE_NAME", "value": "web-dev"}
        ],
    }
    assert "Resource" not in {obj["kind"] for obj in rendered.crset.objects}


def test_workload_type_resource_with_secrets_is_left_to_the_operator(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "w.yaml",
        definition("w", "workload", inputs="secretRefs: {token: {store: s, ref: r}}\n"),
    )
    wl = score(tmp_path, "web")
    rendered = render([wl], [defs], None, app="shop", env="dev")
    resource = objects_by(rendered, "Resource")["workload-modules-web"]
    assert resource["spec"]["resourceInputs"] == {"workloadName": "web"}
    assert objects_by(rendered, "Workload")["web"]["spec"]["resources"] == {
        "workload": {"type": "workload", "id": "modules.web"}
    }
    assert "WorkloadPatch" not in {obj["kind"] for obj in rendered.crset.objects}


def test_file_sources_are_inlined(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "app.conf", "level=${resources.env.LEVEL}\n")
    (tmp_path / "conf" / "logo.bin").write_bytes(b"\x89PNG\xff\x00")
    values = write(tmp_path / "values.yaml", "LEVEL: debug\n")
    wl = score(
        tmp_path,
        "web",
        "env: {type: environment}\n",
        extra="",
    )
    text = wl.read_text().replace(
        "    image: busybox\n",
        "    image: busybox\n    files:\n      - target: /etc/app.conf\n        source: conf/app.conf\n"
        "      - target: /logo\n        source: conf/logo.bin\n",
    )
    wl.write_text(text)
    rendered = render([wl], [], values, app="shop", env="dev")
    files_spec = objects_by(rendered, "Workload")["web"]["spec"]["containers"]["main"]["files"]
    assert files_spec == {
        "/etc/app.conf": {"content": "level=${resources.env.LEVEL}\n"},
        "/logo": {"binaryContent": "iVBOR/8A"},
    }


# --- Problems: one clear line each, all at once -----------------------------------------------------------


def test_every_problem_is_reported_once_on_its_own_line(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "d.yaml",
        definition(
            "db", "postgres", inputs="values: {host: h, x: '${context.nope}', whole: '${resources.db}'}\n"
        )
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    wl = score(
        tmp_path,
        "web",
        "db: {type: postgres}\nmq: {type: queue}\n",
        "A: ${resources.db.missing}\nB: ${resources.nope.x}\nC: ${secrets.x}\nD: ${resources.db.host\n",
    )
    problems = problems_of([wl], [defs], None, app="Shop", env="dev")
    text = "\n".join(problems)
    assert len(problems) == len(set(problems)) >= 8
    assert any(p.startswith("--app: 'Shop' must be lower-case") for p in problems)
    assert f"{defs}#2: not a resource definition" in text
    assert "values.x: unknown placeholder ${context.nope}" in text
    assert "values.whole: placeholder ${resources.db}: in a resource definition write" in text
    assert "resources.mq: no resource definition matches type 'queue'" in text
    assert (
        "variables.A: placeholder ${resources.db.missing}: there is no output 'missing' "
        "(known: host, whole, x)" in text
    )
    assert "variables.B: placeholder ${resources.nope.x} refers to resource 'nope'" in text
    assert "variables.C: unknown placeholder ${secrets.x}" in text
    assert "variables.D: malformed placeholder" in text
    for line in problems:
        assert "\n" not in line


def test_unknown_driver_and_bad_inputs(tmp_path: Path) -> None:
    defs = write(
        tmp_path / "d.yaml",
        definition("db", "postgres", driver="my-driver")
        + "---\n"
        + definition("db", "redis")
        + "---\napiVersion: strongroom.dev/v1alpha1\nkind: ResourceDefinition\nmetadata: {name: bad}\n"
        "spec: {type: -bad-, driverType: x, surprise: 1}\n",
    )
    wl = score(tmp_path, "web", "db: {type: postgres}\n")
    values = write(tmp_path / "v.yaml", "GOOD: 1\nbad key: x\nREF: {store: vault}\n")
    problems = problems_of([wl, tmp_path / "missing.yaml"], [defs], values, app="shop", env="dev")
    text = "\n".join(problems)
    assert "definition 'db' is also defined in" in text
    assert "spec.type: String should match pattern" in text
    assert "spec.surprise: Extra inputs are not permitted" in text
    assert "bad key: a value's key may hold" in text
    assert "REF: ref: Field required" in text
    assert "missing.yaml: cannot read" in text


def test_score_validation_problems(tmp_path: Path) -> None:
    wl = write(tmp_path / "s.yaml", "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers: {}\n")
    old = write(tmp_path / "o.yaml", "apiVersion: score.dev/v1a1\nmetadata: {name: x}\n")
    problems = problems_of([wl, old], [], None, app="shop", env="dev")
    assert problems == [
        f"{wl}: containers: Dictionary should have at least 1 item after validation, not 0",
        f"{old}: apiVersion must be score.dev/v1b1, not 'score.dev/v1a1'",
    ]


# --- Names ------------------------------------------------------------------------------------------------


def test_names() -> None:
    assert naming.namespace_for("shop", "dev") == "shop-dev"
    long = naming.namespace_for("a" * 40, "b" * 40)
    assert len(long) <= 63
    assert long == naming.namespace_for("a" * 40, "b" * 40)
    assert naming.resource_object_name("postgres", "default", "modules.web.externals.db") == "postgres-web-db"
    assert naming.resource_object_name("dns", "x", "shared.dns") == "dns-shared-dns-x"
    odd = naming.resource_object_name("s3", "default", "modules.Web_App.externals.Data")
    assert odd.startswith("s3-web-app-data-")
    assert naming.is_dns_label(odd)
    assert odd != naming.resource_object_name("s3", "default", "modules.web-app.externals.data")
    assert not hasattr(naming, "guresid")  # one derivation: the operator's (api.resource.derive_guresid)


def test_context_guresid_is_the_one_the_operator_derives_in_the_namespace(tmp_path: Path) -> None:
    # `${context.res.guresid}` (and direct mode) name the driver resource the operator addresses: its
    # GUResID, bound to the namespace (app-env). The emitted Resource carries no spec.guresid.
    defs = write(
        tmp_path / "defs.yaml",
        definition("db", "postgres", inputs="values:\n  gid: ${context.res.guresid}\n"),
    )
    rendered = render([score(tmp_path, "web", "db: {type: postgres}\n")], [defs], None, app="shop", env="dev")
    db = objects_by(rendered, "Resource")["postgres-web-db"]
    assert "guresid" not in db["spec"]
    resource = Resource.model_validate(db)
    expected = derive_guresid("shop-dev", "postgres", "default", "modules.web.externals.db")
    assert db["spec"]["driverInputs"]["values"]["gid"] == expected
    assert guresid_of(resource) == expected


def example_args(*extra: str) -> list[str]:
    return [
        "render",
        "-f",
        str(EXAMPLE / "score" / "web.yaml"),
        "-d",
        str(EXAMPLE / "definitions"),
        "--values",
        str(EXAMPLE / "values.yaml"),
        "--app",
        "shop",
        "--env",
        "dev",
        *extra,
    ]


def test_cli_render_prints_yaml_and_writes_the_gitops_layout(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, example_args("-o", str(tmp_path / "out")))
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert docs[0]["kind"] == "Namespace"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(files(render_example().crset.objects))
    assert "resource-postgres-web-db.yaml" in written
    again = runner.invoke(main, example_args())
    assert again.stdout == result.stdout
    graph = runner.invoke(main, example_args("--graph"))
    assert graph.exit_code == 0
    assert "workloads:\n  web: db -> postgres-web-db, env -> environment-shared-values" in graph.stdout


def test_platform_drivers_are_rendered_for_the_operator_namespace_and_allow_the_environment(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(main, example_args("--drivers"))
    assert result.exit_code == 0, result.output
    [driver] = list(yaml.safe_load_all(result.stdout))
    assert driver == {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Driver",
        "metadata": {"name": "postgres", "namespace": "strongroom-system"},
        "spec": {
            "allowClusterManifests": False,
            "allowedNamespaces": ["shop-dev"],
            "sign": True,
            "target": "http://postgres-driver.strongroom-system.svc:8080/",
            "timeouts": {"operation": "5m", "request": "30s"},
        },
    }
    other = CliRunner().invoke(main, example_args("--drivers", "--operator-namespace", "platform"))
    assert yaml.safe_load(other.stdout)["metadata"]["namespace"] == "platform"
    # Namespaces the definition file's Driver names already are kept; "*" needs none added.
    defs = tmp_path / "defs"
    shutil.copytree(EXAMPLE / "definitions", defs)
    text = (defs / "postgres.yaml").read_text()
    for allowed, expected in ((["shop-prod"], ["shop-dev", "shop-prod"]), (["*"], ["*"])):
        (defs / "postgres.yaml").write_text(text + f"  allowedNamespaces: {allowed}\n".replace("'", '"'))
        rendered = render(
            [EXAMPLE / "score" / "web.yaml"], [defs], EXAMPLE / "values.yaml", app="shop", env="dev"
        )
        [driver] = platform_drivers(rendered.plan, "strongroom-system")
        assert driver["spec"]["allowedNamespaces"] == expected
    # Unused Drivers of the definition files are not rendered: a namespace is opened only to what it uses.
    (defs / "postgres.yaml").write_text(text + "---\n" + text.split("---")[1].replace("postgres", "unused"))
    rendered = render(
        [EXAMPLE / "score" / "web.yaml"], [defs], EXAMPLE / "values.yaml", app="shop", env="dev"
    )
    assert [d["metadata"]["name"] for d in platform_drivers(rendered.plan, "ns")] == ["postgres"]
    # Built-in drivers only: nothing to install, and the command says so.
    builtin = CliRunner().invoke(main, ["render", "--drivers", "-f", str(score(tmp_path, "web")), "--app",
                                        "shop", "--env", "dev"])  # fmt: skip
    assert builtin.exit_code == 0, builtin.output
    assert builtin.stdout == ""
    assert "built-in drivers only" in builtin.stderr
    assert CliRunner().invoke(main, example_args("--drivers", "--graph")).exit_code == 2


def test_cli_render_problems_are_lines_without_traceback(tmp_path: Path) -> None:
    wl = score(tmp_path, "web", "db: {type: postgres}\n", "X: ${resources.db.host}\n")
    result = CliRunner().invoke(main, ["render", "-f", str(wl), "--app", "shop", "--env", "dev"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {wl}: resources.db: no resource definition matches type 'postgres', class 'default', id "
        "'modules.web.externals.db': there is no definition of this type"
    ]
    assert "Traceback" not in result.output
