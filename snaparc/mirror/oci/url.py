"""`oci://` targets: a registry, a repository and a tag or a manifest digest.

    oci://HOST[:PORT]/REPO[/REPO...]:TAG
    oci://HOST[:PORT]/REPO[/REPO...]@sha256:DIGEST

The repository and tag grammars are those of the OCI distribution spec
("Pulling manifests": `<name>` and `<reference>`); HOST is a DNS name, an
IPv4 address or a bracketed IPv6 address. Nothing here touches the network.

The scheme spoken to the registry is https, except for loopback hosts
(`localhost`, 127.0.0.0/8, ::1), which are spoken to in plain http (spec/OCI.md,
"Addressing").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from snaparc.errors import UsageError

SCHEME = "oci://"
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"^{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
MAX_REPOSITORY = 255


@dataclass(frozen=True, slots=True)
class OCITarget:
    """A repository in a registry, with at most one of a tag or a digest."""

    host: str  # as written (IPv6 without brackets)
    port: int | None
    repository: str
    tag: str | None = None
    digest: str | None = None  # "sha256:<hex>"

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def reference(self) -> str | None:
        """What the manifest is fetched by: the digest if given, else the tag."""
        return self.digest or self.tag

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def repository_url(self) -> str:
        return f"{SCHEME}{self.netloc}/{self.repository}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository_url}@{self.digest}"
        if self.tag:
            return f"{self.repository_url}:{self.tag}"
        return self.repository_url


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_oci_url(text: str) -> bool:
    return text[: len(SCHEME)].lower() == SCHEME


def check_tag(tag: str, *, option: str = "--ref") -> str:
    if not isinstance(tag, str) or not TAG.match(tag):
        raise UsageError(
            f"{option}: {tag!r} is not an OCI tag (letters, digits, '_', '.', '-'; "
            "at most 128, not starting with '.' or '-')"
        )
    return tag


def check_repository(name: str, *, option: str) -> str:
    if not isinstance(name, str) or len(name) > MAX_REPOSITORY or not REPOSITORY.match(name):
        raise UsageError(
            f"{option}: {name!r} is not a repository name (lowercase letters, digits and "
            "'.', '_', '-' separators, components joined by '/')"
        )
    return name


def _split_host(netloc: str, text: str, option: str) -> tuple[str, int | None]:
    if not netloc:
        raise UsageError(f"{option}: {text!r} names no registry host (oci://HOST[:PORT]/REPO:TAG)")
    port_text: str | None = None
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise UsageError(f"{option}: unclosed '[' in the registry host of {text!r}")
        host, rest = netloc[1:end], netloc[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{option}: {host!r} is not an IPv6 address in {text!r}") from None
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"{option}: unexpected {rest!r} after the host in {text!r}")
            port_text = rest[1:]
    else:
        host, sep, port_part = netloc.partition(":")
        if sep:
            port_text = port_part
        if not _HOSTNAME.match(host):
            raise UsageError(f"{option}: {host!r} is not a registry host name in {text!r}")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"{option}: port {port_text!r} in {text!r} is not 1 to 65535")
        port = int(port_text)
    return host, port


def parse_oci_target(text: str, *, option: str = "URL") -> OCITarget:
    """Parse `oci://HOST[:PORT]/REPO`, `…:TAG` or `…@sha256:DIGEST` (exit 2 if malformed)."""
    if not is_oci_url(text):
        raise UsageError(f"{option}: {text!r} is not an oci:// URL")
    rest = text[len(SCHEME) :]
    if any(c in rest for c in "?#\\ \t\n") or any(ord(c) < 32 or ord(c) > 126 for c in rest):
        raise UsageError(f"{option}: {text!r} has characters an OCI reference cannot hold")
    netloc, slash, path = rest.partition("/")
    host, port = _split_host(netloc, text, option)
    if not slash or not path:
        raise UsageError(f"{option}: {text!r} names no repository (oci://HOST[:PORT]/REPO:TAG)")
    tag = digest = None
    if "@" in path:
        path, _, digest = path.partition("@")
        if not DIGEST.match(digest):
            raise UsageError(
                f"{option}: {digest!r} in {text!r} is not a manifest digest (sha256:<64 hex>)"
            )
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if digest is not None:
            raise UsageError(f"{option}: {text!r} gives both a tag and a digest; give one")
        check_tag(tag, option=option)
    if len(path) > MAX_REPOSITORY or not REPOSITORY.match(path):
        raise UsageError(
            f"{option}: {path!r} in {text!r} is not a repository name (lowercase letters, "
            "digits and '.', '_', '-' separators, components joined by '/')"
        )
    return OCITarget(host, port, path, tag=tag, digest=digest)
