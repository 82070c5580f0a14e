"""crossdata: a Spark-native customer data platform on Delta Lake.

The pipeline reads in the folder names: ``world`` makes sample data, ``collect`` ingests it into
bronze and silver, ``identity`` resolves one customer per person, then ``attribution``,
``models`` and ``activation``. ``config``, ``spark``, ``lakehouse``, ``ops`` and ``cli`` are shared.
Importing the package starts nothing: no SparkSession, no JVM.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crossdata")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
