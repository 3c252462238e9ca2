"""The README's "Check your own Adam" example, exactly as written there: the code block
saved as my_adam.py, judged by the command the README gives."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("torch")

README = Path(__file__).resolve().parent.parent / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## Check your own Adam", 1)[1].split("\n## ", 1)[0]


@pytest.mark.framework
def test_the_readme_example_fails_with_eps_hat_named(tmp_path, monkeypatch, capsys):
    from adamconf.conformance.cli import main

    section = _section()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    command = re.findall(r"```sh\n(.*?)```", section, re.S)[-1].strip()
    (tmp_path / "my_adam.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = shlex.split(command)
    assert argv[0] == "adamconf"
    assert main([*argv[1:], "--quiet", "-j", "1"]) == 1
    out = capsys.readouterr().out
    assert "fails: eps-hat" in out
    assert "constructor has no 'amsgrad' keyword" in out
