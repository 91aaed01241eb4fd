"""Which of an archive's files an OMS bundle covers, and the comparison.

model_signing hashes every regular file under the model directory except
the ignored paths: by default the git paths at the top (``.git``,
``.gitattributes``, ``.github``, ``.gitignore``; a directory ignores
everything under it), plus any ``--ignore-paths`` (relative to the model
root here), plus, when verifying, the ``ignore_paths`` the bundle lists.
The same rules are applied to the manifest's file list; empty directories
are never part of a model signature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

from snaparc.airgap.oms.errors import MalformedBundleError, OmsMismatchError
from snaparc.airgap.oms.statement import Resource, Statement, quoted
from snaparc.errors import UsageError
from snaparc.format.manifest import Digests, Manifest

# A tree as a signature sees it: path (relative to the model root) -> the
# digests of the file's content.
Tree = Mapping[str, Digests]

GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
_SHOWN = 5  # names listed per kind of difference in a message


def check_ignore_path(text: str, *, option: str = "--oms-ignore") -> str:
    """A path to ignore, relative to the model root: normalized, never escaping it."""
    if not isinstance(text, str) or not text:
        raise UsageError(f"{option} is empty: give a path relative to the snapshot root")
    if "\0" in text:
        raise UsageError(f"{option} contains a NUL character")
    p = PurePosixPath(text)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise UsageError(
            f"{option} {quoted(text)} must be a path inside the snapshot (relative, no '..')"
        )
    return str(p)


def ignore_set(
    extra: Iterable[str], *, ignore_git_paths: bool, bundle: Iterable[str] = ()
) -> tuple[str, ...]:
    """The ignored paths, sorted: `extra` (checked), the git paths, a bundle's own."""
    paths = set(extra)
    if ignore_git_paths:
        paths.update(GIT_PATHS)
    for text in bundle:
        p = PurePosixPath(text)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise MalformedBundleError(
                f"OMS statement: ignore path {quoted(text)} is not a path inside the model "
                "(it would ignore the whole tree or nothing of it)"
            )
        paths.add(str(p))
    return tuple(sorted(paths))


def _ignored(path: str, ignored: tuple[PurePosixPath, ...]) -> bool:
    p = PurePosixPath(path)
    return any(p == i or p.is_relative_to(i) for i in ignored)


def manifest_tree(manifest: Manifest) -> dict[str, Digests]:
    """The tree an archive holds (what `unpack` / `materialize DEST` write)."""
    blobs = manifest.blob_index()
    return {f.path: blobs[f.blob].digests for f in manifest.files}


def covered_files(tree: Tree, ignore_paths: Iterable[str], hash_type: str) -> dict[str, str]:
    """path -> digest (hex, `hash_type`) of every file of `tree` not ignored."""
    ignored = tuple(PurePosixPath(p) for p in ignore_paths)
    return {
        path: digests.sha256 if hash_type == "sha256" else digests.blake3
        for path, digests in tree.items()
        if not _ignored(path, ignored)
    }


def tree_resources(tree: Tree, ignore_paths: Iterable[str]) -> list[Resource]:
    return [Resource(p, d) for p, d in covered_files(tree, ignore_paths, "sha256").items()]


def _names(names: list[str]) -> str:
    shown = ", ".join(quoted(n) for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def compare(statement: Statement, tree: Tree, ignore_paths: tuple[str, ...]) -> int:
    """Refuse unless the bundle lists exactly the covered files with their digests.

    Returns the number of files compared.
    """
    archive = covered_files(tree, ignore_paths, statement.hash_type)
    bundle = {r.name: r.digest for r in statement.resources}
    unsigned = sorted(set(archive) - set(bundle))
    absent = sorted(set(bundle) - set(archive))
    changed = sorted(p for p in set(archive) & set(bundle) if archive[p] != bundle[p])
    problems: list[str] = []
    if changed:
        problems.append(f"{statement.hash_type} differs for {_names(changed)}")
    if unsigned:
        problems.append(f"in the archive but not in the bundle: {_names(unsigned)}")
    if absent:
        problems.append(f"in the bundle but not in the archive: {_names(absent)}")
    if problems:
        raise OmsMismatchError(
            "the OMS signature does not match the archive: " + "; ".join(problems),
            files=tuple(changed + unsigned + absent),
        )
    return len(archive)
