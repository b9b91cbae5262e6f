"""``python -m telehook_parser build parser.py [-o parser.wasm]``: a parser module becomes a
component of the ``telehook:parser`` contract, built by componentize-py with every WASI import
stubbed out, so that it imports nothing but the contract."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
WIT = PACKAGE / "wit" / "parser.wit"
HANDLER = "parse_webhook_request"
# componentize-py's own command line, run by this interpreter (its package has no __main__).
COMPONENTIZE_PY = (
    "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; script()"
)


def build(source: Path, output: Path) -> float:
    """Builds ``source``'s ``parse_webhook_request`` into ``output``; returns the seconds taken."""
    started = time.monotonic()
    module = source.stem
    if not module.isidentifier():
        raise SystemExit(f"cannot build {source}: {module!r} is not a Python module name")
    with tempfile.TemporaryDirectory(prefix="telehook-build-") as work:
        app = Path(work) / "telehook_app.py"
        app.write_text(
            "from telehook_parser.guest import export\n"
            f"from {module} import {HANDLER}\n"
            f"WitWorld = export({HANDLER})\n"
        )
        command = [
            sys.executable, "-c", COMPONENTIZE_PY,
            "-d", str(WIT), "-w", "parser",
            "componentize", "--stub-wasi",
            "-p", work, "-p", str(source.parent), "-p", str(PACKAGE.parent),
            "telehook_app", "-o", str(output),
        ]  # fmt: skip
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"cannot build {source}:\n{done.stderr.strip()}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m telehook_parser")
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build a parser module into a component")
    build_command.add_argument("source", type=Path)
    build_command.add_argument("-o", "--output", type=Path)
    build_command.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    args = parser.parse_args()
    source = args.source.resolve()
    output = (args.output or source.with_suffix(".wasm")).resolve()
    seconds = build(source, output)
    size = os.path.getsize(output) / 2**20
    if not args.quiet:
        print(f"built {output} ({size:.1f} MiB) in {seconds:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
