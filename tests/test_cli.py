"""The CLI shell: fast help without heavy imports, data commands over the SDK, errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import slicewise
from slicewise.cli import app

runner = CliRunner()


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from slicewise.cli import app; "
            "heavy = [m for m in ('duckdb', 'numba', 'shapely', 'pycocotools', 'sklearn') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_tag_split_and_rows_commands(tmp_path):
    path = tmp_path / "w.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": f"{i}.png"} for i in range(3)])
    res = runner.invoke(app, ["tag", "re-label", "k0", "k2", "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert "tagged 2 data row(s)" in res.output
    res = runner.invoke(app, ["split", "test", "k1", "-w", str(path)])
    assert res.exit_code == 0 and "1 data row(s) now in split 'test'" in res.output
    res = runner.invoke(app, ["rows", "-w", str(path), "--json"])
    assert res.exit_code == 0
    with slicewise.open(path, read_only=True) as ws:
        assert ws.tags() == {"re-label": 2}
        assert ws.data_row("k1").split == "test"


def test_errors_are_printed_without_a_traceback(tmp_path):
    path = tmp_path / "w.duckdb"
    slicewise.open(path).close()
    out = subprocess.run([sys.executable, "-m", "slicewise", "tag", "x", "nope", "-w", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown data row key(s): 'nope'" in out.stderr
    assert "Traceback" not in out.stderr
