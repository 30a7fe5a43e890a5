"""The template function map: Sprig v3 and Helm-style extras, each behind a guard.

The implementations come from gotpl's Sprig port and HelmExtension, with the ones that differ from
Go replaced here (JSON/YAML encoding and decoding, deep equality, kind names) or in _builtins.py.
`env` and `expandenv` are left out, as Helm leaves them out: a template must not read the operator's
environment (it holds credentials). `getHostByName` answers "" as Helm's does without `--enable-dns`:
no template reaches the network.

One module per concern:

* registry: the name -> implementation map (function_map, REPLACEMENTS, EXCLUDED);
* guard: the wrapper every function runs in (deadline, size checks, Go-shaped errors), with
  conversion (arguments and results by Go type) and prechecks (size checks before a call);
* the replacements by Sprig family: encoding (JSON/YAML), reflection (kinds, types, deepEqual),
  containers (lists and dicts), numeric (round/ceil/floor), urls, semver (Go's *semver.Version).
"""

from strongroom.templating._functions.registry import EXCLUDED, function_map
from strongroom.templating._functions.semver import ALLOWED_ATTRIBUTES, ALLOWED_METHODS

__all__ = ["ALLOWED_ATTRIBUTES", "ALLOWED_METHODS", "EXCLUDED", "function_map"]
