# Members grade nowhere: each course's formgrader is its own hub service.
c = get_config()  # noqa: F821
c.ServerApp.jpserver_extensions = {"nbgrader.server_extensions.formgrader": False}
