"""The pinned stack: one table of what crossdata runs on, used by ``doctor``, README and the jars.

Python pins live in pyproject.toml; the JVM artifacts are listed here and in infra/jars/pom.xml
(tests/test_stack.py fails if the two drift apart).
"""

from __future__ import annotations

from dataclasses import dataclass

SPARK_VERSION = "4.2.0"
SPARK_MINOR = "4.2"
SCALA_BINARY = "2.13"
DELTA_VERSION = "4.4.0"
GRAPHFRAMES_VERSION = "0.12.3"
MLFLOW_VERSION = "3.17.2"
JAVA_MAJOR = 17


@dataclass(frozen=True)
class MavenArtifact:
    """A jar Spark needs beside pyspark's own, by Maven coordinates."""

    group: str
    artifact: str
    version: str
    required: bool
    purpose: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def jar_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"


DELTA_JAR = MavenArtifact(
    "io.delta",
    f"delta-spark_{SPARK_MINOR}_{SCALA_BINARY}",
    DELTA_VERSION,
    required=True,
    purpose="Delta Lake tables",
)
GRAPHFRAMES_JAR = MavenArtifact(
    "io.graphframes",
    f"graphframes-spark4_{SCALA_BINARY}",
    GRAPHFRAMES_VERSION,
    required=False,
    purpose="identity graph (the native engine stands in when it is absent)",
)
JVM_ARTIFACTS: tuple[MavenArtifact, ...] = (DELTA_JAR, GRAPHFRAMES_JAR)

# Python distribution name -> pinned version, for doctor's matrix.
PYTHON_PACKAGES: dict[str, str] = {
    "pyspark": SPARK_VERSION,
    "delta-spark": DELTA_VERSION,
    "graphframes-py": GRAPHFRAMES_VERSION,
    "mlflow": MLFLOW_VERSION,
}
