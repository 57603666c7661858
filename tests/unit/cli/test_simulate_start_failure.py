"""A SuperLink that does not start: one line, exit 1, nothing left running."""

import sys

from cli.main import build_parser
from cli.process.superlink import LocalSuperLink
from cli.simulate import resolve_options, run_app


class BrokenSuperLink(LocalSuperLink):
    """A SuperLink whose command exits at once with code 3."""

    def command(self):
        return [sys.executable, "-c", "raise SystemExit(3)"]


def test_a_superlink_that_exits_at_start_is_one_line_and_exit_1(tmp_path, capsys):
    args = build_parser().parse_args(["simulate", "--results-dir", str(tmp_path / "out")])
    config = resolve_options(args, 2)
    links = []

    def open_link(directory):
        links.append(BrokenSuperLink(directory / "superlink.log"))
        return links[0]

    assert run_app("feel simulate", config, open_link) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("feel simulate: flower-superlink exited with code 3; see ")
    assert "Traceback" not in "\n".join(out)
    assert links[0].process.poll() == 3 and not links[0].home.exists()
