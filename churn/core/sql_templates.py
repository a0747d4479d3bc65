"""Load SQL files from ``sql/`` and render their Jinja structure (never their values).

Values stay Spark named parameters (``:name``), bound by the engine; Jinja only expands the parts
that come from configuration, such as one column per configured count feature.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from churn.core.settings import SQL_DIR


def sql_string(value: str) -> str:
    r"""A Spark SQL string literal of ``value``, whatever it contains.

    Spark reads backslash escapes in literals, so ``\`` and ``'`` are both escaped with a backslash:
    a configured ``mobile\`` cannot close its own quote. DuckDB gets the SQL through sqlglot's Spark to
    DuckDB translation, which turns the same literal into DuckDB's quoting (tested on both engines).
    """
    text = str(value)
    if any(ord(ch) < 32 for ch in text):
        raise ValueError(f"SQL string value {text!r} contains a control character")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_list(values) -> str:
    """Render strings as a SQL literal list (each through :func:`sql_string`)."""
    items = sorted(set(values)) if isinstance(values, set) else list(values)
    if not items:
        return "NULL"  # `x IN (NULL)` matches nothing
    return ", ".join(sql_string(v) for v in items)


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(SQL_DIR)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)
_ENV.filters["sql_list"] = sql_list


def render(relative_path: str, **context) -> str:
    """Render ``sql/<relative_path>`` with the given template context."""
    if not (Path(SQL_DIR) / relative_path).exists():
        raise FileNotFoundError(f"SQL file {SQL_DIR / relative_path} not found")
    return _ENV.get_template(relative_path).render(**context)
