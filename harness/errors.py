"""How every `harness` command ends: one exit code per outcome, and no traceback for a user's
mistake (the message names what is wrong and where)."""

from __future__ import annotations

import errno
import sys
import tempfile
import traceback
from collections.abc import Callable

from harness import exits


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The errors that mean the user's input is wrong. Only modules already imported are
    looked at: an error of a module never imported cannot have been raised."""
    found: list[type[BaseException]] = [exits.UsageError]
    for module, name in (
        ("harness.scenario", "ScenarioError"),
        ("harness.contracts.diff", "InputError"),
        ("yaml", "YAMLError"),
    ):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(getattr(loaded, name, None), type):
            found.append(getattr(loaded, name))
    return tuple(found)


def describe_os_error(exc: OSError) -> str | None:
    """A one-line message for an OSError a user can act on, or None for anything else."""
    if exc.errno == errno.EADDRINUSE:
        return f"a port is in use: {exc.strerror or exc} (choose another port, or 0 for a free one)"
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return None


def guarded(command: Callable[[], int]) -> int:
    """Run a command; map each way it can end to the shared exit codes (harness.exits)."""
    try:
        return command()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            raise  # argparse: 0 after --help, 2 after its usage message
        print(f"harness: {exc.code}", file=sys.stderr)
        return exits.USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return exits.INTERRUPTED
    except OSError as exc:
        message = describe_os_error(exc)
        if message is None:
            return _internal(exc)
        print(f"harness: {message}", file=sys.stderr)
        return exits.USAGE
    except Exception as exc:
        if isinstance(exc, _user_error_types()):
            print(f"harness: {exc}", file=sys.stderr)
            return exits.USAGE
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    with tempfile.NamedTemporaryFile(
        "w", prefix="finsim-crash-", suffix=".txt", delete=False, encoding="utf-8"
    ) as out:
        out.write("".join(traceback.format_exception(exc)))
    print(
        f"harness: internal error (a bug in the harness, please report it): "
        f"{type(exc).__name__}: {exc}\n  traceback saved to {out.name}",
        file=sys.stderr,
    )
    return exits.INTERNAL
