"""The house as the map: one layer list (pyproject.toml's import-linter contract), shown the same way
in the package docstring, the README and docs/architecture.md, naming every folder and module."""

import re
import tomllib
from pathlib import Path

import pytest

import modekit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "modekit"


def _contract(name: str) -> list[str]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["name"] == name]
    return [part.strip() for layer in contract["layers"] for part in layer.split("|")]


def _shown(text: str) -> list[tuple[str, str]]:
    """(layer, description) per line of a `<!-- layers -->` block."""
    block = text[text.index("<!-- layers -->") : text.index("<!-- /layers -->")]
    rows = [line.strip() for line in block.splitlines()[1:] if line.strip() and not line.strip().startswith("```")]
    return [(row.split()[0].rstrip("/"), row) for row in rows]


SOURCES = {
    "modekit/__init__.py": lambda: modekit.__doc__,
    "README.md": lambda: (ROOT / "README.md").read_text(),
    "docs/architecture.md": lambda: (ROOT / "docs" / "architecture.md").read_text(),
}


@pytest.mark.parametrize("source", SOURCES)
def test_every_description_of_the_layers_is_the_contract(source):
    shown = [layer for layer, _ in _shown(SOURCES[source]())]
    assert shown == _contract("modekit layers"), f"{source} lists the layers differently from pyproject.toml's contract"


def test_the_contract_names_every_folder_and_module_of_the_package():
    on_disk = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    on_disk |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert on_disk == set(_contract("modekit layers"))


@pytest.mark.parametrize("source", SOURCES)
def test_each_folder_line_names_every_module_in_the_folder(source):
    lines = dict(_shown(SOURCES[source]()))
    for folder in (p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        modules = {p.stem for p in folder.glob("*.py") if p.name != "__init__.py"} | {
            p.name for p in folder.iterdir() if (p / "__init__.py").exists()
        }
        missing = {m for m in modules if not re.search(rf"\b{m}\b", lines[folder.name])}
        assert not missing, f"{source}: the {folder.name}/ line does not name {sorted(missing)}"


def test_no_module_shares_its_name_with_a_public_function_of_its_package():
    """`mk.train` is the function; the loop's module is `modekit.training.loop` (no homonym hides a module)."""
    for package in [PACKAGE, *(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists())]:
        modules = {p.stem for p in package.glob("*.py")}
        dotted = "modekit" if package == PACKAGE else f"modekit.{package.name}"
        exported = set(getattr(__import__(dotted, fromlist=["*"]), "__all__", []))
        assert not modules & exported, f"{dotted}: {sorted(modules & exported)} name both a module and an exported function"
        for module in modules - {"__init__", "__main__"}:
            source = (package / f"{module}.py").read_text()
            assert not re.search(rf"^def {module}\(", source, re.M), f"{dotted}.{module} defines a function of its own name"


def test_no_function_over_60_lines_and_no_module_over_350():
    long_functions, long_modules = [], []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        if len(lines) > 350:
            long_modules.append(f"{path.relative_to(ROOT)}: {len(lines)}")
        starts = [i for i, line in enumerate(lines) if re.match(r"\s*(async )?def ", line)]
        for i in starts:
            indent = len(lines[i]) - len(lines[i].lstrip())
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) <= indent
                        and not lines[j].lstrip().startswith((")", "#"))), len(lines))  # fmt: skip
            body = [line for line in lines[i:end] if line.strip()]
            if len(body) > 60:
                long_functions.append(f"{path.relative_to(ROOT)}:{i + 1} {lines[i].strip()[:50]} ({len(body)} lines)")
    assert not long_functions, long_functions
    assert not long_modules, long_modules


def test_the_lazy_package_gives_its_names_and_subpackages_and_nothing_else():
    assert modekit.train.__module__ == "modekit.training.loop" and modekit.data.__name__ == "modekit.data"
    assert not hasattr(modekit, "__main__"), "asking must not run the command line"
    assert getattr(modekit, "a.b", None) is None and "analysis" in dir(modekit)
