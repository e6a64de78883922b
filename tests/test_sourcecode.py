"""The map matches the territory: the paths the docs and file headers name exist, nothing points at
an issue tracker the repository does not hold, and the lint, the type check of the package and the
check of the compiled core's stubs (shmproc/_core.pyi) pass. Configuration: pyproject.toml."""
import ast
import glob
import os
import re
import subprocess
import sys

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_FOLDERS = ("shmproc", "tests", "asv_bench", "examples")
SOURCE_SUFFIXES = (".py", ".pyx", ".pxd", ".pxi", ".pyi", ".h")
# Folders that hold other people's files or build output, never the project's own.
NOT_OURS = ("asv_bench/env", "asv_bench/results", "asv_bench/html", "build")

# A path is checked when it starts at the top of the repository (shmproc/..., docs/..., README.md)
# or in one of the project's sub-folders written without its parent (core/ring.pyx in
# docs/design.md, internals/ring.md in docs/). Other slashed words are someone else's files
# (Lib/multiprocessing/queues.py) or prose ("and/or").
TOP_LEVEL = {"shmproc", "tests", "docs", "asv_bench", "examples", ".ci", "README.md", "setup.py",
             "setup.cfg", "pyproject.toml"}
SUB_FOLDERS = {"core": ["shmproc"], "includes": ["shmproc"], "bench": ["shmproc"],
               "internals": ["docs"], "benchmarks": ["asv_bench"], "stress": ["tests"]}
PATH = re.compile(r"(?<![\w./<-])((?:\.ci|[A-Za-z_][\w-]*)(?:/[\w.*<>-]+)+/?|"
                  r"README\.md|setup\.py|setup\.cfg|pyproject\.toml)")
# A slot that docs/design.md names for a module not written yet.
NOT_WRITTEN_YET = "(to come)"


def repository_files(folders, suffixes):
    for folder in folders:
        for root, directories, files in os.walk(os.path.join(REPOSITORY, folder)):
            relative_root = os.path.relpath(root, REPOSITORY)
            directories[:] = [d for d in directories if not d.startswith((".", "__"))
                              and os.path.join(relative_root, d) not in NOT_OURS]
            for name in sorted(files):
                if name.endswith(suffixes):
                    yield os.path.join(relative_root, name)


def documents():
    return ["README.md"] + sorted(glob.glob("docs/*.md", root_dir=REPOSITORY)) + sorted(
        glob.glob("docs/internals/*.md", root_dir=REPOSITORY))


def header(path):
    """A source file's opening comment or module docstring: where it says what it is for."""
    with open(os.path.join(REPOSITORY, path), encoding="utf-8") as source:
        text = source.read()
    if path.endswith((".py", ".pyi")):
        return ast.get_docstring(ast.parse(text)) or ""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("#", "/*", "*", "//")) or (not stripped and not lines):
            lines.append(stripped)
        else:
            break
    return "\n".join(lines)


def named_paths(text):
    """(path, line, marked) for every repository path the text names; marked: followed by "(to
    come)" somewhere in the text."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in PATH.finditer(line):
            following = line[match.end():].lstrip("`'\" ")
            found.append((match.group(1).rstrip(".,:;"), number, following.startswith(NOT_WRITTEN_YET)))
    to_come = {path for path, _number, marked in found if marked}
    return [(path, number, path in to_come) for path, number, _marked in found]


def exists(path, text_folder):
    """Whether the path, as a text in text_folder names it, is in the repository (None: not a path
    of ours). ``*`` and ``<placeholder>`` match any name."""
    pattern = re.sub(r"<[^>]*>", "*", path.rstrip("/"))
    if not (path.endswith("/") or "." in pattern.split("/")[-1]) or pattern.startswith(NOT_OURS):
        return None     # a word pair ("shmproc/mp", a ratio) or what a tool makes when it runs
    first = pattern.split("/")[0]
    if first in TOP_LEVEL:
        candidates = [pattern]
    elif first in SUB_FOLDERS:
        candidates = [os.path.join(text_folder, pattern)] + [
            os.path.join(parent, pattern) for parent in SUB_FOLDERS[first]]
    else:
        return None
    return any(glob.glob(candidate, root_dir=REPOSITORY) for candidate in candidates)


def test_every_path_the_docs_and_headers_name_exists():
    texts = {document: open(os.path.join(REPOSITORY, document), encoding="utf-8").read()
             for document in documents()}
    texts.update({path: header(path) for path in repository_files(SOURCE_FOLDERS, SOURCE_SUFFIXES)})
    missing, written, checked = [], [], 0
    for name, text in texts.items():
        for path, line, to_come in named_paths(text):
            found = exists(path, os.path.dirname(name))
            if found is None:
                continue
            checked += 1
            if to_come and found:
                written.append(f"{name}:{line}: {path}")
            elif not to_come and not found:
                missing.append(f"{name}:{line}: {path}")
    assert checked > 100, f"only {checked} paths found: is the pattern still right?"
    assert not missing, "paths named but not in the repository:\n" + "\n".join(missing)
    assert not written, f"written now, so drop the {NOT_WRITTEN_YET!r} mark:\n" + "\n".join(written)


def test_the_path_check_can_fail():
    assert exists("shmproc/segments.py", "shmproc/includes") is False
    assert exists("core/ring.pyx", "docs") is True
    assert exists("internals/ring.md", "docs") is True
    assert exists("Lib/multiprocessing/queues.py", "docs") is None
    assert exists("shmproc/mp", "docs") is None
    assert named_paths("see `docs/queues.md`, and `shmproc/pool.py` (to come)\nor shmproc/pool.py") == [
        ("docs/queues.md", 1, False), ("shmproc/pool.py", 1, True), ("shmproc/pool.py", 2, True)]


# Written in pieces so that this file does not match itself.
ISSUE_REFERENCE = re.compile("|".join([
    r"\bissues?" + r" +#?[0-9]+",              # "issue 4", "issues #2"
    r"\(\w+ " + r"issue\b",                     # "(queues issue)"
    r"\b\w+ " + r"issue's\b",                   # "the foundation issue's targets"
]), re.IGNORECASE)


def test_nothing_points_at_an_issue_number():
    # The tracker is not in the repository: a reader cannot follow "(issue 4)". Name the doc
    # section instead.
    files = documents() + ["setup.py", "setup.cfg", "pyproject.toml", ".ci/run"] + list(
        repository_files(SOURCE_FOLDERS, SOURCE_SUFFIXES))
    found = []
    for path in files:
        if path == os.path.join("tests", "test_sourcecode.py"):
            continue            # its patterns and their examples
        with open(os.path.join(REPOSITORY, path), encoding="utf-8") as source:
            for number, line in enumerate(source, 1):
                if ISSUE_REFERENCE.search(line):
                    found.append(f"{path}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_issue_pattern_can_fail():
    for text in ("(issue 4)", "issue 2's counter", "(queues issue)", "the foundation issue's targets"):
        assert ISSUE_REFERENCE.search(text), text
    assert not ISSUE_REFERENCE.search("an issue with the lock")


def run_tool(*arguments, timeout=300):
    result = subprocess.run([sys.executable, "-m", *arguments], cwd=REPOSITORY, capture_output=True,
                            text=True, timeout=timeout)
    return result.returncode, result.stdout + result.stderr


def require(module):
    pytest.importorskip(module, reason=f"{module} is a test dependency: pip install -e '.[test]'")


@pytest.mark.timeout(300)
def test_ruff_finds_nothing():
    require("ruff")
    code, output = run_tool("ruff", "check", "shmproc", "tests", "asv_bench")
    assert code == 0, output


@pytest.mark.timeout(600)
def test_mypy_type_checks_the_package():
    require("mypy")
    code, output = run_tool("mypy")        # what to check: [tool.mypy] in pyproject.toml
    assert code == 0, output
    assert "shmproc" in output or "Success" in output, output


@pytest.mark.timeout(600)
def test_the_stubs_match_the_compiled_core():
    # Every name the built extension has is declared in shmproc/_core.pyi with its real signature,
    # but for what tests/stubtest-allowlist.txt lists, each with the reason.
    require("mypy")
    code, output = run_tool("mypy.stubtest", "shmproc._core", "--mypy-config-file", "pyproject.toml",
                            "--allowlist", os.path.join("tests", "stubtest-allowlist.txt"))
    assert code == 0, output
