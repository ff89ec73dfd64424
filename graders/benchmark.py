"""Benchmark: ``nbgrader autograde`` against ``leva grade`` on a cohort of a real assignment.

    python -m graders.benchmark [--course digital-marketing] [--assignment a1-funnel-economics]
                                [-n 200] [--workers N] [--keep DIR]

It builds a throw-away nbgrader course directory from a course of the
catalogue, runs ``nbgrader generate_assignment``, and writes N submissions
with a mix of answers: right (the solution), partial (one mistake from the
course's ``wrong_answers/``), wrong (several mistakes), blank (the released
notebook) and raising (a solution cell that raises).  The same submissions
are then graded twice, in two copies of the course directory: by plain
``nbgrader autograde`` and by ``leva grade``, each as its own command.  It
checks that every cell's score is the same in both gradebooks, and prints
both times, the throughput ratio, where ``leva grade``'s time goes, and how
far it is from the floor: the CPU time the notebooks' own code needs.

This is not a test: it takes minutes (nbgrader grades about one small
notebook a second).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import nbformat

from hub.courses import courses_dir

#: The answer mix, as shares of the cohort.
MIX = {"right": 0.40, "partial": 0.30, "wrong": 0.15, "blank": 0.10, "raising": 0.05}
TIMESTAMP = "2026-12-01 10:00:00.000000 UTC"


@dataclasses.dataclass
class Run:
    seconds: float
    returncode: int
    output: str
    cpu: float = 0.0     # CPU seconds of the command and the processes it waited for
    load: float = 0.0    # the machine's load average (1 min) when it ended


def _command(*args: str, cwd: Path) -> Run:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.monotonic()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=_env())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(time.monotonic() - begin, done.returncode, done.stdout + done.stderr, cpu, os.getloadavg()[0])


def _env() -> dict:
    env = dict(os.environ)
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
    project = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [project, env.get("PYTHONPATH")]))
    return env


def make_course(course: Path, assignment: str, root: Path) -> Path:
    """A course directory with the assignment generated, as an instructor has it before collecting."""
    root.mkdir(parents=True)
    shutil.copy2(course / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(course / "source" / assignment, root / "source" / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    run = _command(sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--create", "--force",
                   cwd=root)
    if run.returncode:
        raise SystemExit(f"nbgrader generate_assignment failed:\n{run.output}")
    return root


def load_variants(course: Path, assignment: str) -> list[dict]:
    path = course / "wrong_answers" / f"{assignment}.toml"
    if not path.is_file():
        return []
    return tomllib.loads(path.read_text())["variant"]


def _by_grade_id(nb) -> dict:
    return {cell.metadata.get("nbgrader", {}).get("grade_id"): cell for cell in nb.cells
            if cell.metadata.get("nbgrader", {}).get("grade_id")}


def answers(source_nb, released_nb, variants: list[dict], kind: str, rng: random.Random):
    """A learner's notebook: the released notebook with answers of the given kind."""
    nb = nbformat.from_dict(json.loads(json.dumps(released_nb)))
    if kind == "blank":
        return nb
    solutions = _by_grade_id(source_nb)
    cells = _by_grade_id(nb)
    for grade_id, cell in cells.items():
        meta = cell.metadata["nbgrader"]
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = solutions[grade_id].source
    chosen: list[dict] = []
    if kind == "partial" and variants:
        chosen = [rng.choice(variants)]
    elif kind == "wrong" and variants:
        chosen = rng.sample(variants, k=min(len(variants), 3))
    for variant in chosen:
        if variant["cell"] in cells:
            cells[variant["cell"]].source = variant["source"].strip("\n")
    if kind == "raising":
        code = [c for c in cells.values() if c.metadata["nbgrader"].get("solution") and c.cell_type == "code"]
        rng.choice(code).source = 'raise ValueError("I could not finish this part")'
    return nb


def make_submissions(root: Path, course: Path, assignment: str, count: int, seed: int = 7) -> dict[str, int]:
    """Write ``count`` submissions below ``submitted/``; return how many of each kind."""
    rng = random.Random(seed)
    notebooks = sorted((root / "source" / assignment).glob("*.ipynb"))
    variants = load_variants(course, assignment)
    kinds = [kind for kind, share in MIX.items() for _ in range(round(share * count))]
    kinds = (kinds + ["right"] * count)[:count]
    rng.shuffle(kinds)
    for number, kind in enumerate(kinds, 1):
        folder = root / "submitted" / f"learner-{number:03d}" / assignment
        folder.mkdir(parents=True)
        shutil.copytree(root / "release" / assignment, folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.ipynb"))
        for path in notebooks:
            source_nb = nbformat.read(path, as_version=4)
            released = nbformat.read(root / "release" / assignment / path.name, as_version=4)
            nbformat.write(answers(source_nb, released, variants, kind, rng), folder / path.name)
        (folder / "timestamp.txt").write_text(TIMESTAMP)
    return {kind: kinds.count(kind) for kind in MIX}


def cell_scores(db: Path, assignment: str) -> dict[tuple[str, str, str], tuple]:
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        for submission in gb.find_assignment(assignment).submissions:
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    scores[(submission.student.id, notebook.name, grade.name)] = (
                        grade.auto_score, grade.needs_manual_grade)
    return scores


#: Runs the code cells of every autograded notebook with plain ``exec``, in a fresh interpreter, and prints
#: the CPU seconds they took: what the learners' code itself costs, without Jupyter around it.
FLOOR_SCRIPT = r"""
import json, os, sys, time
import nbformat
from IPython.core.inputtransformer2 import TransformerManager
transform = TransformerManager().transform_cell
root, assignment = sys.argv[1], sys.argv[2]
total, count = 0.0, 0
for student in sorted(os.listdir(os.path.join(root, "autograded"))):
    folder = os.path.join(root, "autograded", student, assignment)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".ipynb"):
            continue
        nb = nbformat.read(os.path.join(folder, name), as_version=4)
        os.chdir(folder)
        namespace = {"__name__": "__main__"}
        for cell in nb.cells:
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            begin = time.process_time()
            try:
                exec(compile(transform(cell.source), "<cell>", "exec"), namespace)
            except BaseException:
                pass
            total += time.process_time() - begin
        count += 1
print(json.dumps({"seconds": total, "notebooks": count}))
"""


def floor_seconds(root: Path, assignment: str) -> float:
    """CPU seconds the notebooks' own code needs (their cells run with ``exec``, libraries already imported)."""
    from graders.autograde import _imports

    source = root / "source" / assignment
    modules = _imports(source, [path.stem for path in source.glob("*.ipynb")])
    warm = "".join(f"try:\n    import {name}\nexcept ImportError:\n    pass\n" for name in sorted(modules))
    run = subprocess.run([sys.executable, "-c", warm + FLOOR_SCRIPT, str(root), assignment],
                         capture_output=True, text=True, env=_env())
    try:
        return float(json.loads(run.stdout.strip().splitlines()[-1])["seconds"])
    except (ValueError, IndexError, KeyError):
        print(run.stderr[-2000:])
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graders.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", default="digital-marketing", help="course of the catalogue")
    parser.add_argument("--assignment", default="a1-funnel-economics")
    parser.add_argument("-n", "--submissions", type=int, default=200)
    parser.add_argument("--workers", type=int, help="leva grade --workers (default: one per core)")
    parser.add_argument("--keep", type=Path, help="build the course directories here and keep them")
    args = parser.parse_args(argv)

    course = courses_dir() / args.course
    work = args.keep or Path(tempfile.mkdtemp(prefix="leva-benchmark-"))
    try:
        return _benchmark(course, args.assignment, args.submissions, args.workers, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _benchmark(course: Path, assignment: str, count: int, workers: int | None, work: Path) -> int:
    cores = os.cpu_count() or 1
    print(f"Preparing {count} submissions of {course.name} / {assignment} in {work} ...", flush=True)
    plain = make_course(course, assignment, work / "nbgrader")
    mix = make_submissions(plain, course, assignment, count)
    leva = work / "leva"
    shutil.copytree(plain, leva)

    print("Grading with nbgrader autograde ...", flush=True)
    nbgrader = _command(sys.executable, "-m", "nbgrader", "autograde", assignment, cwd=plain)
    print(f"  {nbgrader.seconds:.1f} s", flush=True)
    print("Grading with leva grade ...", flush=True)
    report_file = work / "leva-report.json"
    command = [sys.executable, "-m", "hub.cli", "grade", assignment, "--no-progress", "--json", str(report_file)]
    if workers:
        command += ["--workers", str(workers)]
    ours = _command(*command, cwd=leva)
    print(f"  {ours.seconds:.1f} s", flush=True)
    if not report_file.is_file():
        print(ours.output[-3000:])
        return 1
    report = json.loads(report_file.read_text())

    expected, got = cell_scores(plain / "gradebook.db", assignment), cell_scores(leva / "gradebook.db", assignment)
    differing = sorted(key for key in expected.keys() | got.keys() if expected.get(key) != got.get(key))
    students = len({key[0] for key in expected})
    phases = report["phases"]
    ratio = nbgrader.seconds / ours.seconds if ours.seconds else float("inf")

    print()
    print(f"{course.name} / {assignment}: {count} submissions "
          f"({', '.join(f'{n} {kind}' for kind, n in mix.items())}), {cores} CPU cores")
    print(f"  nbgrader autograde  {nbgrader.seconds:7.1f} s   {count / nbgrader.seconds:6.2f} submissions/s")
    print(f"  leva grade          {ours.seconds:7.1f} s   {count / ours.seconds:6.2f} submissions/s "
          f"({report['workers']} workers)")
    print(f"  throughput ratio    {ratio:7.1f}x  (target: 5x)")
    # leva's kernels are reaped by the system and its workers by a fork server: count its CPU per submission
    ours_cpu = sum(s["timings"].get(key, 0.0) for s in report["submissions"]
                   for key in ("kernel_cpu", "worker_cpu", "database_cpu"))
    print(f"  CPU used            nbgrader {nbgrader.cpu:.1f} s (command and kernels), leva {ours_cpu:.1f} s "
          f"(kernels, workers, gradebook; start-up not counted)")
    print(f"  load average        {nbgrader.load:.1f} after nbgrader, {ours.load:.1f} after leva, on {cores} cores "
          f"(other work on the machine slows both)")
    if differing:
        print(f"  scores DIFFER on {len(differing)} cells, e.g.:")
        for key in differing[:3]:
            print(f"    {key}: nbgrader {expected.get(key)}, leva {got.get(key)}")
    else:
        print(f"  scores              identical: {students} submissions, {len(expected)} graded cells")
    failed = [s for s in report["submissions"] if s["status"] == "failed"]
    if failed:
        print(f"  leva failures       {len(failed)}: " + "; ".join(f"{s['student']}: {s['reason']}" for s in failed[:3]))

    graded = max(len(report["submissions"]), 1)
    per = {key: value / graded for key, value in phases.items()}
    kernel_start = per.get("kernel_start_cpu", 0.0)
    cpu = per.get("kernel_cpu", 0.0) + per.get("worker_cpu", 0.0) + per.get("database_cpu", 0.0)
    print()
    print(f"Where leva grade's time goes, per submission:")
    print(f"  CPU, kernel start (fork, kernel set-up)            {kernel_start:6.3f} s")
    print(f"  CPU, kernel running the cells (code and Jupyter)   {per.get('kernel_cpu', 0.0) - kernel_start:6.3f} s")
    print(f"  CPU, grading worker (files, sanitizing, messages)  {per.get('worker_cpu', 0.0):6.3f} s")
    print(f"  CPU, gradebook and autograded folder               {per.get('database_cpu', 0.0):6.3f} s")
    print(f"  = {cpu:.3f} s of CPU per submission: {cpu * count / cores:.1f} s for the cohort on {cores} cores")
    print(f"  wall, per worker: preparing {per.get('prepare', 0.0):.3f} s, waiting for a kernel "
          f"{per.get('kernel', 0.0):.3f} s, executing {per.get('execute', 0.0):.3f} s; "
          f"coordinator: gradebook {per.get('database', 0.0):.3f} s")
    print(f"  command and workers starting, pool hand-over: {ours.seconds - report['seconds']:.1f} s + "
          f"{max(report['seconds'] - cpu * count / cores, 0.0):.1f} s")

    floor_cpu = floor_seconds(leva, assignment)
    floor = floor_cpu / cores
    print()
    print(f"Floor: the learners' code itself (every cell run with exec, no Jupyter) needs {floor_cpu:.1f} s of CPU "
          f"({floor_cpu / count:.3f} s per submission), at least {floor:.1f} s on {cores} cores.")
    print(f"  leva grade takes {ours.seconds / floor:.1f}x the floor, nbgrader autograde {nbgrader.seconds / floor:.1f}x; "
          f"Jupyter's own work per cell (IPython, messages, output) is most of the rest.")
    return 0 if not differing and nbgrader.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
