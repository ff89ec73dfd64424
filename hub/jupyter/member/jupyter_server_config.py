# Members grade nowhere: each course's formgrader is its own hub service.
# Lesson progress goes to the community service (hub/progress_extension).
c = get_config()  # noqa: F821
c.ServerApp.jpserver_extensions = {
    "nbgrader.server_extensions.formgrader": False,
    "hub.progress_extension": True,
}
# Members install nothing into the platform's environment, which their server and every other
# member's share (JupyterLab's extension manager would pip-install into it): read-only.
c.LabApp.extension_manager = "readonly"
