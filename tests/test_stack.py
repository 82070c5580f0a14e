"""The pinned stack is pinned once: pyproject, pom and stack.py agree, and jars come from disk."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET

import pytest

from crossdata import stack
from crossdata.spark.session import session_conf

from .conftest import REPO

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _pom_properties() -> dict[str, str]:
    root = ET.parse(REPO / "infra" / "jars" / "pom.xml").getroot()
    props = root.find("m:properties", POM_NS)
    assert props is not None
    return {el.tag.split("}")[1]: (el.text or "") for el in props}


def test_pom_and_stack_name_the_same_jvm_artifacts():
    props = _pom_properties()
    assert props["delta.version"] == stack.DELTA_VERSION
    assert props["spark.minor"] == stack.SPARK_MINOR
    assert props["scala.binary"] == stack.SCALA_BINARY
    assert props["graphframes.version"] == stack.GRAPHFRAMES_VERSION


def test_pyproject_pins_match_the_stack_table():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]+\])?==([^;\s]+)", dep)
        assert m, f"{dep!r} is not pinned exactly"
        pins[m.group(1).lower()] = m.group(2)
    for dist, version in stack.PYTHON_PACKAGES.items():
        assert pins[dist] == version, dist
    assert stack.SPARK_VERSION.startswith(stack.SPARK_MINOR + ".")


def test_local_sessions_load_jars_from_the_cache_and_resolve_nothing(loaded):
    conf = session_conf(loaded.settings.spark)
    assert "spark.jars.packages" not in conf
    jars = conf["spark.jars"].split(",")
    assert any(j.endswith(stack.DELTA_JAR.jar_name) for j in jars)
    assert all(j.startswith(str(REPO / ".cache" / "jars")) for j in jars)


@pytest.mark.skipif(shutil.which("mvn") is None, reason="Maven not installed")
def test_jar_cache_re_resolves_offline(tmp_path):
    """The second resolution needs no network: Maven in offline mode finds everything locally."""
    out = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-o",
            "-f",
            str(REPO / "infra" / "jars" / "pom.xml"),
            f"-Dmaven.repo.local={REPO / '.cache' / 'm2'}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp_path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / stack.DELTA_JAR.jar_name).is_file()
