"""``feel simulate``'s bad-input contract, as the CLI tests check it."""

from cli.main import main


def fails_up_front(argv, tmp_path, capsys):
    """Run ``feel simulate argv``; return its one-line error (exit 2, nothing written)."""
    out = tmp_path / "out"
    assert main(["simulate", "--results-dir", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("feel simulate: error: ")
    assert not out.exists()
    return err.removeprefix("feel simulate: error: ")
