"""Go text/template + Sprig rendering with Go's semantics, for the Template driver.

    from strongroom.templating import render, TemplateError
    render("{{ .name | upper }}", {"name": "db"})  # "DB"

Output matches Go byte for byte (checked against real Go by tests/integration/
test_template_fidelity.py); the known differences, the function set and the sandbox limits are in
docs/templates.md.
"""

from strongroom.templating._limits import DEFAULT_LIMITS, Limits
from strongroom.templating.engine import MissingKey, parse_yaml, render
from strongroom.templating.errors import TemplateError

__all__ = ["DEFAULT_LIMITS", "Limits", "MissingKey", "TemplateError", "parse_yaml", "render"]
