"""Helm's `toYaml`/`fromYaml` as Go computes them, on top of PyYAML's emitter and parser.

Helm (and our Go oracle) use sigs.k8s.io/yaml, which goes through JSON in both directions with
go-yaml v2 (YAML 1.1) underneath. That decides what the output looks like:

* toYaml: json.Marshal first, so floats that print without a fraction (`2.0`, `1000000.0`) come
  back as integers and other floats are printed in Go's shortest `%g` form (`1e-06`,
  `1.2345675e+06`); keys are ordered by go-yaml's "natural" order (`item2` before `item10`,
  `_x` before digits); a string is double-quoted when go-yaml v2 would read it back as something
  else (`"y"`, `"n"`, `"on"`, `"1e3"`, `"0o17"`, `"1:20"`), and block-literal when it has a newline.
* fromYaml: plain scalars resolve by go-yaml v2's rules (`y`/`n`/`on`/`off` are booleans,
  `0o17`/`1_000`/`1e3` are numbers, dates stay strings) and then every number becomes a float64
  and every key a string, because the result went through JSON.

PyYAML's emitter is a port of the same libyaml emitter go-yaml v2 ported, so with the resolution
and representation choices above made here, its layout (indentation, quoting fallbacks, folding
at 80 columns) matches.

One module per step: resolver (go-yaml v2's plain-scalar resolution, both directions need it), loader
(fromYaml, parse_yaml and their node budget) and dumper (toYaml).
"""

from strongroom.templating._goyaml.dumper import to_yaml
from strongroom.templating._goyaml.loader import YamlBudgetExceeded, from_yaml, from_yaml_array, parse_yaml
from strongroom.templating._goyaml.resolver import needs_quotes, resolve_plain

__all__ = [
    "YamlBudgetExceeded",
    "from_yaml",
    "from_yaml_array",
    "needs_quotes",
    "parse_yaml",
    "resolve_plain",
    "to_yaml",
]
