"""Errors a person can act on: the AWS failures an operator meets, described in one line with the fix."""

from __future__ import annotations


class WarehouseNotFound(FileNotFoundError):
    """The configured warehouse does not exist: reading it would give empty answers that look like data."""


class OutputPathRefused(ValueError):
    """An output path (``--out``) that would replace raw or table data, or that is a folder."""


class MissingExtra(ImportError):
    """An optional part of the package is not installed (e.g. pyspark, the ``[spark]`` extra); the message
    says what to install or which setting avoids it."""


def describe_aws_error(exc: BaseException) -> str | None:
    """One line for credential, region, endpoint, permission and missing-resource errors (also when wrapped
    by s3fs, pyiceberg or fsspec); None for anything else."""
    try:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NoCredentialsError):
            return ("no AWS credentials: boto3 found none (environment, ~/.aws, instance or execution role); "
                    "give the worker a role or set AWS_PROFILE / AWS_ACCESS_KEY_ID")
        if isinstance(exc, NoRegionError):
            return "no AWS region: set CHURN_AWS_REGION"
        if isinstance(exc, EndpointConnectionError):
            return (f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}: check CHURN_S3_ENDPOINT_URL / "
                    "CHURN_AWS_ENDPOINT_URL and the network")
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            return f"AWS {error.get('Code', 'error')}: {error.get('Message', str(exc))}"
        exc = exc.__cause__ or exc.__context__
    return None
