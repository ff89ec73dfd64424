"""The members' journeys, in a real browser (Chromium under Playwright) against a real hub.

- the learner signs in, runs a lesson cell, fetches an assignment, answers, validates and submits;
- the instructor releases the next assignment, collects, autogrades, grades the written answer by
  hand and releases feedback from the course's formgrader, then opens the class progress view;
- the learner reads the score and the feedback, then their progress and badge on their profile;
- the admin adds a member, enrols them in a course and deactivates another member.

The tests run in this order and share one hub of their own (the demo roster), so nothing another
test module does to the shared hub changes what they see. Every step leaves a screenshot in
``test-artifacts/<test>/`` (see ``tests/browser.py``); ``PYTEST_ARGS="-k journeys" make test``
runs only these.
"""

from __future__ import annotations

import re
import time
import uuid

import nbformat
import pytest
from nbgrader.api import Gradebook

from hub.courses import load_course
from hub.grading import gradebook_url
from tests.hubtools import DEMO_PASSWORD, PROJECT, RunningHub, formgrader, ok

COURSE = "digital-marketing"
LEARNER, INSTRUCTOR, ADMIN = "luca", "marco", "giulia"
LESSON = "01-funnel-conversion.ipynb"
COMMENT = "Clear recommendation; say how you would check the LTV of the newsletter customers."
MEMO = ("Move about €800 a month from Meta to the newsletter and Google Ads: Meta's LTV:CAC is about 0.6, "
        "the newsletter's the best of all. Limit: LTV is observed over a few months only.")

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails under CI) with the reason
    expect = PlaywrightTimeoutError = None


@pytest.fixture(scope="module")
def platform(browser, tmp_path_factory, hub_courses):
    """A hub of the journeys' own; started only once there is a browser to drive it."""
    running = RunningHub(tmp_path_factory.mktemp("journeys") / "var", hub_courses, PROJECT / "hub" / "demo" / "roster.csv")
    running.start(timeout=120)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def course(hub_courses):
    return load_course(hub_courses / COURSE)


@pytest.fixture(scope="module")
def story() -> dict:
    """What one journey leaves for the next (the journeys of one module run in order)."""
    return {}


def needs(story: dict, key: str, test: str) -> None:
    if key not in story:
        pytest.skip(f"needs {test} earlier in the same run")


# JupyterLab, as a member uses it


def menu(page, top: str, item: str) -> None:
    """Top menu, then item. Tried again if the menu closed under the pointer (a notification was dismissed)."""
    for attempt in range(3):
        page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
        try:
            page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click(timeout=15_000)
            return
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise


def listing(page, name: str):
    return page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")))


def open_launcher_item(journey, page, title: str):
    """A launcher card that opens its page in a new browser tab; returns that tab."""
    menu(page, "File", "New Launcher")
    card = page.locator(".jp-Launcher:visible .jp-LauncherCard", has_text=title)
    with page.context.expect_page() as opened:
        card.click()
    tab = journey.use(opened.value)
    tab.wait_for_load_state()
    return tab


def reload_until_visible(page, locator, seconds: float = 45) -> None:
    """Reload until the locator shows, as a member does with a page that is not up to date yet."""
    deadline = time.monotonic() + seconds
    while not locator.count() and time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        page.reload()
    expect(locator).to_be_visible()


def answers(source_notebook) -> list[tuple[str, str]]:
    """(first line, answer) of each code answer cell: the model solution without nbgrader's markers."""
    found = []
    for cell in source_notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            lines = [line for line in cell.source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line]
            found.append((lines[0], "\n".join(lines)))
    return found


def type_into(page, cell, text: str) -> None:
    """Replace what a cell's editor holds, as typed (without the editor's auto-indent)."""
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


# the learner


def test_learner_submits_an_assignment(journey, platform, course, hub_courses, story):
    first = course.assignments[0].name
    page = journey.sign_in(platform, LEARNER)
    folder = listing(page, COURSE)
    expect(folder).to_be_visible(timeout=120_000)
    expect(listing(page, "networking")).to_have_count(0)  # only the courses one takes
    journey.step("jupyterlab with the course folder")

    folder.dblclick()
    lesson = listing(page, LESSON)
    lesson.dblclick()
    cell = page.locator(".jp-CodeCell", has=page.locator(".cm-content", has_text="funnel_daily.csv"))
    cell.locator(".cm-content").click()
    # as a member does, run once the kernel is up: a cell run before it is connected is dropped
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Python 3 (ipykernel) | Idle", timeout=180_000)
    journey.step("lesson open")
    page.keyboard.press("Shift+Enter")
    output = cell.locator(".jp-OutputArea-output")
    expect(output).to_contain_text("sessions", timeout=180_000)  # the head of the funnel table
    expect(cell.locator(".jp-InputArea-prompt")).to_contain_text("[1]")
    journey.step("lesson cell ran", focus=cell)

    menu(page, "Nbgrader", "Assignment List")
    released = page.locator("#released_assignments_list .list_item", has_text=first)
    expect(released).to_be_visible()
    journey.step("assignment list")
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list > .list_item", has_text=first)
    expect(fetched).to_be_visible()
    journey.step("assignment fetched")

    fetched.locator("a.assignment-notebooks-link").click()
    fetched.locator(".nested_list_item a", has_text=first).click()
    notebook = page.locator(".jp-NotebookPanel", has=page.locator(".jp-Cell", has_text="Oliveto Sereno"))
    expect(notebook).to_be_visible()
    source = nbformat.read(hub_courses / COURSE / "source" / first / f"{first}.ipynb", as_version=4)
    for first_line, answer in answers(source):
        type_into(page, notebook.locator(".jp-CodeCell", has=page.locator(".cm-content", has_text=first_line)), answer)
    memo = notebook.locator(".jp-MarkdownCell", has_text="YOUR ANSWER HERE")
    memo.dblclick()
    type_into(page, memo, MEMO)
    page.keyboard.press("Control+Enter")  # render the memo
    expect(notebook.locator(".jp-MarkdownCell", has_text="Move about €800")).to_be_visible()
    with page.expect_response(lambda r: "/api/contents/" in r.url and r.request.method == "PUT") as saved:
        page.keyboard.press("Control+s")
    assert saved.value.ok, f"saving the notebook: {saved.value.status}"
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current.jp-mod-dirty")).to_have_count(0)
    journey.step("answers typed and saved")

    notebook.get_by_title("Validate Assignment").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Success! Your notebook passes all the tests.", timeout=240_000)
    journey.step("validated")
    dialog.get_by_role("button", name="Ok").click()

    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Assignments").click()
    fetched.get_by_role("button", name="Submit").click()
    submitted = page.locator("#submitted_assignments_list > .list_item", has_text=first)
    expect(submitted).to_contain_text("UTC")  # its timestamp
    journey.step("submitted", focus=submitted)
    story["submitted"] = first


# the instructor


def modal_ok(frame, message: str, timeout: float = 60_000) -> None:
    """The formgrader's result dialog: it must say it worked; then close it."""
    modal = frame.locator(".modal.in")
    expect(modal).to_contain_text(message, timeout=timeout)
    modal.get_by_role("button", name="OK").click()
    expect(frame.locator(".modal, .modal-backdrop")).to_have_count(0)  # faded out and removed


def test_instructor_grades_and_releases_feedback(journey, platform, course, story):
    needs(story, "submitted", "test_learner_submits_an_assignment")
    first, second = course.assignments[0].name, course.assignments[1].name
    lab = journey.sign_in(platform, INSTRUCTOR)
    menu(lab, "Nbgrader", "Course List")
    link = lab.locator("#formgrader_list a", has_text=COURSE)
    expect(link).to_be_visible()
    journey.step("course list")
    with lab.context.expect_page() as opened:
        link.click()
    page = journey.use(opened.value)
    grader = page.frame_locator("iframe[src*='/formgrader']")
    expect(grader.locator("#main-table tr", has_text=first)).to_be_visible(timeout=180_000)
    journey.step("formgrader")

    # release the next assignment: generate the learners' version, then release it
    row = grader.locator("#main-table tr", has_text=second)
    expect(row.locator("td.status")).to_have_text("draft")
    row.locator("td.assign a").click()
    modal_ok(grader, "Successfully created the student version", timeout=180_000)
    row.locator("td.release a").click()
    modal_ok(grader, f"Successfully released '{second}'")
    expect(row.locator("td.status")).to_have_text("released")
    journey.step("second assignment released", focus=row)

    # collect the first, then autograde the learner's submission
    row = grader.locator("#main-table tr", has_text=first)
    row.locator("td.collect a").click()
    modal_ok(grader, f"Successfully collected submissions of '{first}'", timeout=120_000)
    expect(row.locator("td.num-submissions")).to_have_text("1")
    journey.step("collected", focus=row)
    row.locator("td.num-submissions a").click()
    submission = grader.locator("#main-table tr", has_text=LEARNER)
    submission.locator("td.autograde a").click()
    modal_ok(grader, f"Successfully autograded '{first}' for student '{LEARNER}'", timeout=300_000)
    expect(submission.locator("td.status")).to_have_text("needs manual grading")
    expect(submission.locator("td.score")).to_have_text("12 / 15")  # every autograded point; the memo is still to grade
    journey.step("autograded", focus=submission)

    # grade the written answer by hand
    grader.get_by_role("link", name="Manual Grading").click()
    grader.locator("#main-table a", has_text=first).click()  # the assignment
    grader.locator("#main-table a", has_text=first).click()  # its notebook
    grader.get_by_role("link", name="Submission #1").click()
    score = grader.locator("input.score#budget_memo")
    expect(score).to_be_visible()
    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT") as put:
        score.fill("2")
        score.press("Tab")
    assert put.value.ok and put.value.json()["manual_score"] == 2
    comment = grader.locator("textarea#budget_memo-comment")
    with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url and r.request.method == "PUT") as put:
        comment.fill(COMMENT)
        comment.press("Tab")
    assert put.value.ok
    journey.step("written answer graded", focus=score)
    grader.locator(".breadcrumb a", has_text=first).last.click()  # back to the notebook's submissions
    graded = grader.locator("#main-table tr", has_text="Submission #1")
    expect(graded.locator("td.score")).to_have_text("14 / 15")
    journey.step("submission scored", focus=graded)

    # feedback
    grader.get_by_role("link", name="Manage Assignments").click()
    row = grader.locator("#main-table tr", has_text=first)
    row.locator("td.generate-feedback a").click()
    modal_ok(grader, f"Successfully generated feedback of '{first}'", timeout=180_000)
    row.locator("td.release-feedback a").click()
    modal_ok(grader, f"Successfully released feedback of '{first}'")
    journey.step("feedback released", focus=row)
    story["graded"] = {"assignment": first, "released": second}

    # the class progress view: from his JupyterLab, his community profile, the course he teaches
    journey.use(lab)
    profile = open_launcher_item(journey, lab, "My community profile")
    expect(profile).to_have_url(re.compile(rf"/services/community/members/{INSTRUCTOR}$"))
    profile.get_by_role("link", name=COURSE).click()
    learner = profile.locator("#learners tr", has_text=LEARNER)
    expect(learner).to_contain_text("graded")
    expect(learner).to_contain_text("14.0 / 15.0", timeout=90_000)  # the service polls the gradebook
    expect(profile.locator("#distributions")).to_contain_text("1 graded")
    journey.step("class progress", focus=learner)


# the learner, later


def complete_the_rest_of_the_course(platform, course) -> None:
    """What the badge also asks, done here without a browser: every lesson, and the other
    assignments graded at 90% (as tests/test_community.py does). The first assignment keeps the
    score the instructor gave in the browser."""
    luca, marco = platform.login(LEARNER), platform.login(INSTRUCTOR)
    events = [{"id": uuid.uuid4().hex, "kind": "saved", "path": f"{COURSE}/{lesson}", "cells_run": 9, "cells_total": 9}
              for lesson in course.lessons]
    r = luca.http.post(f"{platform.url}/services/community/api/events", json={"events": events},
                       headers={"Authorization": f"token {luca.token}"})
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text
    for assignment in course.assignments[2:]:  # the second was generated and released in the browser
        ok(formgrader(marco, "POST", f"/assignment/{assignment.name}/assign", course=COURSE))
    with Gradebook(gradebook_url(platform.state_dir, COURSE, platform.env.get("LEVA_GRADEBOOK_URL")), course_id=COURSE) as gb:
        for assignment in course.assignments[1:]:
            with gb.db.no_autoflush:
                submission = gb.add_submission(assignment.name, LEARNER)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grade.manual_score = grade.max_score * 0.9
                    grade.needs_manual_grade = False
            gb.db.commit()


def test_learner_reads_feedback_progress_and_badge(journey, platform, course, story):
    needs(story, "graded", "test_instructor_grades_and_releases_feedback")
    first, second = story["graded"]["assignment"], story["graded"]["released"]
    page = journey.sign_in(platform, LEARNER)
    menu(page, "Nbgrader", "Assignment List")
    expect(page.locator("#released_assignments_list .list_item", has_text=second)).to_be_visible()  # just released
    submitted = page.locator("#submitted_assignments_list > .list_item", has_text=first)
    expect(submitted.get_by_role("button", name="Fetch Feedback")).to_be_visible()
    journey.step("feedback to fetch", focus=submitted)
    submitted.get_by_role("button", name="Fetch Feedback").click()
    view = submitted.get_by_text("(view feedback)")
    view.click()
    listing(page, f"{first}.html").dblclick()
    feedback = page.frame_locator(".jp-HTMLViewer:visible iframe")
    expect(feedback.locator("body")).to_contain_text(f"{first} (Score: 14.0 / 15.0)")
    expect(feedback.locator("body")).to_contain_text("Written response (Score: 2.0 / 3.0)")
    expect(feedback.locator("body")).to_contain_text(COMMENT)
    journey.step("score and feedback")

    profile = open_launcher_item(journey, page, "My community profile")
    section = profile.locator(f"#course-{COURSE}")
    row = section.locator("tr", has_text=first)
    expect(row).to_contain_text("graded")
    expect(row).to_contain_text("14.0 / 15.0")
    expect(section.locator("li", has_text=LESSON).locator("span[title=opened], span[title=completed]")).to_have_count(1)
    expect(section.locator(".progress-bar")).not_to_have_text("0%")
    journey.step("profile progress", focus=section)

    complete_the_rest_of_the_course(platform, course)
    badge = profile.locator("#badges li", has_text=course.badge.name)
    reload_until_visible(profile, badge)  # the service awards it within its poll interval
    expect(section.locator(".progress-bar")).to_have_text("100%")
    journey.step("badge on the profile", focus=badge)
    badge.get_by_role("link", name=course.badge.name).click()
    expect(profile.locator("#verification")).to_contain_text("Verified")
    expect(profile.locator("dl")).to_contain_text(first)  # the graded submission is its evidence
    journey.step("badge verified")


# the admin


NEWCOMER, LEAVER = "newcomer", "elena"


def test_admin_adds_enrols_and_deactivates_members(journey, platform):
    # the hub's admin page (an admin's bookmark: no server of their own needed): add the member
    hub_page = journey.sign_in(platform, ADMIN, next_url="/hub/admin")
    hub_page.get_by_role("button", name="Add Users").click()
    hub_page.get_by_test_id("user-textarea").fill(NEWCOMER)
    journey.step("hub admin add users")
    hub_page.get_by_test_id("submit").click()
    added = hub_page.get_by_test_id(f"user-row-{NEWCOMER}")
    expect(added).to_be_visible()
    journey.step("member added", focus=added)

    # the community's administration, from the hub's home page: enrol them, give them a first password
    hub_page.get_by_role("link", name="Home", exact=True).click()
    hub_page.locator("#community-members").click()
    community = hub_page
    community.locator("#admin-members").click()
    reload_until_visible(community, community.locator(f"#member-{NEWCOMER}"))  # the service's copy of the hub's users lags a few seconds
    community.locator(f"#member-{NEWCOMER} a").click()
    enrol = community.locator("form#enrol")
    enrol.locator("select[name=course]").select_option(COURSE)
    enrol.locator("select[name=as]").select_option("learner")
    enrol.get_by_role("button", name="Enrol").click()
    expect(community.locator("#changes")).to_be_visible()
    expect(community.locator("#enrolments")).to_contain_text(f"{COURSE}: learner")
    journey.step("member enrolled")
    community.locator("#new-password").click()
    password = community.locator("#password code").inner_text().strip()
    assert len(password) >= 8
    journey.step("first password")

    # the new member signs in and finds the course
    newcomer = journey.sign_in(platform, NEWCOMER, password=password)
    expect(listing(newcomer, COURSE)).to_be_visible(timeout=120_000)
    journey.step("new member's jupyterlab")

    # a member leaves: deactivated, they can no longer sign in
    journey.use(community)
    community.get_by_role("link", name="← Members").click()
    community.locator(f"#member-{LEAVER} a").click()
    expect(community.locator("#status")).to_have_text("active")
    community.locator("#deactivate").click()
    expect(community.locator("#status")).to_have_text("deactivated")
    journey.step("member deactivated")
    community.get_by_role("link", name="← Members").click()
    expect(community.locator(f"#member-{LEAVER}")).to_contain_text("deactivated")
    journey.step("members list")

    leaver = journey.context(LEAVER).new_page()
    leaver.goto(f"{platform.url}/hub/login")
    leaver.locator("#username_input").fill(LEAVER)
    leaver.locator("#password_input").fill(DEMO_PASSWORD)
    leaver.locator("#login_submit").click()
    expect(leaver.locator(".login_error")).to_be_visible()
    assert "/hub/login" in leaver.url
    journey.step("deactivated member cannot sign in")
