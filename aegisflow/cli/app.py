"""Running a typer app with AegisFlow's error handling.

Errors never reach the user as tracebacks (which could show locals holding keys): an
:class:`AegisError` prints ``error: <message>`` and its hint on stderr and exits with its
code; anything unexpected prints one line, and a traceback only with AEGISFLOW_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aegisflow.cli.status import Exit, exit_code_for
from aegisflow.errors import AegisError

stderr = Console(stderr=True, highlight=False, soft_wrap=True)

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="AegisFlow home (default: $AEGISFLOW_HOME or .)")
]
"""The ``--home`` option every command group takes."""


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        pretty_exceptions_show_locals=False,
        add_completion=False,
    )


def report_error(error: AegisError) -> None:
    stderr.print(f"[bold red]error:[/] {error.message}", markup=True)
    if error.hint:
        stderr.print(f"[dim]hint:[/] {error.hint}", markup=True)


def run(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app`` on ``argv`` (default: ``sys.argv``) and return its exit code."""
    try:
        app(args=argv)
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else Exit.ERROR)
    except AegisError as e:
        report_error(e)
        return exit_code_for(e)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        stderr.print(f"error: unexpected {type(e).__name__}: {e}", markup=False)
        if os.environ.get("AEGISFLOW_DEBUG"):
            traceback.print_exc()
        else:
            stderr.print("hint: set AEGISFLOW_DEBUG=1 for a traceback", markup=False)
        return Exit.ERROR
    return Exit.SUCCESS


def main_for(app: typer.Typer) -> None:
    sys.exit(run(app))
