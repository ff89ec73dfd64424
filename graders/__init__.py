"""Grading tools of the platform: course checks and the autograding around nbgrader."""
