"""A student's path through the course in a real browser (headless Chromium).

``cloudlabs lab`` opens on the start-here notebook, without nbgrader's instructor tools; the
student opens the storage lab, runs its setup, types the answer of exercise 1, runs its tests,
saves and runs the self-check cell at the end, which shows Exercise 1 with 5/5 and a total.
Every step that fails leaves a screenshot in tests-artifacts/browser/ (see conftest.py).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from grader import ROOT
from tests.browser.conftest import Steps, chromium, chromium_page, student_lab, unchanged

pytestmark = pytest.mark.browser

START_HERE = "course/00-start-here.ipynb"
LAB = "labs/storage/storage.ipynb"
SOLUTION = ROOT / "solutions" / "storage" / "storage.ipynb"
ANSWER = "ex1_solution"
UI = 120_000  # ms: JupyterLab and a kernel starting on 2 slow cores
RUN = 180_000  # ms: cells of exercise 1 (a 12 MiB multipart upload)
CHECK = 600_000  # ms: the self-check runs the whole saved notebook in a fresh account
INSTRUCTOR_TOOLS = ("Formgrader", "Create Assignment")


def grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def source(path, grade: str) -> str:
    return next(c for c in nbformat.read(path, as_version=4).cells if grade_id(c) == grade).source


def solution(grade: str) -> tuple[str, str]:
    """The instructor's answer in ``grade``'s cell, without nbgrader's solution markers, and a
    the longest line of it the student's notebook does not have (to tell that it was typed)."""
    markers = {"### BEGIN SOLUTION", "### END SOLUTION"}
    lines = [line for line in source(SOLUTION, grade).splitlines() if line.strip() not in markers]
    given = source(ROOT / LAB, grade)
    return "\n".join(lines), max((s for s in map(str.strip, lines) if s not in given), key=len)


def layout(path, grade: str) -> tuple[list[int], int, list[int], int]:
    """Cell indexes in the student's notebook: the code cells above the answer cell (parameters
    and setup), the answer cell, the code cells after it up to the next markdown heading (its
    tests), and the last code cell (the self-check)."""
    cells = nbformat.read(path, as_version=4).cells
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    answer = next(i for i in code if grade_id(cells[i]) == grade)
    heading = next(
        (i for i in range(answer + 1, len(cells))
         if cells[i].cell_type == "markdown" and cells[i].source.lstrip().startswith("#")),
        len(cells),
    )  # fmt: skip
    tests = [i for i in code if answer < i < heading]
    return [i for i in code if i < answer], answer, tests, code[-1]


class Notebook:
    """An open notebook in JupyterLab's main area, found through its tab."""

    def __init__(self, page, name: str) -> None:
        from playwright.sync_api import expect

        self.page, self.expect = page, expect
        self.tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name)
        expect(self.tab).to_be_visible(timeout=UI)
        self.panel = page.locator(f"[id='{self.tab.get_attribute('data-id')}']")
        self.cells = self.panel.locator(".jp-Notebook .jp-Cell")

    def wait_idle(self, timeout: int = UI) -> None:
        indicator = self.panel.locator(".jp-Notebook-ExecutionIndicator")
        self.expect(indicator).to_have_attribute("data-status", "idle", timeout=timeout)

    def select(self, index: int) -> None:
        """Select cell ``index`` in command mode."""
        self.cells.nth(index).locator(".jp-InputArea-prompt").click()

    def edit(self, index: int, text: str, shows: str) -> None:
        """Replace the text of cell ``index``, as typed into its editor; then it ``shows``."""
        editor = self.cells.nth(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(text)
        self.expect(editor).to_contain_text(shows, timeout=UI)

    def ran(self, index: int, timeout: int = RUN) -> None:
        """Wait until cell ``index`` has run (its prompt shows an execution count)."""
        prompt = self.cells.nth(index).locator(".jp-InputArea-prompt")
        self.expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=timeout)

    def no_error(self, index: int) -> None:
        errors = self.cells.nth(index).locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        if errors.count():
            raise AssertionError(f"cell {index} shows an error:\n{errors.first.inner_text()}")

    def save(self) -> None:
        self.page.keyboard.press("Control+s")
        self.expect(self.tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"), timeout=UI)


def run_menu(page, item: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item", has_text=item).first.click()


def menu_texts(page) -> str:
    """The text of every menu of the menu bar, each opened in turn."""
    texts = []
    items = page.locator("#jp-menu-panel .lm-MenuBar-item")
    for i in range(items.count()):
        items.nth(i).click()
        texts.append(page.locator(".lm-Menu").first.inner_text())
        page.keyboard.press("Escape")
    return "\n".join(texts)


def no_instructor_tools(page) -> None:
    """Neither the menus nor the side bars offer nbgrader's instructor tools."""
    from playwright.sync_api import expect

    chrome = page.locator("#jp-top-panel, .jp-SideBar, #jp-left-stack, #jp-right-stack")
    for tool in INSTRUCTOR_TOOLS:
        expect(chrome.get_by_text(tool)).to_have_count(0)
        expect(chrome.get_by_title(tool)).to_have_count(0)
    menus = menu_texts(page)
    assert not [tool for tool in INSTRUCTOR_TOOLS if tool in menus], f"menus:\n{menus}"


def test_a_student_solves_an_exercise_and_checks_it(emulator, process_watch, tmp_path, artifacts):
    from playwright.sync_api import expect

    executable = chromium()
    answer_text, typed = solution(ANSWER)
    above, answer, tests, check = layout(ROOT / LAB, ANSWER)
    with (
        unchanged(ROOT / LAB, ROOT / START_HERE, typed=typed),
        student_lab(emulator, tmp_path) as lab,
        chromium_page(executable, tmp_path / "chromium-profile") as page,
    ):
        step = Steps(page, lab, artifacts)
        news = page.get_by_role("alert").filter(has_text="Jupyter news")
        page.add_locator_handler(news, lambda: news.get_by_role("button", name="No").click())

        with step("01-start-here"):
            page.goto(lab.url(""), timeout=UI)  # the server root: its default URL, start-here
            Notebook(page, "00-start-here.ipynb")
            expect(page.get_by_role("heading", name="Start here")).to_be_visible(timeout=UI)
        with step("02-no-instructor-tools"):
            no_instructor_tools(page)
        with step("03-open-lab"):
            page.goto(lab.url(f"lab/tree/{LAB}"), timeout=UI)
            notebook = Notebook(page, "storage.ipynb")
            expect(notebook.cells.nth(answer)).to_contain_text("YOUR CODE HERE", timeout=UI)
            notebook.wait_idle()
        with step("04-run-setup"):
            notebook.select(answer)
            run_menu(page, "Run All Above Selected Cell")
            for index in above:
                notebook.ran(index)
                notebook.no_error(index)
        with step("05-answer-exercise-1"):
            notebook.edit(answer, answer_text, shows=typed)
            for _ in [answer, *tests]:
                page.keyboard.press("Shift+Enter")  # runs the cell, selects the next one
            for index in [answer, *tests]:
                notebook.ran(index)
                notebook.no_error(index)
        with step("06-save"):
            notebook.save()
            assert typed in source(ROOT / LAB, ANSWER), f"{LAB} was not saved with the answer"
        with step("07-self-check"):
            notebook.select(check)
            page.keyboard.press("Control+Enter")  # runs it and stays: no new cell below
            output = notebook.cells.nth(check).locator(".jp-Cell-outputArea")
            expect(output).to_contain_text("Total", timeout=CHECK)
            notebook.no_error(check)
            row = output.locator("tr", has_text=re.compile(r"Exercise 1\b"))
            expect(row).to_contain_text("5/5")
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)


def test_a_student_takes_a_quiz_in_the_practice_exam_notebook(
    emulator, process_watch, tmp_path, artifacts, monkeypatch
):
    """course/practice-exam.ipynb, run as it is: five storage items drawn, no answers given, the
    score, the readiness chart and the review of every option shown, the attempt kept."""
    from playwright.sync_api import expect

    history = tmp_path / "exams"
    monkeypatch.setenv("CLOUDLABS_EXAM_HISTORY", str(history))
    practice = "course/practice-exam.ipynb"
    with (
        unchanged(ROOT / practice),
        student_lab(emulator, tmp_path) as lab,
        chromium_page(chromium(), tmp_path / "chromium-profile") as page,
    ):
        step = Steps(page, lab, artifacts)
        news = page.get_by_role("alert").filter(has_text="Jupyter news")
        page.add_locator_handler(news, lambda: news.get_by_role("button", name="No").click())
        with step("01-open-practice-exam"):
            page.goto(lab.url(f"lab/tree/{practice}"), timeout=UI)
            notebook = Notebook(page, "practice-exam.ipynb")
            notebook.wait_idle()
        cells = nbformat.read(ROOT / practice, as_version=4).cells
        code = [i for i, cell in enumerate(cells) if cell.cell_type == "code"]
        with step("02-run-all"):
            expect(notebook.cells).to_have_count(len(cells), timeout=UI)  # all rendered
            run_menu(page, "Run All Cells")
            for index in code:
                notebook.ran(index)
                notebook.no_error(index)
        with step("03-results"):
            outputs = notebook.panel.locator(".jp-Cell-outputArea")
            expect(outputs.filter(has_text="quiz: storage: 0 of 5 right")).to_have_count(1)
            expect(outputs.filter(has_text="5. unanswered: you chose nothing")).to_have_count(1)
            expect(notebook.panel.locator(".jp-Cell-outputArea img")).to_have_count(2)  # 2 charts
    (attempt,) = history.glob("*.json")
    assert '"finished_at": null' not in attempt.read_text()
    left = process_watch.left(timeout=15)
    assert not left, process_watch.describe(left)
