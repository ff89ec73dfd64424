# A course's formgrader service. The formgrader draws its pages in a frame of the
# service's own JupyterLab, which JupyterHub's default "frame-ancestors 'none'"
# would blank: allow framing by the service itself, and nothing else. Members'
# servers keep the default.
c = get_config()  # noqa: F821
c.ServerApp.tornado_settings = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}
c.ServerApp.default_url = "/lab?formgrader=true"
