"""Spark session and jars: ``get_spark`` is the only place a session is made."""

from crossdata.spark.session import cached_jars, conf_set, get_spark, is_spark_submit, to_uri

__all__ = ["cached_jars", "conf_set", "get_spark", "is_spark_submit", "to_uri"]
