"""`strongroom operator run`: flags and environment variables become one OperatorConfig."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from strongroom import cli
from strongroom.drivers.sandbox import SandboxLimits
from strongroom.operator import app
from strongroom.operator.config import (
    DEFAULT_BIND_ADDRESS,
    LogFormat,
    LogLevel,
    OperatorConfig,
    split_list,
)

_ENV_VARS = (
    "KUBECONFIG",
    "POD_NAMESPACE",
    "STRONGROOM_KUBECONFIG",
    "STRONGROOM_NAMESPACES",
    "STRONGROOM_ALL_NAMESPACES",
    "STRONGROOM_OPERATOR_NAMESPACE",
    "STRONGROOM_LOG_FORMAT",
    "STRONGROOM_LOG_LEVEL",
    "STRONGROOM_HEALTH_ADDRESS",
    "STRONGROOM_HEALTH_PORT",
    "STRONGROOM_METRICS_ADDRESS",
    "STRONGROOM_METRICS_PORT",
    "STRONGROOM_RECONCILE_LIMIT",
    "STRONGROOM_WORKER_LIMIT",
    "STRONGROOM_NAMESPACE_WORKER_SHARE",
    "STRONGROOM_STANDALONE",
    "STRONGROOM_TEMPLATE_TIMEOUT",
    "STRONGROOM_TEMPLATE_MEMORY",
    "STRONGROOM_TEMPLATE_WORKERS",
    "STRONGROOM_EXPLICIT_GURESID_NAMESPACES",
    "STRONGROOM_MANIFEST_KINDS",
    "STRONGROOM_BUILTIN_CLUSTER_MANIFESTS",
)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[OperatorConfig]:
    """Replace the operator run with a recorder; clear every variable the command reads."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    seen: list[OperatorConfig] = []
    monkeypatch.setattr(app, "run", seen.append)
    return seen


def _invoke(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, ["operator", "run", *args], env=env)
    return result.exit_code, result.output


def test_no_flags_gives_the_documented_defaults(captured: list[OperatorConfig]) -> None:
    code, output = _invoke([])
    assert code == 0, output
    assert captured == [OperatorConfig()]
    config = captured[0]
    assert config.clusterwide
    assert config.operator_namespace == "strongroom-system"
    assert config.log_format is LogFormat.JSON
    assert (config.health_address, config.health_port, config.metrics_port) == (
        DEFAULT_BIND_ADDRESS,
        8081,
        8080,
    )
    assert config.standalone


def test_flags(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(
        [
            "--kubeconfig=/tmp/kc",
            "-n",
            "team-a",
            "--namespace",
            "team-b,team-c",
            "--operator-namespace=ops",
            "--log-format=text",
            "--log-level=DEBUG",
            "--health-address=127.0.0.1",
            "--health-port=9001",
            "--metrics-address=127.0.0.2",
            "--metrics-port=0",
            "--worker-limit=3",
            "--reconcile-limit=2",
            "--namespace-worker-share=0.25",
            "--peering",
        ]
    )
    assert code == 0, output
    assert captured == [
        OperatorConfig(
            namespaces=("team-a", "team-b", "team-c"),
            operator_namespace="ops",
            kubeconfig="/tmp/kc",
            log_format=LogFormat.TEXT,
            log_level=LogLevel.DEBUG,
            health_address="127.0.0.1",
            health_port=9001,
            metrics_address="127.0.0.2",
            metrics_port=0,
            worker_limit=3,
            reconcile_limit=2,
            namespace_worker_share=0.25,
            standalone=False,
        )
    ]
    assert captured[0].watched_namespaces == ("team-a", "team-b", "team-c", "ops")


def test_environment_variables(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(
        [],
        env={
            "KUBECONFIG": "/etc/kube/config",
            "STRONGROOM_NAMESPACES": "team-a, team-b team-a",
            "POD_NAMESPACE": "from-pod",
            "STRONGROOM_LOG_FORMAT": "text",
            "STRONGROOM_LOG_LEVEL": "warning",
            "STRONGROOM_HEALTH_ADDRESS": "127.0.0.1",
            "STRONGROOM_HEALTH_PORT": "9002",
            "STRONGROOM_METRICS_PORT": "9003",
            "STRONGROOM_WORKER_LIMIT": "7",
            "STRONGROOM_STANDALONE": "false",
        },
    )
    assert code == 0, output
    (config,) = captured
    assert config.kubeconfig == "/etc/kube/config"
    assert config.namespaces == ("team-a", "team-b")
    assert config.operator_namespace == "from-pod"
    assert config.log_format is LogFormat.TEXT
    assert config.log_level is LogLevel.WARNING
    assert (config.health_address, config.health_port, config.metrics_port) == ("127.0.0.1", 9002, 9003)
    assert config.worker_limit == 7
    assert not config.standalone


def test_strongroom_variables_win_over_generic_ones(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(
        [],
        env={
            "KUBECONFIG": "/generic",
            "STRONGROOM_KUBECONFIG": "/specific",
            "POD_NAMESPACE": "generic",
            "STRONGROOM_OPERATOR_NAMESPACE": "specific",
        },
    )
    assert code == 0, output
    assert (captured[0].kubeconfig, captured[0].operator_namespace) == ("/specific", "specific")


def test_flags_win_over_environment(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(["--log-format=json", "-n", "x"], env={"STRONGROOM_LOG_FORMAT": "text"})
    assert code == 0, output
    assert captured[0].log_format is LogFormat.JSON
    assert captured[0].namespaces == ("x",)


def test_namespace_and_all_namespaces_exclude_each_other(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(["-n", "a", "--all-namespaces"])
    assert code == 2
    assert "exclude each other" in output
    assert captured == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "Not_A_Namespace"], "not a valid namespace name"),
        (["--operator-namespace", "-bad-"], "not a valid namespace name"),
        (["--health-port", "0"], "1<=x<=65535"),
        (["--log-format", "yaml"], "'yaml' is not one of"),
        (["--worker-limit", "0"], "x>=1"),
    ],
)
def test_bad_values_are_one_line_errors(
    captured: list[OperatorConfig], args: list[str], message: str
) -> None:
    code, output = _invoke(args)
    assert code in (1, 2)
    assert message in output
    assert "Traceback" not in output
    assert captured == []


def test_help_shows_every_flag_and_its_environment_variable(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(["--help"])
    assert code == 0
    flat = " ".join(output.split())
    for flag in (
        "--kubeconfig",
        "--namespace",
        "--all-namespaces",
        "--operator-namespace",
        "--log-format",
        "--log-level",
        "--health-address",
        "--health-port",
        "--metrics-address",
        "--metrics-port",
        "--worker-limit",
        "--reconcile-limit",
        "--namespace-worker-share",
        "--standalone",
    ):
        assert flag in flat
    for name in _ENV_VARS:
        assert name in flat, name


def test_cli_defaults_match_the_config_defaults(captured: list[OperatorConfig]) -> None:
    # The defaults are spelled in two places (click options, the dataclass); keep them equal.
    _invoke([])
    defaults = OperatorConfig()
    for item in dataclasses.fields(OperatorConfig):
        assert getattr(captured[0], item.name) == getattr(defaults, item.name), item.name


def test_template_flags(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(["--template-timeout=1500ms", "--template-memory=1Gi", "--template-workers=3"])
    assert code == 0, output
    (config,) = captured
    assert config.template_limits == SandboxLimits(timeout_seconds=1.5, memory_bytes=1 << 30, workers=3)

    code, output = _invoke(["--template-memory=lots"])
    assert code != 0
    assert "--template-memory" in output
    assert "not a byte count" in output
    code, output = _invoke(["--template-memory=10Mi"])
    assert code != 0
    assert "at least 96Mi" in output


def test_split_list() -> None:
    assert split_list(["a,b", "c d", " a ", ""]) == ("a", "b", "c", "d")


def test_operator_namespace_is_served_once() -> None:
    config = OperatorConfig(namespaces=("ops", "a"), operator_namespace="ops")
    assert config.watched_namespaces == ("ops", "a")
    assert OperatorConfig().watched_namespaces == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"namespaces": ("UPPER",)},
        {"namespaces": ("a" * 64,)},
        {"health_port": 0},
        {"metrics_port": 70000},
        {"worker_limit": 0},
        {"reconcile_limit": 0},
        {"template_timeout": 0},
        {"template_memory": 1 << 20},
        {"template_workers": 0},
        {"explicit_guresid_namespaces": ("Team_A",)},
        {"manifest_kinds": ("configmap",)},
        {"manifest_kinds": ("apps/v1/Deployment",)},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked through the CLI above
        OperatorConfig(**kwargs)  # type: ignore[arg-type]


def test_resource_policy_flags(captured: list[OperatorConfig]) -> None:
    code, output = _invoke(
        [
            "--explicit-guresid-namespaces=team-a,platform",
            "--manifest-kinds",
            "ConfigMap",
            "--manifest-kinds",
            "networking.k8s.io/Ingress,apps/Deployment",
            "--builtin-cluster-manifests",
        ]
    )
    assert code == 0, output
    (config,) = captured
    assert config.explicit_guresid_namespaces == ("team-a", "platform")
    assert config.manifest_kinds == ("ConfigMap", "networking.k8s.io/Ingress", "apps/Deployment")
    assert config.builtin_cluster_manifests
    code, output = _invoke([], env={"STRONGROOM_EXPLICIT_GURESID_NAMESPACES": "*"})
    assert code == 0, output
    assert captured[-1].explicit_guresid_namespaces == ("*",)
    assert captured[-1].manifest_kinds == ("ConfigMap", "Secret", "Service", "apps/Deployment")
    assert not captured[-1].builtin_cluster_manifests
    code, output = _invoke(["--manifest-kinds=configmap"])
    assert code != 0
    assert "--manifest-kinds" in output
