"""SecretValue never shows itself; value selection (property / field) edge cases."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from strongroom.stores.base import (
    PropertyNotFound,
    SecretRef,
    SecretValue,
    StoreError,
    select_field,
    select_property,
)
from strongroom.stores.kubernetes import select_data

PLAIN = "hunter2-very-secret"


def test_secret_value_never_prints() -> None:
    value = SecretValue(PLAIN)
    for text in (
        str(value),
        repr(value),
        f"{value}",
        f"{value!r}",
        f"{value:>40}",
        "%s" % (value,),  # noqa: UP031 - %-formatting is what logging does
        "{}".format(value),  # noqa: UP032 - str.format is a separate code path from f-strings
    ):
        assert PLAIN not in text
        assert "redacted" in text
    assert PLAIN not in str([value, {"k": value}])


def test_secret_value_never_reaches_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("strongroom.test")
    with caplog.at_level(logging.DEBUG):
        logger.info("value %s", SecretValue(PLAIN))
        logger.info("value %r", SecretValue(PLAIN))
        logger.info("mapping %s", {"password": SecretValue(PLAIN)})
        try:
            raise StoreError(f"store 's': bad value {SecretValue(PLAIN)}")
        except StoreError:
            logger.exception("failed")
    assert PLAIN not in caplog.text
    assert "redacted" in caplog.text


def test_secret_value_in_exception_messages() -> None:
    value = SecretValue(PLAIN)
    with pytest.raises(StoreError) as raised:
        raise StoreError(f"could not store {value} for key")
    assert PLAIN not in str(raised.value)
    assert PLAIN not in repr(raised.value)


def test_secret_value_refuses_pickling_and_mutation() -> None:
    value = SecretValue(PLAIN)
    with pytest.raises(TypeError):
        pickle.dumps(value)
    with pytest.raises(AttributeError):
        value._data = b"x"
    with pytest.raises(TypeError):
        json.dumps({"v": value})


def test_secret_value_reveals_where_asked() -> None:
    assert SecretValue(PLAIN).reveal() == PLAIN.encode()
    assert SecretValue(PLAIN.encode()).reveal_text() == PLAIN
    assert SecretValue("a") == SecretValue(b"a")
    assert SecretValue("a") != SecretValue("b")
    assert len(SecretValue("abc")) == 3


def test_select_property_whole_value_and_fields() -> None:
    raw = json.dumps({"user": "u", "port": 5432, "tls": {"crt": "C"}, "a.b": "dotted", "flag": True}).encode()
    assert select_property(raw, SecretRef("k"), "s").reveal() == raw
    assert select_property(raw, SecretRef("k", property="user"), "s").reveal() == b"u"
    assert select_property(raw, SecretRef("k", property="port"), "s").reveal() == b"5432"
    assert select_property(raw, SecretRef("k", property="flag"), "s").reveal() == b"true"
    assert select_property(raw, SecretRef("k", property="tls"), "s").reveal() == b'{"crt":"C"}'
    assert select_property(raw, SecretRef("k", property="tls.crt"), "s").reveal() == b"C"
    # A key that contains dots wins over walking.
    assert select_property(raw, SecretRef("k", property="a.b"), "s").reveal() == b"dotted"


def test_select_property_errors_name_no_value() -> None:
    with pytest.raises(PropertyNotFound) as raised:
        select_property(PLAIN.encode(), SecretRef("k", property="p"), "s")
    assert PLAIN not in str(raised.value)
    assert "not a JSON object" in str(raised.value)
    with pytest.raises(PropertyNotFound):
        select_property(b'{"a": 1}', SecretRef("k", property="b"), "s")
    with pytest.raises(PropertyNotFound):
        select_property(b'{"a": "x"}', SecretRef("k", property="a.b"), "s")
    with pytest.raises(PropertyNotFound):
        select_property(b"\xff\xfe", SecretRef("k", property="a"), "s")
    # A JSON array or scalar has no properties either.
    with pytest.raises(PropertyNotFound):
        select_property(b"[1, 2]", SecretRef("k", property="0"), "s")


def test_select_field_single_multiple_and_property() -> None:
    assert select_field({"value": "only"}, SecretRef("k"), "s").reveal() == b"only"
    assert select_field({"b": "2", "a": "1"}, SecretRef("k"), "s").reveal() == b'{"a":"1","b":"2"}'
    assert select_field({"a": "1", "b": {"c": 3}}, SecretRef("k", property="b.c"), "s").reveal() == b"3"
    with pytest.raises(PropertyNotFound):
        select_field({"a": "1"}, SecretRef("k", property="z"), "s")


def test_select_data_for_kubernetes_secrets() -> None:
    binary = bytes(range(256))
    assert select_data({"tls.key": binary}, SecretRef("s"), "st").reveal() == binary
    assert (
        select_data({"a": b"1", "tls.key": binary}, SecretRef("s", property="tls.key"), "st").reveal()
        == binary
    )
    assert select_data({"a": b"1", "b": b"2"}, SecretRef("s"), "st").reveal() == b'{"a":"1","b":"2"}'
    with pytest.raises(PropertyNotFound, match="binary"):
        select_data({"a": b"1", "b": binary}, SecretRef("s"), "st")
    with pytest.raises(PropertyNotFound, match="no data"):
        select_data({}, SecretRef("s"), "st")


def test_secret_ref_text() -> None:
    assert str(SecretRef("db", "3", "password")) == "db#password@3"
    assert str(SecretRef("db")) == "db"
