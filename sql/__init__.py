"""Package data: the feature SQL (``features/``), the default feature configuration and the Athena DDL
(``athena/``). Installed as the package ``churn.sql`` so that a wheel carries it; code finds it through
``importlib.resources`` (``churn.core.settings.SQL_DIR``), never through the source tree."""
