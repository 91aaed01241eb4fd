"""`snaparc mirror push|pull|ls|rm|gc|check`: archives to and from a directory
or S3 mirror, and the mirror's lifecycle.

Imports of the mirror machinery (and obstore, for s3:// URLs) happen inside
the command functions, so `snaparc --help` stays light.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from snaparc.commands._common import (
    Meter,
    add_limits,
    add_progress,
    add_s3,
    add_threads,
    limits_from,
    print_json,
    s3_from,
)

if TYPE_CHECKING:
    from snaparc.api import OCIListed


def _add_remote(p: argparse.ArgumentParser, *, jobs: bool = True) -> None:
    add_s3(p)
    if jobs:
        p.add_argument(
            "--jobs",
            type=int,
            default=4,
            metavar="N",
            help="objects transferred in parallel, 1 or more (default 4; memory about N x 36 MiB)",
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "mirror",
        help="push archives to / pull them from a directory or S3 mirror",
        description="Content-addressed mirrors of .dlmsnap archives (spec/MIRROR.md). "
        "URL: a directory path, file:///path or s3://bucket/prefix; "
        "append :REF for a ref or @ID for an archive id. push and pull also take an OCI "
        "registry: oci://HOST[:PORT]/REPO:TAG (pull also @sha256:DIGEST), and ls "
        "oci://HOST[:PORT]/REPO lists its tags (spec/OCI.md).",
    )
    msub = p.add_subparsers(dest="mirror_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: _help(p))
    for parsers in (sub, msub):  # `snaparc push` and `snaparc mirror push` alike
        _add_push(parsers)
        _add_pull(parsers)

    ls = msub.add_parser("ls", help="list refs and archives, their sizes and the bytes they share")
    ls.add_argument("url", metavar="URL")
    ls.add_argument("--json", action="store_true", help="machine-readable listing")
    _add_remote(ls, jobs=False)
    ls.set_defaults(func=run_ls)
    _add_lifecycle(msub)


def _add_lifecycle(msub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rm = msub.add_parser(
        "rm",
        help="drop a ref (URL:REF) or an archive record (URL@ID); parts go with the next gc",
    )
    rm.add_argument("target", metavar="URL:REF|URL@ID")
    rm.add_argument(
        "--force",
        action="store_true",
        help="remove an archive record even while refs name it (and those refs with it)",
    )
    rm.add_argument("--json", action="store_true", help="machine-readable report")
    _add_remote(rm, jobs=False)
    rm.set_defaults(func=run_rm)

    gc = msub.add_parser(
        "gc",
        help="delete every part no archive record reaches (safe beside pushes and pulls)",
    )
    gc.add_argument("url", metavar="URL")
    gc.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    gc.add_argument("--json", action="store_true", help="machine-readable report")
    _add_remote(gc, jobs=False)
    gc.set_defaults(func=run_gc)

    check = msub.add_parser(
        "check",
        help="check every record, part and ref (exit 1 on damage, naming it)",
    )
    check.add_argument("url", metavar="URL")
    check.add_argument(
        "--read-data",
        action="store_true",
        help="also read every part (sha256) and verify every archive (sha256 + blake3)",
    )
    check.add_argument("--json", action="store_true", help="machine-readable report")
    _add_remote(check)
    add_progress(check)
    add_threads(check)
    add_limits(check)
    check.set_defaults(func=run_check)


def _add_push(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = sub.add_parser("push", help="verify ARCHIVE, upload what the mirror lacks, set a ref")
    push.add_argument("archive", metavar="ARCHIVE")
    push.add_argument("url", metavar="URL[:REF]")
    push.add_argument("--ref", metavar="NAME", help="point ref NAME at the archive (last step)")
    push.add_argument(
        "--mount-from",
        metavar="REPO",
        help="oci:// only: mount blobs the registry holds in repository REPO, not send them",
    )
    push.add_argument("--json", action="store_true", help="machine-readable report")
    _add_remote(push)
    add_progress(push)
    add_threads(push)
    add_limits(push)
    push.set_defaults(func=run_push)


def _add_pull(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = sub.add_parser("pull", help="rebuild a byte-identical, verified archive file")
    pull.add_argument("target", metavar="URL:REF|URL@ID")
    pull.add_argument("-o", "--output", required=True, metavar="FILE")
    pull.add_argument("--force", action="store_true", help="replace FILE if it exists")
    pull.add_argument(
        "--no-resume",
        action="store_true",
        help="start afresh: do not reuse what a killed pull of FILE had fetched",
    )
    pull.add_argument("--json", action="store_true", help="machine-readable report")
    _add_remote(pull)
    add_progress(pull)
    add_threads(pull)
    add_limits(pull)
    pull.set_defaults(func=run_pull)


def _help(p: argparse.ArgumentParser) -> int:
    import sys

    p.print_help(sys.stderr)
    return 2


def _human(n: int) -> str:
    from snaparc.progress import human_bytes

    return human_bytes(n)


def run_push(args: argparse.Namespace) -> int:
    from snaparc.api import push

    with Meter(args, "push") as meter:
        done = push(
            args.archive,
            args.url,
            ref=args.ref,
            jobs=args.jobs,
            threads=args.threads,
            limits=limits_from(args),
            s3=s3_from(args),
            allow_http=args.allow_http,
            mount_from=args.mount_from,
            progress=meter,
        )
    if args.json:
        print_json(done.to_json())
        return 0
    if args.quiet:
        return 0
    r = done.report
    print(f"pushed {r.archive_id} to {done.url}" + (f" as {r.ref}" if r.ref else ""))
    digest = getattr(r, "manifest_digest", None)
    if digest:
        print(f"manifest {digest}")
    print(
        f"sent {_human(r.bytes_sent)} ({r.bytes_sent} bytes, {r.objects_sent} objects), "
        f"skipped {_human(r.bytes_skipped)} already in the mirror "
        f"({r.bytes_skipped} bytes, {r.objects_skipped} objects)"
        + (f", {retries} requests retried" if (retries := getattr(r, "retries", 0)) else "")
    )
    if r.kept_other_encoding:
        print(
            "note: the mirror already holds this archive id compressed differently; "
            "pulls rebuild that file (same content, other bytes)"
        )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from snaparc.api import pull

    with Meter(args, "pull") as meter:
        done = pull(
            args.target,
            args.output,
            force=args.force,
            resume=not args.no_resume,
            jobs=args.jobs,
            threads=args.threads,
            limits=limits_from(args),
            s3=s3_from(args),
            allow_http=args.allow_http,
            progress=meter,
        )
    if args.json:
        print_json(done.to_json())
    elif not args.quiet:
        r = done.report
        print(
            f"pulled {r.archive_id} to {r.output} ({_human(r.bytes_received)}, "
            f"{r.blobs_verified} blobs verified with sha256 + blake3"
            + (f"; {r.retries} requests retried" if r.retries else "")
            + (f"; resumed, {_human(r.bytes_skipped)} not fetched again" if r.bytes_skipped else "")
            + ")"
        )
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from snaparc.api import OCIListed, mirror_ls

    done = mirror_ls(args.url, s3=s3_from(args), allow_http=args.allow_http)
    if args.json:
        print_json(done.to_json())
        return 0
    if isinstance(done, OCIListed):
        return _print_oci_ls(done)
    listing, usage = done.listing, done.usage
    by_id: dict[str, list[str]] = {}
    for name, aid in listing.refs.items():
        by_id.setdefault(aid, []).append(name)
    for name, aid in sorted(listing.refs.items()):
        flag = "" if aid in listing.archives else "  (archive record missing)"
        print(f"ref {name} -> {aid}{flag}")
    for name in listing.bad_refs:
        print(f"ref {name} -> (not an archive id)")
    for aid in sorted(listing.archives):
        names = ",".join(sorted(by_id.get(aid, [])))
        a = usage.archives.get(aid)
        if a is None:
            sizes = ""
        elif a.size is None:
            sizes = "  (record damaged: see mirror check)"
        else:
            sizes = f"  {_human(a.size)}, shares {_human(a.shared_bytes)}"
        print(f"archive {aid}{sizes}" + (f"  refs: {names}" if names else ""))
    saved = usage.logical_bytes - usage.stored_bytes
    print(
        f"{len(listing.archives)} archives, {_human(usage.logical_bytes)} logical "
        f"({usage.logical_bytes} bytes), {_human(usage.stored_bytes)} stored "
        f"({usage.stored_bytes} bytes in {usage.objects} objects)"
        + (f", {_human(saved)} saved by sharing" if saved > 0 else "")
    )
    return 0


def _print_oci_ls(done: OCIListed) -> int:
    x = done.listing
    by_id: dict[str, list[str]] = {}
    for t in x.tags:
        if t.archive_id is None:
            print(f"tag {t.tag} -> {t.digest}  (not a snaparc artifact: {t.problem})")
        else:
            by_id.setdefault(t.archive_id, []).append(t.tag)
            print(f"tag {t.tag} -> {t.archive_id}  (manifest {t.digest})")
    for aid, entry in sorted(x.archives.items()):
        print(
            f"archive {aid}  {_human(entry.layer_bytes)}, shares {_human(x.shared_bytes(aid))}"
            f"  tags: {','.join(by_id[aid])}"
        )
    saved = x.logical_bytes - x.stored_bytes
    print(
        f"{len(x.archives)} archives under {len(x.tags)} tags, {_human(x.logical_bytes)} of "
        f"layers ({x.logical_bytes} bytes), {_human(x.stored_bytes)} stored "
        f"({x.stored_bytes} bytes)" + (f", {_human(saved)} saved by sharing" if saved > 0 else "")
    )
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from snaparc.api import mirror_rm

    done = mirror_rm(args.target, force=args.force, s3=s3_from(args))
    if args.json:
        print_json(done.to_json())
        return 0
    r = done.report
    if r.ref is not None:
        print(f"removed ref {r.ref}" + (f" (it named {r.archive_id})" if r.archive_id else ""))
        return 0
    print(f"removed archive {r.archive_id}; its parts go with the next `snaparc mirror gc`")
    for name in r.refs_removed:
        print(f"removed ref {name} (it named that archive)")
    return 0


def run_gc(args: argparse.Namespace) -> int:
    from snaparc.api import mirror_gc

    done = mirror_gc(args.url, dry_run=args.dry_run, s3=s3_from(args))
    if args.json:
        print_json(done.to_json())
        return 0
    r = done.report
    if r.dry_run:
        for key in r.deleted:
            print(f"would delete {key}")
    verb = "would delete" if r.dry_run else "deleted"
    print(
        f"{verb} {len(r.deleted)} objects ({_human(r.deleted_bytes)}, {r.deleted_bytes} bytes); "
        f"kept {r.kept_objects} parts ({_human(r.kept_bytes)}) of {r.archives} archives"
    )
    return 0


def run_check(args: argparse.Namespace) -> int:
    from snaparc.api import mirror_check

    with Meter(args, "check") as meter:
        done = mirror_check(
            args.url,
            read_data=args.read_data,
            jobs=args.jobs,
            threads=args.threads,
            limits=limits_from(args),
            s3=s3_from(args),
            progress=meter,
        )
    r = done.report
    if args.json:
        print_json(done.to_json())
        return 0 if r.ok else 1
    import sys

    for p in r.problems:
        where = f"archive {p.archive_id}: " if p.archive_id else ""
        print(f"damaged: {where}{p.key}: {p.message}", file=sys.stderr)
    for key in r.unexpected:
        print(f"unexpected key (not in the layout): {key}", file=sys.stderr)
    if not args.quiet:
        data = f", read {r.parts_read} parts ({_human(r.bytes_read)}), " if r.read_data else ", "
        print(
            f"{r.archives} archives, {r.refs} refs, {r.objects} objects{data}"
            + (f"verified {r.archives_verified} archives, " if r.read_data else "")
            + f"{r.orphans} orphaned parts ({_human(r.orphan_bytes)}; `mirror gc` reclaims them)"
        )
    if not r.ok:
        damaged = r.damaged_archives
        print(
            f"mirror check: {len(r.problems)} problems"
            + (f"; damaged archives: {', '.join(damaged)}" if damaged else ""),
            file=sys.stderr,
        )
        return 1
    if not args.quiet:
        print("mirror is healthy")
    return 0
