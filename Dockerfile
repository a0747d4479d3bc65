# One image for every Airflow service of docker-compose.yml (and for one-off `churn ...` runs):
# Python 3.11, Java 17 for Spark, the project and its dependencies, and Spark's S3A connector.
#
#   docker build -t churn-trials:local .
#
# bookworm, not the default python:3.11-slim (trixie): Debian trixie no longer ships OpenJDK 17.
FROM python:3.11-slim-bookworm

# pyspark 4.3.0 bundles Hadoop 3.5.0 (site-packages/pyspark/jars/hadoop-client-api-3.5.0.jar);
# hadoop-aws must be the same version. tests/compose checks this against the installed pyspark.
ARG HADOOP_VERSION=3.5.0
# AWS SDK v2 bundle hadoop-aws was built against; empty = read `aws-java-sdk-v2.version` from
# hadoop-project-${HADOOP_VERSION}.pom on Maven Central, so the pair always matches.
ARG AWS_SDK_VERSION=
ARG MAVEN_CENTRAL=https://repo1.maven.org/maven2
ARG AIRFLOW_UID=50000

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark

# Java 17 (Spark), curl (jar downloads, healthchecks), procps (`ps`, used by Spark's scripts).
# The man1 folder: the JRE's postinst fails on slim images without it.
RUN set -eux; \
    mkdir -p /usr/share/man/man1; \
    apt-get update; \
    apt-get install -y --no-install-recommends openjdk-17-jre-headless curl ca-certificates procps; \
    rm -rf /var/lib/apt/lists/*; \
    ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" "$JAVA_HOME"; \
    "$JAVA_HOME/bin/java" -version

WORKDIR /opt/churn

# 1) Dependencies only, from pyproject.toml (the core, the [airflow] and [spark] extras) at the versions of
#    constraints.txt (what CI tests): this layer is rebuilt only when one of the two changes.
COPY pyproject.toml constraints.txt ./
RUN set -eux; \
    python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['airflow'] + p['optional-dependencies']['spark']))" \
        > /tmp/requirements.txt; \
    pip install -c constraints.txt -r /tmp/requirements.txt; \
    python -c "import pyspark; assert pyspark.__version__ == '4.3.0', pyspark.__version__"; \
    test "$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" = "$SPARK_HOME"

# 2) Spark's S3A connector, which the pip distribution of pyspark lacks: hadoop-aws (same version
#    as pyspark's Hadoop) and the AWS SDK v2 bundle, from Maven Central into pyspark's jars folder,
#    each checked against Maven Central's .sha1. Hadoop 3.4+ may also use the S3 Analytics
#    Accelerator library: fetched too when the Hadoop POM declares a version for it.
RUN set -eux; \
    test -f "$SPARK_HOME/jars/hadoop-client-api-${HADOOP_VERSION}.jar" \
        || { echo "pyspark ships $(ls "$SPARK_HOME/jars" | grep hadoop-client-api), not Hadoop ${HADOOP_VERSION}"; exit 1; }; \
    fetch() { \
        curl -fsSL --retry 3 -o "$SPARK_HOME/jars/$2" "$1/$2"; \
        echo "$(curl -fsSL --retry 3 "$1/$2.sha1" | cut -c1-40)  $SPARK_HOME/jars/$2" | sha1sum -c -; \
    }; \
    pom="$(curl -fsSL --retry 3 "${MAVEN_CENTRAL}/org/apache/hadoop/hadoop-project/${HADOOP_VERSION}/hadoop-project-${HADOOP_VERSION}.pom")"; \
    sdk="${AWS_SDK_VERSION:-$(printf '%s\n' "$pom" | sed -n 's:.*<aws-java-sdk-v2.version>\([^<]*\)</aws-java-sdk-v2.version>.*:\1:p' | head -n1)}"; \
    test -n "$sdk"; \
    fetch "${MAVEN_CENTRAL}/org/apache/hadoop/hadoop-aws/${HADOOP_VERSION}" "hadoop-aws-${HADOOP_VERSION}.jar"; \
    fetch "${MAVEN_CENTRAL}/software/amazon/awssdk/bundle/${sdk}" "bundle-${sdk}.jar"; \
    aal="$(printf '%s\n' "$pom" | sed -n 's:.*<[a-z0-9.-]*analyticsaccelerator[a-z0-9.-]*version>\([^<]*\)</.*:\1:p' | head -n1)"; \
    if [ -n "$aal" ]; then \
        fetch "${MAVEN_CENTRAL}/software/amazon/s3/analyticsaccelerator/analyticsaccelerator-s3/${aal}" "analyticsaccelerator-s3-${aal}.jar"; \
    fi; \
    ls -l "$SPARK_HOME/jars" | grep -E "hadoop-aws|bundle-|analyticsaccelerator"

# 3) The project, installed editable from /opt/churn: the package churn.sql (churn.core.settings.SQL_DIR)
#    is then the folder /opt/churn/sql, which docker-compose.yml mounts from ./sql like ./dags.
#    --no-deps: everything was installed in step 1.
COPY . .
RUN set -eux; \
    pip install --no-deps -e .; \
    python -c "import churn.core.settings as s; assert str(s.SQL_DIR) == '/opt/churn/sql', s.SQL_DIR"; \
    useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir "$AIRFLOW_HOME" --create-home airflow; \
    mkdir -p "$AIRFLOW_HOME/logs" "$AIRFLOW_HOME/auth" /opt/churn/dags; \
    chown -R "${AIRFLOW_UID}:0" "$AIRFLOW_HOME"; \
    chmod -R g+rwX "$AIRFLOW_HOME"

# 4) The JVM class-data archive every local Spark start maps its classes from (churn.dev.spark_classes; ~2-3 s
#    per start), recorded here against this image's own Spark jars and Java.
ENV CHURN_SPARK_CLASS_ARCHIVE_DIR=/opt/spark-classes
RUN set -eux; \
    python -m churn.dev.spark_classes; \
    chmod -R a+rX /opt/spark-classes

USER ${AIRFLOW_UID}
EXPOSE 8080
CMD ["airflow", "version"]
