"""The README's example runs as printed, and CI runs exactly the README's test command."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_example_runs(tmp_path):
    example = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(example)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "2997000.0"]


def test_readme_gives_the_two_set_up_commands():
    for marker in ("main-command", "test-command"):
        block = re.search(rf"<!-- {marker} -->\n```\n(.+?)\n```\n<!-- /{marker} -->", README, re.S)
        assert block, marker
    assert "python -m shmproc bench" in README
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
