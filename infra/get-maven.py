"""Install the pinned Apache Maven from Maven Central into the project cache; print its `mvn`.

Usage: python infra/get-maven.py [cache_dir]        (default: .cache/maven)

`make setup` resolves the JVM jars with this Maven, not with one found on the machine, so a
fresh machine needs only Python, Java and make, and every machine resolves with the same
Maven. The archive is checked against the SHA-512 pinned below before anything is unpacked,
and the installation appears in one rename, so an interrupted run leaves nothing half done.
A second run finds the installation and downloads nothing.

CROSSDATA_MAVEN_REPO points the download at a mirror of Maven Central (the same layout).
Certificates come from the system's store (as curl and pip use it; SSL_CERT_FILE overrides it).
Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "3.9.11"
SHA512 = (
    "bcfe4fe305c962ace56ac7b5fc7a08b87d5abd8b7e89027ab251069faebee516"
    "b0ded8961445d6d91ec1985dfe30f8153268843c89aa392733d1a3ec956c9978"
)
CENTRAL = "https://repo1.maven.org/maven2"
REPO_ENV = "CROSSDATA_MAVEN_REPO"


class MavenDownloadError(RuntimeError):
    """The archive could not be fetched, or is not the one pinned."""


def archive_url(repo: str, version: str) -> str:
    name = f"apache-maven-{version}-bin.tar.gz"
    return f"{repo.rstrip('/')}/org/apache/maven/apache-maven/{version}/{name}"


def _download(url: str, into: Path) -> str:
    """Stream ``url`` to ``into``; return the SHA-512 of what was written."""
    digest = hashlib.sha512()
    context = ssl.create_default_context()
    try:
        with (
            urllib.request.urlopen(url, timeout=60, context=context) as response,
            into.open("wb") as out,
        ):
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise MavenDownloadError(f"maven: cannot download {url}: {exc}") from exc
    return digest.hexdigest()


def install(
    cache: Path, version: str = VERSION, sha512: str = SHA512, repo: str | None = None
) -> Path:
    """The ``bin/mvn`` of Maven ``version`` under ``cache``, downloading it first if needed."""
    home = cache / f"apache-maven-{version}"
    mvn = home / "bin" / "mvn"
    if mvn.is_file():
        return mvn
    cache.mkdir(parents=True, exist_ok=True)
    url = archive_url(repo or os.environ.get(REPO_ENV) or CENTRAL, version)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        archive = Path(tmp) / "maven.tar.gz"
        got = _download(url, archive)
        if got != sha512:
            raise MavenDownloadError(
                f"maven: {url} does not match the pinned SHA-512 (got {got[:16]}..., expected "
                f"{sha512[:16]}...); nothing was installed"
            )
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                tar.extractall(unpacked, filter="data")
            else:  # older 3.11: the archive is the pinned one, checked above
                tar.extractall(unpacked)
        top = unpacked / f"apache-maven-{version}"
        if not (top / "bin" / "mvn").is_file():
            raise MavenDownloadError(f"maven: {url} holds no apache-maven-{version}/bin/mvn")
        try:
            top.rename(home)  # atomic; the temporary folder goes with what is left in it
        except OSError:
            if not mvn.is_file():  # not another run finishing first: a real failure
                raise
    return mvn


def main(argv: list[str]) -> int:
    cache = Path(argv[0] if argv else ".cache/maven").resolve()
    try:
        mvn = install(cache)
    except MavenDownloadError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(mvn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
