"""The hub settings a careful deployment turns on, in the demo and in production alike.

- Sign-in lasts a week (``cookie_max_age_days``), and the OAuth tokens that let
  a browser into a member's server or a course's formgrader a day
  (``oauth_token_expires_in``; the default is the cookie's two weeks): a stolen
  token is worth little for long.
- Tokens made through the API (a member's, the ``leva`` command's) must expire,
  within 30 days (``token_expires_in_max_seconds``).
- The hub's OAuth requires PKCE (``oauth_require_pkce``), which JupyterHub 6's
  servers and services all speak.
- Members' servers ignore Jupyter configuration in their home
  (``disable_user_config``): the platform's configuration, with JupyterHub's
  default ``frame-ancestors 'none'``, is what they run, whatever a member writes
  into ``~/.jupyter``.
- ``LEVA_PUBLIC_URL`` (``https://…/``), when the platform is served over HTTPS
  by a TLS-terminating proxy: cookies are then ``Secure`` and redirects use it.

The ``__Host-`` cookie prefix (``cookie_host_prefix_enabled``) stays off: it
puts the hub's session cookie on path ``/``, so with every server on one domain
(``/user/<name>/``) each member's server would receive the session cookie of
anyone visiting it. JupyterHub advises it only with per-user subdomains
(``c.JupyterHub.subdomain_host``), where it is worth enabling too; see SECURITY.md.
"""

from __future__ import annotations

from traitlets.config import Config

DAY = 24 * 3600


def careful_settings(settings) -> Config:
    c = Config()
    c.JupyterHub.cookie_max_age_days = 7
    c.JupyterHub.oauth_token_expires_in = DAY
    c.JupyterHub.token_expires_in_max_seconds = 30 * DAY
    c.JupyterHub.oauth_require_pkce = True
    c.Spawner.disable_user_config = True
    if settings.public_url:
        c.JupyterHub.public_url = settings.public_url
    return c
