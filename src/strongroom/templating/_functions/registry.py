"""The function map handed to gotpl: which implementation each Sprig/Helm name gets, all guarded.

Every name in _signatures.SIGNATURES (but EXCLUDED) gets gotpl's HelmExtension implementation unless
REPLACEMENTS has one that behaves as Go does; a few of gotpl's get a wrapper for a Go detail; the
text/template builtins _builtins.py overrides are added. Each goes through guard.guard.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from gotpl.exts import ContextFunction
from gotpl.exts.helm import HelmExtension

from strongroom.templating import _builtins
from strongroom.templating._constants import integral_arguments
from strongroom.templating._functions import containers, encoding, numeric, reflection, urls
from strongroom.templating._functions.guard import Impl, guard
from strongroom.templating._signatures import SIGNATURES
from strongroom.templating._values import GoMap, GoNilMap

# Helm leaves these out: a template must not read the operator's environment (it holds credentials).
EXCLUDED: Final = frozenset({"env", "expandenv"})

# gotpl's implementations that differ from Go's, replaced.
REPLACEMENTS: Final[dict[str, Impl]] = {
    "urlJoin": urls.url_join,
    "urlParse": urls.url_parse,
    "dig": containers.dig,
    "round": numeric.round_,
    "ceil": numeric.ceil,
    "floor": numeric.floor,
    "toJson": encoding.to_json,
    "mustToJson": encoding.must_to_json,
    "toPrettyJson": encoding.to_pretty_json,
    "mustToPrettyJson": encoding.must_to_pretty_json,
    "toRawJson": encoding.to_raw_json,
    "mustToRawJson": encoding.must_to_raw_json,
    "toYaml": encoding.to_yaml,
    "mustToYaml": encoding.must_to_yaml,
    "fromYaml": encoding.from_yaml,
    "fromYamlArray": encoding.from_yaml_array,
    "fromJson": encoding.from_json,
    "fromJsonArray": encoding.from_json_array,
    "mustFromJson": encoding.must_from_json,
    "kindOf": reflection.kind_of,
    "typeOf": reflection.type_of,
    "typeIs": reflection.type_is,
    "typeIsLike": reflection.type_is_like,
    "kindIs": reflection.kind_is,
    "deepEqual": reflection.deep_equal,
    "has": containers.has,
    "mustHas": containers.must_has,
    "without": containers.must_without,
    "mustWithout": containers.must_without,
    "uniq": containers.must_uniq,
    "mustUniq": containers.must_uniq,
}


# mergo allocates a nil destination map when a source map is not nil, so merging into nil works.
_MERGES: Final = frozenset({"merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"})


def _allocating_merge(impl: Impl) -> Impl:
    def merge(destination: object, *sources: object) -> object:
        if isinstance(destination, GoNilMap) and not all(isinstance(s, GoNilMap) for s in sources):
            destination = GoMap()
        return impl(destination, *sources)

    return merge


def _nil_for_empty_list(impl: Impl) -> Impl:
    """Sprig's slice returns nil for an empty list before it looks at the indexes."""

    def slice_(items: object, *indexes: object) -> object:
        if isinstance(items, (list, tuple)) and not items:
            return None
        return impl(items, *indexes)

    return slice_


def _tpl_with_integral_constants(impl: ContextFunction) -> ContextFunction:
    """`tpl` compiles its source as render() does: integral float literals are ints for int parameters."""
    assert impl.sync is not None
    render_source = impl.sync
    names = frozenset(SIGNATURES) - EXCLUDED | frozenset(_builtins.BUILTIN_OVERRIDES)

    def tpl(context: Any, source: object, data: object) -> object:
        if isinstance(source, str):
            source = integral_arguments(source, "__helm_tpl__", names).source
        return render_source(context, source, data)

    return ContextFunction(sync=tpl, capabilities=impl.capabilities)


@functools.cache
def function_map() -> dict[str, Callable[..., object]]:
    """The guarded function map handed to gotpl (built once; the guards read per-render state)."""
    helm = HelmExtension(enable_dns=False)
    functions: dict[str, Callable[..., object]] = {}
    for name, signature in SIGNATURES.items():
        if name in EXCLUDED:
            continue
        impl: Any = REPLACEMENTS.get(name) or helm.functions[name]
        if name in _MERGES:
            impl = _allocating_merge(impl)
        if name in ("slice", "mustSlice"):
            impl = _nil_for_empty_list(impl)
        if name == "tpl":
            impl = _tpl_with_integral_constants(impl)
        if isinstance(impl, ContextFunction):
            assert impl.sync is not None
            functions[name] = ContextFunction(
                sync=guard(name, impl.sync, signature, with_context=True),
                capabilities=impl.capabilities,
            )
        else:
            functions[name] = guard(name, impl, signature)
    for name, builtin in _builtins.BUILTIN_OVERRIDES.items():
        functions[name] = guard(name, builtin, None, builtin_parameters=_builtins.BUILTIN_PARAMETERS[name])
    return functions
