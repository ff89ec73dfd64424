# nbgrader in a member's server: the platform's exchange, one folder per course,
# and the member's courses taken from their hub groups (nbgrader-<course>).
import os

c = get_config()  # noqa: F821
c.Exchange.root = os.environ["LEVA_EXCHANGE_DIR"]
c.Exchange.path_includes_course = True
c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"
c.ExchangeFactory.submit = "hub.exchange.PrivateSubmit"
# members pass through the exchange root; in isolated mode it is root's alone (hub.permissions)
c.ExchangeFactory.fetch_assignment = "hub.exchange.MemberFetchAssignment"
c.ExchangeFactory.fetch_feedback = "hub.exchange.MemberFetchFeedback"
c.ExchangeFactory.list = "hub.exchange.MemberList"
c.ExchangeSubmit.add_random_string = True
# The hub user, not the system account the server happens to run as.
c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
