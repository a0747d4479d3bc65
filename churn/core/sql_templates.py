"""Load SQL files from ``sql/`` and render their Jinja structure (never their values).

Values stay Spark named parameters (``:name``), bound by the engine; Jinja only expands the parts
that come from configuration, such as one column per configured count feature.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from churn.core.settings import SQL_DIR


def sql_list(values) -> str:
    """Render strings as a SQL literal list, escaping quotes: ['a', "b'c"] -> 'a', 'b''c'."""
    items = sorted(set(values)) if isinstance(values, set) else list(values)
    if not items:
        return "NULL"  # `x IN (NULL)` matches nothing
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in items)


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(SQL_DIR)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)
_ENV.filters["sql_list"] = sql_list


def render(relative_path: str, **context) -> str:
    """Render ``sql/<relative_path>`` with the given template context."""
    if not (Path(SQL_DIR) / relative_path).exists():
        raise FileNotFoundError(f"SQL file {SQL_DIR / relative_path} not found")
    return _ENV.get_template(relative_path).render(**context)
