"""Static checks that the lessons keep their teaching parts: exercises with solutions that check
themselves, a prediction prompt before each widget, links that resolve, one alpha convention."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _cells(path):
    return nbformat.read(path, 4).cells


def test_every_lesson_is_here():
    assert len(LESSONS) == 6, [p.name for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_exercises_and_their_checked_solutions(lesson):
    text = "\n".join(c.source for c in _cells(lesson) if c.cell_type == "markdown")
    exercises = text.split("## Exercises", 1)
    assert len(exercises) == 2, f"{lesson.name} has no '## Exercises' section"
    numbered = re.findall(r"^\s*#*\s*(\d)\. \*\*", exercises[1], flags=re.M)
    assert 3 <= len(numbered) <= 5, f"{lesson.name}: {len(numbered)} exercises"
    solutions = NOTEBOOKS / "solutions" / f"{lesson.name[:2]}_solutions.ipynb"
    assert solutions.is_file(), f"{solutions} is missing"
    solution_cells = _cells(solutions)
    answered = [c for c in solution_cells if c.cell_type == "markdown" and re.match(r"(\*\*|#+ )\d\.", c.source)]
    assert len(answered) == len(numbered), f"{solutions.name} answers {len(answered)} of {len(numbered)} exercises"
    # an assert, or a check of modekit.analysis.exercises (each fails a plausible wrong answer: test_analysis_exercises)
    checks = sum(c.source.count("assert ") + c.source.count("exercises.") for c in solution_cells if c.cell_type == "code")
    assert checks >= len(numbered), f"{solutions.name}: every solution should check itself (an assert or an exercises check)"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_a_prediction_prompt_before_every_widget(lesson):
    cells = _cells(lesson)
    for index, cell in enumerate(cells):
        if cell.cell_type == "code" and "widgets.interact" in cell.source:
            before = "\n".join(c.source for c in cells[max(0, index - 3) : index] if c.cell_type == "markdown")
            assert "Predict first." in before, f"{lesson.name}, cell {index}: no 'Predict first.' prompt before the widget"


@pytest.mark.parametrize("notebook", [*LESSONS, *sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))], ids=lambda p: p.stem)
def test_links_resolve_and_the_glossary_is_linked(notebook):
    text = "\n".join(c.source for c in _cells(notebook) if c.cell_type == "markdown")
    links = re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", text)
    local = [link for link in links if not link.startswith("http")]
    missing = [link for link in local if not (notebook.parent / link).exists()]
    assert not missing, f"{notebook.name}: links to missing files {missing}"
    assert any(link.endswith("docs/glossary.md") for link in local), f"{notebook.name} does not link the glossary"


@pytest.mark.parametrize("lesson", LESSONS[:4], ids=lambda p: p.stem)
def test_teaching_notebooks_share_one_alpha(lesson):
    source = "\n".join(c.source for c in _cells(lesson) if c.cell_type == "code")
    assert "TEACHING_ALPHA" in source, f"{lesson.name} should use modekit.profiles.TEACHING_ALPHA"
    assert not re.search(r"^ALPHA = \d", source, flags=re.M), f"{lesson.name} sets its own alpha"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_equations_are_latex_not_code_font(lesson):
    text = "\n".join(c.source for c in _cells(lesson) if c.cell_type == "markdown")
    code_equations = re.findall(r"`[^`\n]*(?:sum_|\^2|\\frac| = [a-zA-Z]+\()[^`\n]*`", text)
    assert not code_equations, f"{lesson.name}: equations in code font {code_equations}"


# A number a run produced reaches a lesson's prose only as a generated display (modekit.notebook.markdown);
# a markdown cell may hold the papers' own numbers (with their source in the same cell), equations and
# parameters (in $math$ or `code`), counts (integers), and section references (§5.4.1).
PAPER_NUMBERS = {"0.95", "0.9525", "0.9756", "0.9796", "61.7%", "88.2%", "3.7x", "3.7×", "78.4%", "51.7%"}
SOURCES = ("abstract", "summary")
LEVELS = {"95%", "80%"}  # an interval's level and a power: parameters of the rule, not results
RESULT_LIKE = re.compile(r"(?<![\w.])[+\-−]?\d+\.\d+(?:\s?%|x|×)?|(?<![\w.])\d+\s?%|(?<![\w.])[+\-−]\d+(?:\.\d+)?")


def result_like_numbers(markdown: str) -> list[str]:
    """The numbers in a markdown cell that look like results, once math, code, links' targets,
    section references and the papers' sourced numbers are taken out."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`|\]\([^)]*\)|§\s?\d+(?:\.\d+)*|arXiv \d+\.\d+|https?://\S+", " ", markdown, flags=re.S)
    sourced = any(source in markdown.lower() for source in SOURCES)
    numbers = [n for n in RESULT_LIKE.findall(text) if n not in LEVELS]
    return [n for n in numbers if not (sourced and n.replace("−", "-").lstrip("+-") in PAPER_NUMBERS)]


def test_the_number_check_catches_a_typed_result_and_lets_the_papers_sourced_numbers_pass():
    assert result_like_numbers("text is -0.1 (-2.0 to +1.8) points") == ["-0.1", "-2.0", "+1.8"]
    assert result_like_numbers("about 12 points, 0.853 vs 0.734") == ["0.853", "0.734"]
    assert result_like_numbers("the student keeps 23% of it, 95% interval") == ["23%"]
    assert result_like_numbers("the abstract says 61.7% and 3.7x") == []
    assert result_like_numbers("61.7% kept") == ["61.7%"], "a paper number needs its source"
    assert result_like_numbers("with $\\alpha=0.1$, `epochs=40`, 5 seeds, §5.4.1, [method](../docs/method.md)") == []


@pytest.mark.parametrize("notebook", [*LESSONS, *sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))], ids=lambda p: p.stem)
def test_no_result_is_typed_into_a_markdown_cell(notebook):
    typed = {index: numbers for index, cell in enumerate(_cells(notebook))
             if cell.cell_type == "markdown" and (numbers := result_like_numbers(cell.source))}  # fmt: skip
    assert not typed, f"{notebook.name}: markdown cells with result-like numbers (generate them from the run): {typed}"
