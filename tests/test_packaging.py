"""What the package declares agrees with what it uses: every import is a declared requirement (core,
`notebooks`, `browser`, `test`), every declared one is pinned in requirements.txt and locked in
ci/constraints.txt, the environment is the lock and `pip check` is clean; the version lives in one
place; LICENSE, CITATION.cff (valid CFF 1.2) and the README's BibTeX cite the kit and both papers."""

import ast
import functools
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import modekit

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# modules that only the batch reproduction uses (imported by `modekit reproduce`, not by `import modekit`)
NOTEBOOK_MODULES = {"notebook_client.py", "runner.py", "report.py", "notebook.py"}
# modules that import an extra's package lazily, only for the feature it serves (`--executor slurm`)
EXTRA_MODULES = {"executors.py": "cluster"}
# packages used without an import statement: pandas calls tabulate for DataFrame.to_markdown
INDIRECT = {"tabulate": ("notebooks", ROOT / "modekit" / "reproduction" / "report.py", ".to_markdown(")}
PAPERS = ("2402.00893", "2201.10890")


def declared() -> dict[str, set[str]]:
    """group -> canonical distribution names ("core" and each extra)."""
    groups = {"core": PROJECT["dependencies"], **PROJECT["optional-dependencies"]}
    return {group: {canonicalize_name(Requirement(r).name) for r in requirements} for group, requirements in groups.items()}


def imported_modules(source: str) -> set[str]:
    """Top-level names of the absolute imports in Python source (module level and inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@functools.cache
def owners() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(modules: set[str], local: set[str] = frozenset()) -> dict[str, str]:
    """module -> canonical distribution for every third-party module (stdlib and `local` left out)."""
    owners_of = owners()
    third_party = {m for m in modules if m not in sys.stdlib_module_names and m not in local and m != "modekit"}
    missing = sorted(m for m in third_party if m not in owners_of)
    assert not missing, f"imported but not installed (so not declared either): {missing}"
    return {m: canonicalize_name(owners_of[m][0]) for m in third_party}


def undeclared(modules: set[str], allowed: set[str], local: set[str] = frozenset()) -> list[str]:
    return sorted(f"{m} ({d})" for m, d in distributions_of(modules, local).items() if d not in allowed)


def test_every_import_of_the_package_is_declared_in_its_group():
    groups, problems, used = declared(), [], set()
    for path in sorted((ROOT / "modekit").rglob("*.py")):
        allowed = groups["core"] | (groups["notebooks"] if path.name in NOTEBOOK_MODULES else set())
        allowed |= groups[EXTRA_MODULES[path.name]] if path.name in EXTRA_MODULES else set()
        modules = imported_modules(path.read_text())
        used |= set(distributions_of(modules).values())
        problems += [f"{path.relative_to(ROOT)}: {name}" for name in undeclared(modules, allowed)]
    for module, (group, path, usage) in INDIRECT.items():
        assert usage in path.read_text(), f"{path.name} no longer uses {usage}: drop {module} from INDIRECT"
        assert module in groups[group], f"{module} (used by {path.name} through {usage}) is not declared in {group!r}"
        used.add(module)
    assert not problems, "imports not declared in pyproject.toml:\n" + "\n".join(problems)
    unused = sorted(groups["core"] - used)
    assert not unused, f"core dependencies that modekit/ never imports: {unused}"


def test_notebook_and_test_imports_are_declared():
    groups = declared()
    cells = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells += ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    modules = set().union(
        *(imported_modules("\n".join(line for line in c.splitlines() if not line.lstrip().startswith(("%", "!")))) for c in cells)
    )
    assert "ipywidgets" in modules and not undeclared(modules, groups["core"] | groups["notebooks"])
    tests = ROOT / "tests"
    local = {p.stem for p in tests.rglob("*.py")}
    test_modules = set().union(*(imported_modules(p.read_text()) for p in tests.rglob("*.py")))
    assert not undeclared(test_modules, set().union(*groups.values()), local)


def test_every_declared_requirement_is_pinned_and_locked():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    lock = {}
    for line in (ROOT / "ci" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            lock[canonicalize_name(name)] = version
    assert pins["torch"] == lock["torch"] == "2.14.1"
    for requirement in [*PROJECT["dependencies"], *sum(PROJECT["optional-dependencies"].values(), [])]:
        requirement = Requirement(requirement)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is declared but not pinned in requirements.txt"
        assert requirement.specifier.contains(pins[name]), f"requirements.txt pins {name}=={pins[name]}, outside {requirement}"
    different = {name: (version, lock.get(name)) for name, version in pins.items() if lock.get(name) != version}
    assert not different, f"requirements.txt vs ci/constraints.txt (run bash ci/lock.sh): {different}"


def test_the_environment_is_the_lock_and_pip_check_is_clean():
    lock = [line.split("==") for line in (ROOT / "ci" / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    drifted = {}
    for name, version in lock:
        try:  # the first distribution on sys.path, as an import finds it (not a copy vendored by setuptools)
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            drifted[name] = (version, installed)
    assert not drifted, f"ci/constraints.txt (locked, installed) differ; rebuild with bash ci/setup.sh: {drifted}"
    check = subprocess.run([sys.executable, "-m", "pip", "check", "--disable-pip-version-check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_version_lives_in_one_place():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    dynamic = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "modekit.__version__"} and re.fullmatch(r"\d+\.\d+\.\d+", modekit.__version__)
    written = [
        p
        for p in [ROOT / "CITATION.cff", ROOT / "README.md"]
        if re.search(rf"\bversion\W+{re.escape(modekit.__version__)}\b", p.read_text())
    ]
    assert not written, f"the version is written again in {written}"


def test_license_citation_and_bibtex_cite_the_kit_and_both_papers():
    """CITATION.cff against the CFF 1.2.0 schema (tests/cff-schema-1.2.0.json, as shipped in the cffconvert
    2.0.0 wheel; cffconvert itself pins jsonschema<4, which Jupyter's packages cannot share)."""
    assert PROJECT["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    schema = json.loads((Path(__file__).parent / "cff-schema-1.2.0.json").read_text())
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(citation)
    assert citation["license"] == "MIT" and "modekit" in citation["title"]
    cited = " ".join(str(ref.get("identifiers", "")) + ref.get("url", "") for ref in citation["references"])
    assert all(paper in cited for paper in PAPERS)
    with pytest.raises(jsonschema.ValidationError):  # the validation can fail
        jsonschema.validate({**citation, "authors": []}, schema)
    bibtex = re.search(r"```bibtex\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert bibtex, "README.md has no ```bibtex block"
    entries = re.findall(r"@(\w+)\{([^,]+),", bibtex.group(1))
    assert len(entries) == 3 and all(paper in bibtex.group(1) for paper in PAPERS) and "modekit" in bibtex.group(1)
