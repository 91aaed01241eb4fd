"""The command line: the only layer that prints or exits.

Each subcommand lives in `snaparc.commands.<name>` with `register(sub)` that
adds its parser and sets `func(args) -> int`. Command modules import nothing
heavy at module level, so `snaparc --help`, `verify` and `ls` stay fast and
never import torch, transformers, peft or obstore.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from snaparc.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    SnaparcError,
    UsageError,
)
from snaparc.version import __version__

COMMAND_MODULES = (
    "pack",
    "unpack",
    "verify",
    "ls",
    "cat",
    "export",
    "materialize",
    "mirror",
    "airgap",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="snaparc",
        description="Pack HF adapter snapshot exports into verified .dlmsnap archives and back.",
        epilog="Exit codes: 0 ok, 1 integrity failure, 2 usage, 3 refused as unsafe, "
        "4 unsupported format version, 5 destination, 6 disk full, 7 source tree, "
        "8 I/O, 9 export, 10 mirror, 11 signature, 130 interrupted, 141 broken pipe, "
        "143 terminated "
        "(spec/FORMAT.md).",
    )
    parser.add_argument("--version", action="version", version=f"snaparc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"snaparc.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"snaparc.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that outputs are cleaned up the
    same way as on Ctrl-C (staging removed, temp files deleted)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    from snaparc.allocator import bound_allocator

    bound_allocator()  # peak memory that does not grow with the data (glibc)
    parser = build_parser()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return _run(parser, argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _remove_owned() -> None:
    """A signal can land between creating a temp path and entering the block
    that removes it: remove whatever this process still claims."""
    from snaparc.api import remove_claimed

    remove_claimed()


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        code: int = args.func(args)
        return code
    except SnaparcError as err:
        print(f"snaparc: error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated:
        _remove_owned()
        print("snaparc: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        _remove_owned()
        print("snaparc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `snaparc cat ... | head`).
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"snaparc: internal error ({type(exc).__name__}); please report it", file=sys.stderr)
        return EXIT_INTERNAL
