"""The Template driver's render processes: hard time limit per call, memory cap, same results as in-process.

Real worker processes (`python -m strongroom.drivers.sandbox`), no stand-ins: what is asserted is what the
operator gets when a tenant's template misbehaves.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from strongroom.drivers.base import DriverRequest, DriverResult, TemplateFailed
from strongroom.drivers.sandbox import RENDER_NICENESS, SandboxLimits, format_bytes, parse_bytes
from strongroom.drivers.template import TemplateDriver, TemplateLimitExceeded, render_request
from strongroom.stores.base import SecretValue
from tests.unit.test_drivers_template import CANARY, _request

CASES_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "templates" / "cases.yaml"

#: 342 characters that describe 9^9 (387 million) strings once the aliases are expanded.
ALIAS_BOMB = (
    "\n".join(
        [
            'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
            *(
                f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]"
                for previous, level in zip("abcdefgh", "bcdefghi", strict=True)
            ),
        ]
    )
    + "\n"
)
#: The engine's regular expressions run in Python without a deadline check: this one takes far longer
#: than any limit here (the cooperative engine deadline does not stop it; only killing the process does).
REGEX_BOMB = 'x: {{ regexMatch "(.*a){20}c" (repeat 200000 "a") }}\n'
#: 120 strings of 3 MB each: past a 128Mi address space.
MEMORY_HOG = '{{ $x := list }}{{ range until 120 }}{{ $x = append $x (repeat 3000000 "a") }}{{ end }}x: 1\n'


def _outputs(template: str, **values: Any) -> DriverRequest:
    return DriverRequest(
        guresid="g1",
        type="config",
        resource_id="shared.config",
        values={**values, "templates": {"outputs": template}},
        secrets={"token": SecretValue(CANARY)},
    )


@pytest.fixture
async def driver() -> AsyncIterator[TemplateDriver]:
    template = TemplateDriver(SandboxLimits(timeout_seconds=2.0, memory_bytes=128 * 1024 * 1024, workers=2))
    try:
        yield template
    finally:
        await template.close()


@pytest.fixture(scope="module")
async def shared() -> AsyncIterator[TemplateDriver]:
    """One pool for the many fixture renders that only compare results."""
    template = TemplateDriver(SandboxLimits(timeout_seconds=5.0))
    try:
        yield template
    finally:
        await template.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_render_past_the_time_limit_is_killed_and_its_worker_replaced(driver: TemplateDriver) -> None:
    await driver.apply(_outputs("x: 1\n"))  # a worker is running
    before = set(driver.pool.pids())

    with pytest.raises(TemplateLimitExceeded) as info:
        await driver.apply(_outputs(REGEX_BOMB))
    message = str(info.value)
    assert "2s" in message
    assert "--template-timeout" in message
    assert info.value.reason == "TemplateLimitExceeded"
    assert not info.value.retryable

    assert driver.pool.replaced == 1
    killed = before - set(driver.pool.pids())
    assert len(killed) == 1
    assert not any(_alive(pid) for pid in killed)
    # The replacement serves the next call.
    assert (await driver.apply(_outputs("x: {{ .id }}\n"))).values == {"x": "g1"}


async def test_the_event_loop_runs_while_a_render_works(driver: TemplateDriver) -> None:
    render = asyncio.create_task(driver.apply(_outputs(REGEX_BOMB)))
    ticks = 0
    while ticks < 20:  # other coroutines keep running meanwhile, the render is still going
        await asyncio.sleep(0.01)
        ticks += 1
    assert not render.done()
    with pytest.raises(TemplateLimitExceeded):
        await render


async def test_render_processes_give_the_operator_the_cpu_first(driver: TemplateDriver) -> None:
    await driver.apply(_outputs("x: 1\n"))  # a worker is running
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    workers = driver.pool.pids()
    assert workers
    for pid in workers:
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + RENDER_NICENESS)


async def test_one_namespace_cannot_take_every_render_process(driver: TemplateDriver) -> None:
    """Three regex bombs of one namespace and two workers: another namespace's render still runs while
    they do (it would otherwise wait a time limit or two behind them)."""
    from dataclasses import replace

    bombs = [
        asyncio.create_task(driver.apply(replace(_outputs(REGEX_BOMB), namespace="hostile")))
        for _ in range(3)
    ]
    await asyncio.sleep(0.3)  # the bombs are in their workers (or waiting for their namespace's turn)
    result = await driver.apply(replace(_outputs("x: {{ .driver.values.n }}\n", n=7), namespace="victim"))
    assert result.values == {"x": 7}
    assert not any(task.done() for task in bombs)  # it waited for none of them
    for task in bombs:
        with pytest.raises(TemplateLimitExceeded):
            await task
    assert driver.pool.group_limit == 1


async def test_memory_past_the_cap_fails_in_the_worker(driver: TemplateDriver) -> None:
    with pytest.raises(TemplateLimitExceeded) as info:
        await driver.apply(_outputs(MEMORY_HOG))
    assert "128Mi" in str(info.value)
    assert "--template-memory" in str(info.value)
    assert (await driver.apply(_outputs("x: 1\n"))).values == {"x": 1}


async def test_a_worker_that_dies_mid_call_fails_the_call_and_is_replaced(driver: TemplateDriver) -> None:
    await driver.apply(_outputs("x: 1\n"))
    render = asyncio.create_task(driver.apply(_outputs(REGEX_BOMB)))
    for _ in range(1000):  # until the call has a worker
        if driver.pool._busy:
            break
        await asyncio.sleep(0.01)
    (busy,) = [worker.process.pid for worker in driver.pool._busy]
    os.kill(busy, signal.SIGKILL)  # what the kernel does to a process that cannot allocate in C code
    with pytest.raises(TemplateLimitExceeded, match=r"ended abruptly.*memory limit of 128Mi"):
        await render
    assert driver.pool.replaced == 1
    assert (await driver.apply(_outputs("x: 2\n"))).values == {"x": 2}


async def test_an_alias_bomb_ends_at_the_node_budget(driver: TemplateDriver) -> None:
    with pytest.raises(TemplateLimitExceeded, match="excessive aliasing") as info:
        await driver.apply(_outputs(ALIAS_BOMB))
    assert "values.templates.outputs" in str(info.value)
    assert driver.pool.replaced == 0  # refused by the budget, not by killing the worker


async def test_limit_messages_carry_no_secret(driver: TemplateDriver) -> None:
    template = (
        "{{ $x := list }}{{ range until 100 }}"
        "{{ $x = append $x (repeat 3000000 $.driver.secrets.token) }}{{ end }}"
    )
    with pytest.raises(TemplateLimitExceeded) as info:
        await driver.apply(_outputs(template))
    assert CANARY not in str(info.value)


async def test_closing_the_driver_ends_its_workers() -> None:
    template = TemplateDriver(SandboxLimits(workers=1))
    await template.apply(_outputs("x: 1\n"))
    (pid,) = template.pool.pids()
    await template.close()
    assert not _alive(pid) or _zombie(pid)
    with pytest.raises(TemplateFailed, match="closed") as info:
        await template.apply(_outputs("x: 1\n"))
    assert info.value.retryable


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


# --- Same results as rendering in-process -----------------------------------------------------------------


def _same(in_process: DriverResult | TemplateFailed, pooled: DriverResult | TemplateFailed) -> None:
    if isinstance(in_process, TemplateFailed):
        assert isinstance(pooled, TemplateFailed)
        assert (str(pooled), pooled.reason) == (str(in_process), in_process.reason)
    else:
        assert pooled == in_process


async def _both(driver: TemplateDriver, req: DriverRequest) -> None:
    in_process: DriverResult | TemplateFailed
    pooled: DriverResult | TemplateFailed
    try:
        in_process = render_request(req, driver.pool.limits)
    except TemplateFailed as exc:
        in_process = exc
    try:
        pooled = await driver.apply(req)
    except TemplateFailed as exc:
        pooled = exc
    _same(in_process, pooled)


async def test_driver_fixtures_render_the_same_in_a_worker(shared: TemplateDriver) -> None:
    await _both(shared, _request())
    result = render_request(_request())
    await _both(shared, _request(cookie=result.cookie))
    await _both(shared, _request(type="workload", values={"templates": {"outputs": "update: []\nurl: x\n"}}))


_DETERMINISTIC = [case for case in yaml.safe_load(CASES_FILE.read_text()) if "shape" not in case]


@pytest.mark.parametrize("case", _DETERMINISTIC, ids=[case["id"] for case in _DETERMINISTIC])
async def test_engine_fixtures_render_the_same_in_a_worker(
    shared: TemplateDriver, case: dict[str, Any]
) -> None:
    # Each case's template as an object-template leaf (its text is the output value), over its data.
    source = '{{ template "case" .driver.values.data }}{{ define "case" }}' + case["template"] + "{{ end }}"
    req = DriverRequest(
        guresid="g1",
        type="config",
        resource_id="shared.config",
        values={"data": case.get("data") or {}, "templates": {"outputs": {"out": source}}},
    )
    await _both(shared, req)


# --- Flags -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("134217728", 134217728), ("128Mi", 128 << 20), ("1Gi", 1 << 30), ("500M", 500_000_000)],
)
def test_byte_counts(text: str, size: int) -> None:
    assert parse_bytes(text) == size


def test_byte_counts_are_formatted_as_given() -> None:
    assert format_bytes(128 << 20) == "128Mi"
    assert format_bytes(1 << 30) == "1Gi"


@pytest.mark.parametrize("text", ["", "128MB", "-1Mi", "1.5Gi", "lots"])
def test_bad_byte_counts(text: str) -> None:
    with pytest.raises(ValueError, match="not a byte count"):
        parse_bytes(text)


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 96Mi"):
        SandboxLimits(memory_bytes=16 << 20)
    with pytest.raises(ValueError, match="timeout"):
        SandboxLimits(timeout_seconds=0)
    with pytest.raises(ValueError, match="worker"):
        SandboxLimits(workers=0)
