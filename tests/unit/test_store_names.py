"""Store names are injective: no two (namespace, name, key) triples, and no two keys, share a secret.

Property tests over the encodings of the Kubernetes, GCP and Azure backends (`stores.names`) and the
AWS names (the keys themselves). Before, `output_store_key("team", "db-x", k)` and
`("team-db", "x", k)` both became `strongroom-team-db-x-...`.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from strongroom.api import constants as c
from strongroom.reconcile.resource import cookie_store_key, output_store_key
from strongroom.stores import awssm, names
from strongroom.stores.base import InvalidReference
from strongroom.stores.names import NameEncoding

ENCODINGS = {"kubernetes": names.KUBERNETES, "gcp": names.GCP, "azure": names.AZURE}

namespaces = st.from_regex(c.DNS1123_LABEL, fullmatch=True).filter(lambda s: len(s) <= 63)
object_names = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,40}[a-z0-9])?", fullmatch=True)
output_keys = st.from_regex(r"[-._a-zA-Z0-9]{1,40}", fullmatch=True)
# Any text, with the characters that matter for the escaping drawn often.
raw_keys = st.text(
    alphabet=st.one_of(st.sampled_from("-/._ kKeEyYaA0~%é"), st.characters()), min_size=1, max_size=40
)


def comparable(encoding: NameEncoding, name: str) -> str:
    """Names as the backend compares them."""
    return name.lower() if encoding.case_insensitive else name


def encoded(encoding: NameEncoding, key: str) -> str:
    try:
        return encoding.encode(key)
    except InvalidReference:
        assume(False)
        raise


@pytest.mark.parametrize("backend", ENCODINGS)
@settings(max_examples=400)
@given(key=raw_keys)
@example(key="strongroom/team/db-x/outputs/k")
@example(key="key--a")
@example(key="a/-b")
@example(key="-")
def test_every_key_decodes_back_from_a_valid_name(backend: str, key: str) -> None:
    encoding = ENCODINGS[backend]
    name = encoded(encoding, key)
    assert encoding.valid.match(name)
    assert len(name) <= encoding.max_length
    if encoding.is_raw_name(key):
        assert name == key
    else:
        assert name.startswith(names.MARKER)
        assert encoding.decode(comparable(encoding, name)) == key


@pytest.mark.parametrize("backend", ENCODINGS)
@settings(max_examples=400)
@given(a=raw_keys, b=raw_keys)
@example(a="strongroom/team/db-x/outputs/k", b="strongroom/team-db/x/outputs/k")
@example(a="a.b", b="a/b")
@example(a="key--a", b="key---a")
def test_two_keys_never_share_a_name(backend: str, a: str, b: str) -> None:
    encoding = ENCODINGS[backend]
    name_a, name_b = encoded(encoding, a), encoded(encoding, b)
    if a != b and comparable(encoding, name_a) == comparable(encoding, name_b):
        # Only raw names the backend itself does not tell apart (Azure: "Db" and "db").
        assert comparable(encoding, a) == comparable(encoding, b)
        assert encoding.is_raw_name(a)
        assert encoding.is_raw_name(b)


triples = st.tuples(namespaces, object_names, output_keys)


@pytest.mark.parametrize("backend", [*ENCODINGS, "aws"])
@settings(max_examples=400)
@given(first=triples, second=triples)
@example(first=("team", "db-x", "password"), second=("team-db", "x", "password"))
@example(first=("team", "db", "x.y"), second=("team", "db.x", "y"))
def test_output_keys_of_different_resources_never_share_a_name(
    backend: str, first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    assume(first != second)

    def name(key: str) -> str:
        if backend == "aws":
            return awssm.write_name(key)
        encoding = ENCODINGS[backend]
        return comparable(encoding, encoded(encoding, key))

    assert name(output_store_key(*first)) != name(output_store_key(*second))
    assert name(output_store_key(*first)) != name(cookie_store_key(second[0], second[1]))


aws_keys = st.text(alphabet=st.sampled_from("aZ09/_+=.@- :é"), min_size=0, max_size=20)


@settings(max_examples=300)
@given(key=aws_keys)
def test_aws_names_are_the_keys_or_refused(key: str) -> None:
    # The identity is injective; keys AWS cannot hold are refused, never mapped onto another name.
    try:
        name = awssm.write_name(key)
    except InvalidReference:
        return
    assert name == key
