"""Lesson delivery merges course updates into a member's home the way nbgitpuller does."""

from __future__ import annotations

from hub.lessons import file_hash, sync_lessons, update_name


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_first_delivery_copies_everything(tmp_path):
    course, home = tmp_path / "course", tmp_path / "home"
    write(course / "01.ipynb", "one")
    write(course / "data" / "funnel.csv", "a,b")
    write(course / ".ipynb_checkpoints" / "01-checkpoint.ipynb", "skip")
    report = sync_lessons("dm", course, home)
    assert sorted(report.added) == ["01.ipynb", "data/funnel.csv"]
    assert (home / "dm" / "data" / "funnel.csv").read_text() == "a,b"
    assert not (home / "dm" / ".ipynb_checkpoints").exists()


def test_update_rules(tmp_path):
    course, home = tmp_path / "course", tmp_path / "home"
    for name in ("untouched", "edited", "deleted", "same"):
        write(course / f"{name}.ipynb", f"{name} v1")
    sync_lessons("dm", course, home)
    write(home / "dm" / "edited.ipynb", "my notes")
    (home / "dm" / "deleted.ipynb").unlink()
    for name in ("untouched", "edited", "deleted"):
        write(course / f"{name}.ipynb", f"{name} v2")
    write(course / "new.ipynb", "new")

    report = sync_lessons("dm", course, home)
    assert report.updated == ["untouched.ipynb"]
    assert report.kept == ["edited.ipynb"]
    assert sorted(report.added) == ["deleted.ipynb", "new.ipynb"]
    assert (home / "dm" / "edited.ipynb").read_text() == "my notes"
    beside = update_name(home / "dm" / "edited.ipynb", file_hash(course / "edited.ipynb"))
    assert beside.read_text() == "edited v2"
    assert (home / "dm" / "untouched.ipynb").read_text() == "untouched v2"
    assert (home / "dm" / "same.ipynb").read_text() == "same v1"

    # nothing changed since: a further start changes nothing, the member's edit still stands
    again = sync_lessons("dm", course, home)
    assert not (again.added or again.updated or again.kept)
    assert (home / "dm" / "edited.ipynb").read_text() == "my notes"


def test_a_file_the_member_made_with_a_lesson_name_is_kept(tmp_path):
    course, home = tmp_path / "course", tmp_path / "home"
    write(home / "dm" / "01.ipynb", "mine first")
    write(course / "01.ipynb", "course")
    report = sync_lessons("dm", course, home)
    assert report.kept == ["01.ipynb"]
    assert (home / "dm" / "01.ipynb").read_text() == "mine first"
