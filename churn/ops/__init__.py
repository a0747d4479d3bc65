"""Deploy-time operations: the Glue/Athena catalog, `churn doctor`, `churn query`, the EMR bundle."""
