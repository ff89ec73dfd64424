"""nbgrader settings of the Digital Marketing Analytics course.

The graders set CourseDirectory.root; everything else a grader needs is here.
"""

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "digital-marketing"

# Every cell has 30 seconds; the solutions run in well under one.
c.ExecutePreprocessor.timeout = 30
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# What learners see in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
