"""`slicewise serve`: registered, documented, refuses a missing workspace, hands the path to the server."""

from __future__ import annotations

from typer.testing import CliRunner

from slicewise.cli import app


def test_serve_help_and_missing_workspace(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["serve", "--help"])
    assert res.exit_code == 0 and "--port" in res.output and "127.0.0.1" in res.output
    res = runner.invoke(app, ["serve", str(tmp_path / "nope.duckdb")])
    assert res.exit_code != 0
    assert "no workspace here" in str(res.exception)


def test_serve_calls_the_server(tmp_path, monkeypatch):
    import slicewise
    from slicewise import server

    path = tmp_path / "ws.duckdb"
    slicewise.open(path).close()
    seen = {}
    monkeypatch.setattr(server, "serve", lambda p, host, port, remote_media: seen.update(
        path=p, host=host, port=port, remote_media=remote_media))
    res = CliRunner().invoke(app, ["serve", str(path), "--port", "9999"])
    assert res.exit_code == 0, res.output
    assert seen == {"path": path, "host": "127.0.0.1", "port": 9999, "remote_media": False}
    res = CliRunner().invoke(app, ["serve", str(path), "--remote-media"])
    assert res.exit_code == 0 and seen["remote_media"] is True, res.output
