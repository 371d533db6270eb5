"""The server's OpenAPI schema, written without starting a server (the web build types its API calls with it).

``python -m slicewise.server.openapi OUT.json`` builds the app on a temporary empty workspace and writes
``app.openapi()``; the file is rewritten only when the schema changed, so builds that depend on it stay
up to date without redoing work.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def schema() -> dict[str, Any]:
    """The OpenAPI document of :func:`slicewise.server.create_app`'s app."""
    from slicewise.server.app import create_app

    with tempfile.TemporaryDirectory(prefix="slicewise-openapi-") as tmp:
        app = create_app(Path(tmp) / "schema.duckdb", static_dir=Path(tmp) / "static",
                         cache_dir=Path(tmp) / "thumbs")
        try:
            return app.openapi()
        finally:
            app.state.sw.ws.close()


def write(path: str | Path) -> bool:
    """Write the schema to ``path`` as indented JSON; True when the file changed."""
    out = Path(path)
    text = json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
    if out.is_file() and out.read_text(encoding="utf-8") == text:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m slicewise.server.openapi OUT.json", file=sys.stderr)
        return 2
    changed = write(args[0])
    print(f"{'wrote' if changed else 'unchanged'}: {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
