"""nbgrader settings of the networking course (the graders set CourseDirectory.root)."""

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "networking"

# every cell of a submission gets at most 30 seconds when it is autograded
c.ExecutePreprocessor.timeout = 30
c.Execute.timeout = 30

# the stub learners see in place of the solutions
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# never release or collect notebook checkpoints and caches
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]
